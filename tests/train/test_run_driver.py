"""The one run driver: a seed run is a sweep with an empty grid; the validation split;
sweep reporting (settings ranked on validation, never test); notes and timings.

In-process runs of a tiny MLP on the 8x8 digits (1437 training examples).
"""
import json
import os

import jax
import numpy as np
import pytest

from experiments.configs import bp as bp_config
from neurokit import data as data_lib
from neurokit.experiment import members as members_lib
from neurokit.experiment.checkpoint import Checkpointer
from neurokit.experiment.run import run

N_TRAIN = 1437  # digits' training examples


def _config(**over):
    c = bp_config.get_config()
    c.dataset, c.model.hidden, c.epochs, c.batch_size = 'digits', (16,), 2, 64
    c.progress, c.tensorboard = 'off', False
    c.update_from_flattened_dict(over)
    return c


def _params(workdir):
    ckpt = Checkpointer(str(workdir), create=False)
    try:
        _, state, _ = ckpt.restore_latest()
    finally:
        ckpt.close()
    return [np.asarray(a) for a in jax.tree.leaves(state['params'])]


def _lines(workdir):
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(l) for l in f]


def _assert_identical(a, b):
    assert len(a) == len(b) > 0
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and np.array_equal(u, v)


def test_a_single_run_is_a_one_member_sweep_bit_for_bit(tmp_path):
    # The sweep rebuilds the optimizer from a traced learning rate; with the config's own
    # value it must be the very same program's numbers.
    lr = 0.01
    single = run(_config(**{'optimizer.learning_rate': lr}), str(tmp_path / 'run'))
    swept = run(_config(**{'optimizer.learning_rate': lr},
                        sweep=f'optimizer.learning_rate={lr}'), str(tmp_path / 'sweep'))
    _assert_identical(_params(tmp_path / 'sweep'), _params(tmp_path / 'run'))
    # one run keeps scalars, a sweep of one member lists
    assert isinstance(single['test_accuracy'], float)
    assert swept['test_accuracy'] == [single['test_accuracy']]
    assert single['test_accuracy_std'] == 0.0  # one member: no spread measured
    _assert_times_add_up(single, tmp_path / 'run')
    assert [l['train_loss'] for l in _lines(tmp_path / 'sweep')] == [
        [l['train_loss']] for l in _lines(tmp_path / 'run')]


def test_held_out_examples_are_never_trained_on(tmp_path):
    # Holding out the last V examples trains exactly like train_limit = n - V without a
    # validation split; and with both, training uses the first train_limit examples.
    # One epoch: the examples an epoch trains on are the property, the same in every epoch.
    v = 437
    held = run(_config(validation_examples=v, epochs=1), str(tmp_path / 'held'))
    limited = run(_config(train_limit=N_TRAIN - v, epochs=1), str(tmp_path / 'limited'))
    _assert_identical(_params(tmp_path / 'held'), _params(tmp_path / 'limited'))
    assert held['test_accuracy'] == limited['test_accuracy']
    assert held['train_examples'] == N_TRAIN - v and held['validation_examples'] == v
    both = run(_config(validation_examples=v, train_limit=640, epochs=1), str(tmp_path / 'both'))
    run(_config(train_limit=640, epochs=1), str(tmp_path / 'limit640'))
    _assert_identical(_params(tmp_path / 'both'), _params(tmp_path / 'limit640'))
    assert both['train_examples'] == 640
    # the validation accuracy is reported each epoch and in the summary, beside test
    lines = _lines(tmp_path / 'held')
    assert all(0 <= l['validation_accuracy'] <= 1 for l in lines)
    assert list(lines[-1]).index('validation_accuracy') == list(lines[-1]).index(
        'test_accuracy') + 1
    assert held['validation_accuracy'] == lines[-1]['validation_accuracy']
    assert 'validation_accuracy' not in _lines(tmp_path / 'limited')[-1]


def _shifted_validation(monkeypatch, v):
    """digits with the labels of the last `v` training examples shifted by one class: a
    model that learns the task scores near 0 there, one that learns nothing near chance."""
    real = data_lib.load

    def load(name, data_dir=''):
        ds = real(name, data_dir)
        y = np.array(ds.y_train)
        y[-v:] = (y[-v:] + 1) % ds.num_classes
        return ds._replace(y_train=y)

    monkeypatch.setattr(data_lib, 'load', load)


def test_a_sweep_ranks_settings_on_validation_never_on_test(tmp_path, monkeypatch, capsys):
    v = 300
    _shifted_validation(monkeypatch, v)
    lrs = (1e-5, 0.01)  # learns nothing / learns the task
    summary = run(_config(validation_examples=v, num_seeds=2, epochs=3,
                          sweep=f'optimizer.learning_rate={lrs[0]},{lrs[1]}'),
                  str(tmp_path / 'sweep'))
    last = _lines(tmp_path / 'sweep')[-1]
    val = np.reshape(last['validation_accuracy'], (2, 2)).mean(axis=1)  # settings x seeds
    test = np.reshape(last['test_accuracy'], (2, 2)).mean(axis=1)
    # the construction makes the splits disagree, so the ranking shows which one it used
    assert np.argmax(val) != np.argmax(test), (val, test)
    best = summary['best_setting']
    assert best['index'] == int(np.argmax(val)) == 0
    assert best['values'] == {'optimizer.learning_rate': lrs[0]}
    assert best['seeds'] == [0, 1]
    np.testing.assert_allclose(best['validation_accuracy_mean'], val[0], rtol=1e-12)
    seeds_val = np.reshape(last['validation_accuracy'], (2, 2))[0]
    np.testing.assert_allclose(best['validation_accuracy_std'], np.std(seeds_val, ddof=1),
                               rtol=1e-12)
    with open(tmp_path / 'sweep' / 'summary.json') as f:
        assert json.load(f)['best_setting'] == best
    # the table: one labelled row per setting, mean ± std of both splits, the best marked
    err = capsys.readouterr().err
    rows = [l for l in err.splitlines() if l.lstrip('* ').startswith(('1e-05', '0.01'))]
    assert len(rows) == 2 and rows[0].startswith('*') and not rows[1].startswith('*'), err
    assert 'optimizer.learning_rate' in err and 'validation acc %' in err
    assert f'{100 * val[1]:.2f} ± ' in rows[1] and f'{100 * test[1]:.2f} ± ' in rows[1], rows


def test_a_sweep_without_validation_ranks_nothing_and_says_how_to(tmp_path, capsys):
    summary = run(_config(sweep='optimizer.learning_rate=0.001,0.01'), str(tmp_path / 'w'))
    assert summary['best_setting'] is None and 'best_member' not in summary
    assert [s['values'] for s in summary['settings']] == [
        {'optimizer.learning_rate': 0.001}, {'optimizer.learning_rate': 0.01}]
    notes = [l for l in capsys.readouterr().err.splitlines() if 'validation_examples' in l]
    assert len(notes) == 1 and notes[0].startswith('note: '), notes
    _assert_times_add_up(summary, tmp_path / 'w')


def test_seed_spreads_are_sample_standard_deviations(tmp_path, capsys):
    # train_limit beyond the data trains on all of it (the spread is measured the same way):
    # one run checks both the spread and the note that says how many examples are used.
    summary = run(_config(num_seeds=3, epochs=1, train_limit=5000), str(tmp_path / 'seeds'))
    notes = [l for l in capsys.readouterr().err.splitlines() if 'train_limit' in l]
    assert len(notes) == 1 and notes[0].startswith('note: '), notes
    assert f'all {N_TRAIN}' in notes[0], notes
    assert summary['train_examples'] == N_TRAIN
    accs = np.asarray(summary['test_accuracy'])
    assert len(accs) == 3 and np.ptp(accs) > 0  # distinct seeds: a spread to measure
    np.testing.assert_allclose(summary['test_accuracy_std'], np.std(accs, ddof=1), rtol=1e-12)
    assert summary['std_ddof'] == 1
    # the one-member case (std 0.0) is checked on test_a_single_run_is_a_one_member_sweep's run


def test_spread_and_best_setting_by_hand():
    assert members_lib.spread([0.5]) == (0.5, 0.0)
    mean, std = members_lib.spread([0.2, 0.4])
    assert mean == pytest.approx(0.3) and std == pytest.approx(np.sqrt(0.02))
    settings = [{'validation_accuracy_mean': 0.5, 'test_accuracy_mean': 0.9},
                {'validation_accuracy_mean': 0.7, 'test_accuracy_mean': 0.1},
                {'validation_accuracy_mean': 0.7, 'test_accuracy_mean': 0.2}]
    assert members_lib.best_setting(settings)['index'] == 1  # the first of equals
    assert members_lib.best_setting([{'test_accuracy_mean': 0.9}]) is None


# A train_limit beyond the data: checked in test_seed_spreads_are_sample_standard_deviations.


def _assert_times_add_up(s, workdir):
    """Asserts that a run's times leave out loading and compiling and add up.

    Called on a two-epoch single run (test_a_single_run_is_a_one_member_sweep_bit_for_bit)
    and a two-epoch, two-member sweep (test_a_sweep_without_validation_ranks_nothing_...).

    Args:
      s: the summary `run` returned.
      workdir: the run's folder (its metrics.jsonl holds the epoch times).
    """
    for key in ('load_seconds', 'compile_seconds', 'train_seconds', 'loop_seconds',
                'wall_seconds'):
        assert s[key] > 0, key
    epoch_seconds = [l['epoch_seconds'] for l in _lines(workdir)]
    assert len(epoch_seconds) == 2
    assert s['train_seconds'] == pytest.approx(sum(epoch_seconds))
    assert s['train_seconds'] <= s['loop_seconds']
    assert s['load_seconds'] + s['compile_seconds'] + s['loop_seconds'] <= s['wall_seconds']
