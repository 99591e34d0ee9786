"""experiments/plot.py turns workdirs into a PNG of learning curves."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip('matplotlib')

from experiments import plot  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _workdir(tmp_path, name, records):
    d = tmp_path / name
    d.mkdir()
    with open(d / 'metrics.jsonl', 'w') as f:
        f.write(''.join(json.dumps(r) + '\n' for r in records))
        f.write('{"epoch": 9, "tor')  # a line torn by a kill is ignored
    return str(d)


def test_plot_draws_accuracy_loss_and_per_layer_keys(tmp_path):
    a = _workdir(tmp_path, 'ff', [
        {'epoch': e, 'step': 10 * e, 'train_loss': 1.0 / e, 'train_goodness_pos_0': 0.1 * e,
         'train_goodness_pos_1': 0.2 * e, 'test_accuracy': 0.5 + 0.1 * e, 'epoch_seconds': 1.0}
        for e in (1, 2, 3)])
    b = _workdir(tmp_path, 'bp_seeds', [  # two vmapped members: lists
        {'epoch': e, 'train_loss': [1.0 / e, 1.1 / e], 'test_accuracy': [0.6, 0.62],
         'train_per_layer': [[0.1, 0.2], [0.3, 0.4]]}
        for e in (1, 2)])
    out = str(tmp_path / 'out' / 'curves.png')
    keys = plot.plot([a, b], out)
    assert keys[:2] == ['test_accuracy', 'train_loss']
    assert set(keys) == {'test_accuracy', 'train_loss', 'train_goodness_pos_0',
                         'train_goodness_pos_1', 'train_per_layer'}
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_plot_cli(tmp_path):
    a = _workdir(tmp_path, 'run', [{'epoch': 1, 'train_loss': 2.0, 'test_accuracy': 0.3}])
    out = str(tmp_path / 'c.png')
    r = subprocess.run([sys.executable, '-m', 'experiments.plot', f'--workdirs={a}',
                        f'--out={out}'], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.getsize(out) > 1000
