"""The composition-and-sweep notebook executes top to bottom (nbclient, digits)."""
import os
import time

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

NOTEBOOK = os.path.join(os.path.dirname(__file__), '..', '..', 'experiments', 'notebooks',
                        'compose_and_sweep.ipynb')


def test_compose_and_sweep_notebook_runs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    # Budget: < 60 s on a quiet 2-core machine; the timeout is per cell and generous
    # because the test machine is shared.
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': os.path.dirname(NOTEBOOK)}}).execute()
    elapsed = time.perf_counter() - t0
    outputs = '\n'.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code'
                        for o in c.get('outputs', []))
    assert 'traces: 1' in outputs
    assert 'notebook ran in' in outputs, outputs[-2000:]
    print(f'notebook executed in {elapsed:.1f} s')
