"""experiments/plot.py turns workdirs into a PNG of learning curves."""
import json
import os

import pytest

pytest.importorskip('matplotlib')

from experiments import plot  # noqa: E402


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


def test_plot_cli(tmp_path, cli):
    a = _workdir(tmp_path, 'run', [{'epoch': 1, 'train_loss': 2.0, 'test_accuracy': 0.3}])
    out = str(tmp_path / 'c.png')
    rc, _, err = cli.run('experiments.plot', [f'--workdirs={a}', f'--out={out}'], timeout=300)
    assert rc == 0, err[-2000:]
    assert os.path.getsize(out) > 1000


def test_a_sweep_is_one_curve_per_setting_averaged_over_its_seeds(tmp_path):
    # A sweep's lines hold one value per member (settings x seeds, seeds innermost); each
    # swept setting is its own curve, its seeds averaged; settings are never mixed.
    from neurokit.experiment.config import base_config
    d = _workdir(tmp_path, 'sw', [
        {'epoch': e, 'test_accuracy': [0.1, 0.2, 0.5 + e, 0.7 + e]} for e in (1, 2)])
    config = base_config()
    config.sweep, config.num_seeds = 'optimizer.learning_rate=0.0001,0.1', 2
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(config.to_dict(), f)
    (tmp_path / 'x').mkdir()
    other = _workdir(tmp_path / 'x', 'sw', [{'epoch': 1, 'test_accuracy': 0.3}])  # same name
    got = plot.curves({d: plot.read_metrics(d), other: plot.read_metrics(other)})
    slow, fast = got[f'{d} learning_rate=0.0001'], got[f'{d} learning_rate=0.1']
    assert [r['test_accuracy'] for r in slow] == [[0.1, 0.2]] * 2
    assert [r['test_accuracy'] for r in fast] == [[1.5, 1.7], [2.5, 2.7]]
    assert got[other] == [{'epoch': 1, 'test_accuracy': 0.3}]
    plot.plot([d, other], str(tmp_path / 'c.png'))


def test_a_curve_keeps_its_colour_on_every_panel(tmp_path, monkeypatch):
    # run `a` lacks train_extra: `b` must not take a's colour on that panel
    import matplotlib.axes
    a = _workdir(tmp_path, 'a', [{'epoch': 1, 'test_accuracy': 0.3}])
    b = _workdir(tmp_path, 'b', [{'epoch': 1, 'test_accuracy': 0.4, 'train_extra': 1.0}])
    drawn, plot_ = [], matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append((self.get_title() or len(drawn), kwargs.get('label'), kwargs.get('color')))
        return plot_(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, 'plot', spy)
    plot.plot([a, b], str(tmp_path / 'c.png'))
    colours = {}
    for _, label, colour in drawn:
        colours.setdefault(label, set()).add(str(colour))
    assert len(drawn) == 3 and all(len(c) == 1 for c in colours.values()), drawn
    assert colours['a'] != colours['b']  # labelled by folder name


def test_sweep_labels_keep_whole_keys_when_last_parts_clash(tmp_path):
    from neurokit.experiment.config import base_config
    d = _workdir(tmp_path, 'sw', [{'epoch': 1, 'test_accuracy': [0.1, 0.2, 0.3, 0.4]}])
    config = base_config()
    config.rule, config.rule_kwargs.weight_decay = 'ipc', 0.0
    config.sweep = 'optimizer.weight_decay=0,0.1;rule_kwargs.weight_decay=0,0.01'
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(config.to_dict(), f)
    labels = sorted(plot.curves({d: plot.read_metrics(d)}))
    assert labels[0] == 'sw optimizer.weight_decay=0,rule_kwargs.weight_decay=0', labels
    assert len(labels) == 4


def test_a_nan_member_is_left_out_of_the_mean_and_an_all_nan_epoch_is_a_gap():
    # nan_policy=skip reports NaN for a member whose every step of an epoch was skipped
    nan = float('nan')
    records = [{'epoch': 1, 'train_loss': [1.0, 3.0]}, {'epoch': 2, 'train_loss': [0.5, nan]},
               {'epoch': 3, 'train_loss': [nan, nan]}]
    xs, means, stds = plot._series(records, 'train_loss')
    assert xs == [1, 2] and means == [2.0, 0.5] and stds == [1.0, 0.0]
