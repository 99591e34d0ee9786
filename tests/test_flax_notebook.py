"""The Flax-model notebook executes top to bottom (nbclient, digits): a CNN written in plain
Flax (a residual block, LayerNorm) trained by bp, dfa and pc, and a plot of their curves."""
import os
import re

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

NOTEBOOK = os.path.join(os.path.dirname(__file__), '..', 'experiments', 'notebooks',
                        'flax_model.ipynb')


def test_flax_model_notebook_trains_three_rules_and_plots(monkeypatch):
    # the kernel trains for real: XLA's default CPU optimisation, not the test session's
    # compile-fast level 0 (tests/conftest.py), under which it runs about 5x slower
    monkeypatch.setenv('XLA_FLAGS', os.environ.get('XLA_FLAGS', '').replace(
        '--xla_backend_optimization_level=0', ''))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': os.path.dirname(NOTEBOOK)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
    text = '\n'.join(o.get('text', '') for o in outputs)
    accuracy = dict(re.findall(r'^(\w+): test accuracy ([0-9.]+)$', text, re.M))
    assert set(accuracy) == {'bp', 'dfa', 'pc'}, text[-2000:]
    # every rule learns the 10-way task: at least 3x chance
    assert all(float(a) >= 0.3 for a in accuracy.values()), accuracy
    assert any('image/png' in o.get('data', {}) for o in outputs), 'no plot was drawn'
    assert 'notebook ran in' in text
