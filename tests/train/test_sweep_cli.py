"""`--config.sweep`: a hyperparameter grid as one vmapped program equals separate runs."""
import json
import os

import numpy as np
import pytest

from experiments.configs import bp as bp_config
from experiments.configs import pc as pc_config
from neurokit.experiment.errors import ConfigError, TrainingError
from neurokit.experiment.run import run


def _config(**over):
    c = bp_config.get_config()
    c.dataset, c.model.hidden, c.epochs, c.batch_size = 'digits', (32,), 2, 64
    c.progress, c.tensorboard = 'off', False
    c.update_from_flattened_dict(over)
    return c


def _curve(workdir, key):
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return np.array([json.loads(l)[key] for l in f], np.float64)


def test_sweep_members_equal_separate_runs(tmp_path):
    """Member (lr, seed) of the sweep trains exactly like a plain run with that lr and seed."""
    lrs = (0.001, 0.01)
    summary = run(_config(**{'sweep': f'optimizer.learning_rate={lrs[0]},{lrs[1]}',
                             'num_seeds': 2}), str(tmp_path / 'sweep'))
    assert summary['num_members'] == 4
    assert [(m['optimizer.learning_rate'], m['seed']) for m in summary['members']] == [
        (lrs[0], 0), (lrs[0], 1), (lrs[1], 0), (lrs[1], 1)]
    assert summary['test_accuracy_mean'] == pytest.approx(np.mean(summary['test_accuracy']))
    sweep_loss = _curve(tmp_path / 'sweep', 'train_loss')  # (epochs, members)
    for member, (lr, seed) in enumerate([(lrs[0], 0), (lrs[1], 1)]):
        i = member * 3  # members 0 and 3
        wdir = tmp_path / f'single{i}'
        run(_config(**{'optimizer.learning_rate': lr, 'seed': seed}), str(wdir))
        np.testing.assert_allclose(sweep_loss[:, i], _curve(wdir, 'train_loss'), rtol=1e-5)
        np.testing.assert_allclose(_curve(tmp_path / 'sweep', 'test_accuracy')[:, i],
                                   _curve(wdir, 'test_accuracy'), atol=1e-6)


def test_sweep_of_a_shape_or_count_is_a_config_error(tmp_path):
    c = pc_config.get_config()
    c.dataset, c.model.hidden, c.epochs, c.batch_size = 'digits', (16,), 1, 64
    c.progress, c.tensorboard = 'off', False
    c.sweep = 'rule_kwargs.inference_steps=2,4'
    with pytest.raises(ConfigError, match='cannot be swept'):
        run(c, str(tmp_path / 'w'))


@pytest.mark.parametrize('spec, match', [
    ('optimizer.learning_rate', 'is not a sweep'), ('model.hidden=1,2', 'is not a sweep'),
    ('optimizer.learning_rate=a,b', 'is not a sweep'), ('optimizer.nope=1', 'not a numeric key'),
    ('optimizer.learning_rate=0.1;optimizer.learning_rate=0.2', 'names optimizer.learning_rate '
     'twice'),
    ('optimizer.learning_rate=0.1,0.2,0.1', 'lists 0.1 more than once'),
    (' ', 'names no KEY'), (';;', 'names no KEY')])
def test_malformed_sweep_is_a_config_error(spec, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        run(_config(sweep=spec), str(tmp_path / 'w'))
    assert not (tmp_path / 'w').exists()  # nothing written


def test_a_sweep_mesh_need_not_divide_the_batch():
    # the batch is not split in a sweep, the members are
    from neurokit.experiment import config as config_lib
    config_lib.validate(_config(sweep='optimizer.learning_rate=0.1,0.2,0.3', mesh='data=3'))
    with pytest.raises(ConfigError, match='does not divide by the data axis'):
        config_lib.validate(_config(mesh='data=3'))


@pytest.mark.parametrize('over, members, devices, expected', [
    ({}, 4, 8, 4),                            # default mesh: the even split gcd(4, 8)
    ({}, 16, 8, 8),
    ({}, 3, 8, 1),
    ({'parallel': 'none'}, 16, 8, 1),
    ({'mesh': 'data=2'}, 4, 8, 2),
])
def test_sweep_members_split_evenly_over_the_devices(over, members, devices, expected):
    from neurokit.experiment.placement import member_devices
    used, note = member_devices(_config(**over), members, devices)
    assert used == expected
    # a note exactly when the default mesh leaves devices idle
    assert (note is not None) == (expected < devices and over == {}), note


@pytest.mark.parametrize('over, processes, match', [
    ({'mesh': 'data=3'}, 1, 'cannot be split evenly over 3 devices'),
    ({'mesh': 'data=16'}, 1, 'needs 16 devices but 8 are visible'),
    ({'parallel': 'pmap'}, 1, 'drop --config.parallel=pmap'),
    ({'fsdp': True}, 1, 'drop --config.fsdp=True'),
    ({'mesh': 'data=2,stage=2'}, 1, "drop 'stage='"),
    ({'parallel': 'none'}, 2, "splits its members over every process's devices"),
])
def test_sweep_device_settings_that_do_not_apply_are_config_errors(over, processes, match):
    from neurokit.experiment.placement import member_devices
    with pytest.raises(ConfigError, match=match):
        member_devices(_config(**over), 4, 8, processes)


def test_a_sweep_over_processes_takes_as_many_devices_from_each():
    from neurokit.experiment.placement import member_devices
    assert member_devices(_config(), 16, 8, 2)[0] == 8   # 4 devices per process
    assert member_devices(_config(), 6, 8, 2)[0] == 6    # 3 per process; a note says so
    with pytest.raises(ConfigError, match='cannot be split evenly over 2 processes'):
        member_devices(_config(), 3, 8, 2)


def test_sweep_of_a_warmup_cosine_learning_rate_and_sgd_momentum_equals_separate_runs(tmp_path):
    # Both used to be refused: optax's warm-up schedule tests the peak in Python, and a
    # momentum of 0 switched the trace off in Python.
    over = {'optimizer.name': 'sgd', 'optimizer.schedule': 'warmup_cosine',
            'optimizer.warmup_epochs': 1}
    run(_config(**over, sweep='optimizer.learning_rate=0.003,0.03;optimizer.momentum=0,0.9'),
        str(tmp_path / 'sweep'))
    sweep_loss = _curve(tmp_path / 'sweep', 'train_loss')  # members (lr, momentum) in grid order
    for i, (lr, momentum) in ((0, (0.003, 0.0)), (3, (0.03, 0.9))):
        wdir = tmp_path / f'single{i}'
        run(_config(**over, **{'optimizer.learning_rate': lr, 'optimizer.momentum': momentum}),
            str(wdir))
        np.testing.assert_allclose(sweep_loss[:, i], _curve(wdir, 'train_loss'), rtol=1e-5)


# sgd at 1e30 overflows the weights within two steps; 0.01 trains normally.
DIVERGING = {'optimizer.name': 'sgd', 'sweep': 'optimizer.learning_rate=0.01,1e30'}


@pytest.fixture(scope='module')
def diverged(tmp_path_factory):
    """DIVERGING stopped in epoch 1 by its non-finite member, then the same workdir run
    again with nan_policy=skip, as the stop message says: `(message, summary, workdir)`.
    Nothing of the stopped run is kept, so the second run is the skip sweep from the start
    that test_skip_in_a_sweep_skips_only_the_diverging_member checks."""
    workdir = tmp_path_factory.mktemp('diverging') / 'w'
    with pytest.raises(TrainingError) as e:
        run(_config(**DIVERGING), str(workdir))
    summary = run(_config(**DIVERGING, nan_policy='skip'), str(workdir))
    return str(e.value), summary, workdir


def test_a_diverging_member_stops_the_sweep_naming_its_values(diverged):
    msg, summary, _ = diverged
    assert 'sweep member 1 (optimizer.learning_rate=1e+30, seed=0);' in msg, msg
    assert 'epoch 1' in msg and '\n' not in msg, msg
    # lowering a swept value is another sweep (not resumable); skip is
    assert 'drop those values of --config.sweep (with a new --workdir)' in msg, msg
    assert 'nan_policy=skip (the same command resumes with it' in msg, msg
    # ... as the message says: the same workdir takes the skip
    assert summary['epochs'] == 2 and np.all(np.isfinite(summary['test_accuracy']))


def test_skip_in_a_sweep_skips_only_the_diverging_member(diverged, tmp_path):
    """nan_policy=skip applies per member: member 0 trains exactly as a run of its own,
    member 1 skips its non-finite steps and keeps finite parameters."""
    _, summary, sweep = diverged
    skipped = _curve(sweep, 'train_skipped_steps')  # (epochs, members)
    assert np.all(skipped[:, 0] == 0) and np.all(skipped[:, 1] > 0), skipped
    # an epoch whose every step was skipped has no loss to report: NaN, not a perfect 0
    loss, steps = _curve(sweep, 'train_loss'), _curve(sweep, 'step')[0]
    assert np.all(np.isnan(loss[skipped[:, 1] == steps, 1]))
    assert np.all(np.isfinite(loss[skipped[:, 1] < steps, 1]))
    assert np.any(skipped[:, 1] == steps), skipped  # the case above was reached
    assert np.all(np.isfinite(summary['test_accuracy']))
    single = tmp_path / 'single'
    run(_config(**{'optimizer.name': 'sgd', 'optimizer.learning_rate': 0.01}), str(single))
    np.testing.assert_allclose(_curve(sweep, 'train_loss')[:, 0],
                               _curve(single, 'train_loss'), rtol=1e-5)
    np.testing.assert_allclose(_curve(sweep, 'test_accuracy')[:, 0],
                               _curve(single, 'test_accuracy'), atol=1e-6)
