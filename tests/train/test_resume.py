"""Exact resume through the real CLI: SIGKILL at random points, SIGTERM, finished runs.

A run killed at any moment and resumed (possibly several times) must end with
parameters bit-identical to an uninterrupted run, and its metrics.jsonl must
hold each epoch exactly once with the same numbers. The kill points are drawn
at random per test run (seed printed on failure; fix it with NEUROKIT_RESUME_SEED).

Speed: tiny MLP on a synthetic 28x28 IDX data set (loads in milliseconds, no
sklearn import), 2 vmapped seeds (the `num_seeds` path), and a persistent JAX
compilation cache shared by the runs, so every run after the first skips XLA
compilation, and one command server (tests/cli_runner.py) that imports JAX once and
forks each run.
"""
import json
import os
import random
import signal

import jax
import numpy as np
import pytest
from cli_runner import Server, cli_env
from idx_files import write_mnist

EPOCHS = 5
PHASES = ('before_epoch', 'after_metrics', 'during_checkpoint', 'after_checkpoint')


def write_idx(folder):
    write_mnist(folder, n_train=512, n_test=128)


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    data = str(tmp_path_factory.mktemp('idx'))
    write_idx(data)
    e = cli_env(JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp('jaxcache')),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
    with Server(e) as server:
        yield {'data': data, 'server': server, 'tmp': tmp_path_factory}


def command(env, workdir, *extra, config='experiments/configs/bp.py', hidden='16,'):
    return [f'--config={config}', f'--workdir={workdir}',
            '--config.dataset=fashion_mnist', f'--config.data_dir={env["data"]}',
            f'--config.model.hidden={hidden}', f'--config.epochs={EPOCHS}',
            '--config.batch_size=64', '--config.eval_batch_size=128',
            '--config.num_seeds=2', '--config.keep_checkpoints=2', *extra]


def train(env, workdir, hook=None, kill_after=None, extra=(), config='experiments/configs/bp.py',
          hidden='16,', poison_epoch=None):
    """Runs `python -m experiments.train` (a fork of the module's command server, see
    tests/cli_runner.py); `hook` sets NEUROKIT_TEST_HOOK, `kill_after` SIGKILLs from
    outside, `poison_epoch` feeds NaN inputs in that epoch (NEUROKIT_TEST_POISON_EPOCH)."""
    e = {}
    if hook:
        e['NEUROKIT_TEST_HOOK'] = hook
    if poison_epoch:
        e['NEUROKIT_TEST_POISON_EPOCH'] = str(poison_epoch)
    job = env['server'].start('experiments.train',
                              command(env, workdir, *extra, config=config, hidden=hidden), e)
    if kill_after is not None:
        return job.kill_after(kill_after)
    return job.wait(timeout=300)


def final_state(workdir):
    from neurokit.experiment.checkpoint import Checkpointer
    ckpt = Checkpointer(workdir, create=False)
    try:
        epoch, state, _ = ckpt.restore_latest()
    finally:
        ckpt.close()
    import jax
    return epoch, [np.asarray(a) for a in jax.tree.leaves(state)]


def final_state_tree(workdir):
    from neurokit.experiment.checkpoint import Checkpointer
    ckpt = Checkpointer(workdir, create=False)
    try:
        return ckpt.restore_latest()[1]
    finally:
        ckpt.close()


def metrics(workdir):
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(l) for l in f]


def assert_same_run(ref_dir, workdir):
    ref_epoch, ref_leaves = final_state(ref_dir)
    epoch, leaves = final_state(workdir)
    assert epoch == ref_epoch == EPOCHS
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(ref_leaves, leaves):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), 'resumed parameters differ from the uninterrupted run'
    ref, got = metrics(ref_dir), metrics(workdir)
    assert [r['epoch'] for r in got] == list(range(1, EPOCHS + 1))
    drop = ('epoch_seconds',)
    assert [{k: v for k, v in r.items() if k not in drop} for r in got] == \
           [{k: v for k, v in r.items() if k not in drop} for r in ref]
    summary = json.load(open(os.path.join(workdir, 'summary.json')))
    assert summary['test_accuracy'] == ref[-1]['test_accuracy']


@pytest.fixture(scope='module')
def reference(env):
    workdir = str(env['tmp'].mktemp('ref'))
    rc, out, err = train(env, workdir)
    assert rc == 0, err[-2000:]
    return workdir


def _kill_points(rng, n=3):
    points = sorted(rng.sample([(e, p) for e in range(1, EPOCHS + 1) for p in range(len(PHASES))], n))
    return [(e, PHASES[p]) for e, p in points]


def test_sigkill_at_random_points_resumes_bit_exactly(env, reference):
    seed = int(os.environ.get('NEUROKIT_RESUME_SEED', random.randrange(2**31)))
    rng = random.Random(seed)
    workdir = str(env['tmp'].mktemp('killed'))
    points = _kill_points(rng)
    history = []
    # The hook points come first, on a fresh workdir, so the first one always fires (a
    # later one is skipped when an earlier kill's resume already passed it).
    for epoch, phase in points:
        hook = f'{epoch}:{phase}:kill'
        if phase == 'during_checkpoint':
            hook += f':{rng.uniform(0.0, 0.2):.3f}'
        rc, _, err = train(env, workdir, hook=hook)
        history.append((hook, rc))
        assert rc in (-signal.SIGKILL, 0), (seed, history, err[-2000:])
    assert any(rc == -signal.SIGKILL for _, rc in history), (seed, history)
    # Then one external SIGKILL after a random delay: an arbitrary moment (startup,
    # compile, an epoch or a save), not one of the hook points. (A whole run takes about
    # 1.3 s here once the compilation cache is warm: the imports are the server's.)
    rc, _, err = train(env, workdir, kill_after=rng.uniform(0.05, 1.5))
    history.append(('external', rc))
    rc, _, err = train(env, workdir)
    history.append(('final', rc))
    assert rc == 0, (seed, history, err[-2000:])
    try:
        assert_same_run(reference, workdir)
    except AssertionError as e:
        raise AssertionError(f'seed {seed}, kills {history}: {e}') from None


@pytest.mark.parametrize('sig', ['term', 'int'])
def test_sigterm_or_ctrl_c_checkpoints_and_exits_3_then_resumes(env, reference, sig):
    workdir = str(env['tmp'].mktemp(sig))
    # checkpoint_every=0 (final only): the checkpoint the signal asks for is the only one.
    rc, _, err = train(env, workdir, hook=f'2:after_metrics:{sig}',
                       extra=('--config.checkpoint_every=0',))
    assert rc == 3, err[-2000:]
    last = err.strip().splitlines()[-1]
    name = {'term': 'SIGTERM', 'int': 'SIGINT'}[sig]
    assert last.startswith('preempted:') and 'epoch 2' in last and name in last, last
    assert 'Traceback' not in err, err[-2000:]
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
    assert not os.path.exists(os.path.join(workdir, 'summary.json'))
    rc, _, err = train(env, workdir, extra=('--config.checkpoint_every=0',))
    assert rc == 0, err[-2000:]
    assert_same_run(reference, workdir)


def test_ctrl_c_before_training_exits_130_and_says_nothing_was_saved(env, reference):
    # A Ctrl-C before the loop's handlers are installed (data loading, compiling) is a plain
    # KeyboardInterrupt: no checkpoint exists, and the message must not claim one does.
    workdir = str(env['tmp'].mktemp('int0'))
    rc, _, err = train(env, workdir, hook='0:before_start:int')
    assert rc == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('interrupted:') and 'no checkpoint had been saved' in last, last
    assert 'Traceback' not in err, err[-2000:]
    assert not os.path.exists(os.path.join(workdir, 'checkpoints', '1'))
    rc, _, err = train(env, workdir)
    assert rc == 0, err[-2000:]
    assert_same_run(reference, workdir)


def test_finished_run_is_left_untouched(env, reference):
    before = {}
    for root, _, files in os.walk(reference):
        for name in files:
            path = os.path.join(root, name)
            before[path] = (open(path, 'rb').read(), os.stat(path).st_mtime_ns)
    rc, out, err = train(env, reference)
    assert rc == 0, err[-2000:]
    assert 'already finished' in err
    assert json.loads(out.strip().splitlines()[-1])['epochs'] == EPOCHS
    after = {}
    for root, _, files in os.walk(reference):
        for name in files:
            path = os.path.join(root, name)
            after[path] = (open(path, 'rb').read(), os.stat(path).st_mtime_ns)
    assert after == before


def test_layerwise_mf_run_resumes_bit_exactly(env):
    # The mf config trains with layerwise updates: one optimizer state per block, checkpointed
    # and restored like any other state.
    mf = dict(config='experiments/configs/mf.py', hidden='16,16')
    ref = str(env['tmp'].mktemp('mf_ref'))
    rc, _, err = train(env, ref, **mf)
    assert rc == 0, err[-2000:]
    workdir = str(env['tmp'].mktemp('mf_killed'))
    rc, _, err = train(env, workdir, hook='3:after_checkpoint:kill', **mf)
    assert rc == -signal.SIGKILL, err[-2000:]
    rc, _, err = train(env, workdir, **mf)
    assert rc == 0, err[-2000:]
    assert_same_run(ref, workdir)


def test_sigkill_mid_epoch_at_random_steps_resumes_bit_exactly(env):
    # Calls of 3 steps (8 steps per epoch: calls end at steps 3 and 6 of each, then the
    # epoch's remainder of 2) and a mid-epoch checkpoint every 3 steps. Killed at 3
    # random call boundaries, before or after that boundary's checkpoint, and resumed
    # each time: the parameters and every metrics line equal the uninterrupted run's.
    steps = dict(extra=('--config.steps_per_call=3', '--config.checkpoint_every_steps=3'))
    ref = str(env['tmp'].mktemp('steps_ref'))
    rc, _, err = train(env, ref, **steps)
    assert rc == 0, err[-2000:]
    seed = int(os.environ.get('NEUROKIT_RESUME_SEED', random.randrange(2 ** 31)))
    rng = random.Random(seed)
    points = sorted(rng.sample([e * 8 + o for e in range(EPOCHS) for o in (3, 6)], 3))
    workdir = str(env['tmp'].mktemp('steps_killed'))
    for step in points:
        phase = rng.choice(('after_call', 'after_mid_checkpoint'))
        rc, _, err = train(env, workdir, hook=f'{step}:{phase}:kill', **steps)
        assert rc == -signal.SIGKILL, (seed, step, phase, err[-2000:])
    rc, _, err = train(env, workdir, **steps)
    assert rc == 0, (seed, err[-2000:])
    assert 'resuming from step' in err or 'resuming from epoch' in err
    assert_same_run(ref, workdir)


def test_batchnorm_statistics_are_checkpointed_and_resume_bit_exactly(env):
    # A one-stage VGG with BatchNorm: the running averages live in the params, move every
    # step, are saved with them, and a run killed after a checkpoint resumes to the same
    # numbers.
    bn = dict(extra=('--config.model.name=vgg', '--config.model.channels=2,',
                     '--config.model.norm=batch'))
    ref = str(env['tmp'].mktemp('bn_ref'))
    rc, _, err = train(env, ref, **bn)
    assert rc == 0, err[-2000:]
    stats = [np.asarray(a) for a in jax.tree.leaves(
        final_state_tree(ref)['params']['layers'][0]['batch_stats'])]
    assert stats and all(np.any((a != 0) & (a != 1)) for a in stats)  # moved off (0, 1)
    workdir = str(env['tmp'].mktemp('bn_killed'))
    rc, _, err = train(env, workdir, hook='2:after_checkpoint:kill', **bn)
    assert rc == -signal.SIGKILL, err[-2000:]
    rc, _, err = train(env, workdir, **bn)
    assert rc == 0, err[-2000:]
    assert_same_run(ref, workdir)


def test_a_run_stopped_by_a_non_finite_loss_resumes_with_the_fix_it_names(env, reference):
    # NaN inputs in epoch 3 stop the run after checkpoint 2; the message's fix
    # (nan_policy=skip) must be accepted on the same workdir and resume from epoch 2.
    workdir = str(env['tmp'].mktemp('nan'))
    rc, _, err = train(env, workdir, poison_epoch=3)
    assert rc == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert 'non-finite' in last and 'epoch 2' in last and 'nan_policy=skip' in last, last
    rc, _, err = train(env, workdir, extra=('--config.nan_policy=skip',))
    assert rc == 0, err[-2000:]
    summary = json.load(open(os.path.join(workdir, 'summary.json')))
    assert summary['resumed_from_epoch'] == 2
    # No step was non-finite after the resume, so skip changed nothing: the same weights.
    ref_epoch, ref_leaves = final_state(reference)
    epoch, leaves = final_state(workdir)
    assert epoch == ref_epoch and len(leaves) == len(ref_leaves)
    for a, b in zip(ref_leaves, leaves):
        assert np.array_equal(a, b), 'the resumed run differs from the uninterrupted one'
    assert [r['epoch'] for r in metrics(workdir)] == list(range(1, EPOCHS + 1))


def test_a_run_that_recorded_nothing_takes_a_new_config(env):
    # Stopped in epoch 1 (no checkpoint, no metrics line): nothing to lose, so a corrected
    # config starts over on the same workdir; once an epoch is recorded it is refused again.
    workdir = str(env['tmp'].mktemp('nothing'))
    rc, _, err = train(env, workdir, poison_epoch=1)
    assert rc == 2 and 'no checkpoint was saved' in err, err[-2000:]
    lr = ('--config.optimizer.learning_rate=0.0005', '--config.epochs=1')
    rc, _, err = train(env, workdir, extra=lr)
    assert rc == 0, err[-2000:]
    stored = json.load(open(os.path.join(workdir, 'config.json')))
    assert stored['optimizer']['learning_rate'] == 0.0005
    rc, _, err = train(env, workdir, extra=('--config.epochs=1',))
    assert rc == 2 and 'different config' in err, err[-2000:]


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(env, reference):
    workdir = str(env['tmp'].mktemp('int2'))
    rc, _, err = train(env, workdir, hook='2:after_metrics:int,2:after_metrics:int')
    assert rc == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('interrupted:') and 'Traceback' not in err, err[-2000:]
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1']
    rc, _, err = train(env, workdir)
    assert rc == 0, err[-2000:]
    assert_same_run(reference, workdir)


def test_a_sweep_preempted_then_killed_mid_save_resumes_bit_exactly(env):
    # A --config.sweep run (2 learning rates x 2 seeds, one vmapped state) resumes like a run:
    # SIGTERM saves and exits 3, a SIGKILL during a later save leaves the checkpoint before it.
    sweep = ('--config.sweep=optimizer.learning_rate=0.001,0.003',)
    ref = str(env['tmp'].mktemp('sweep_ref'))
    rc, _, err = train(env, ref, extra=sweep)
    assert rc == 0, err[-2000:]
    workdir = str(env['tmp'].mktemp('sweep'))
    rc, _, err = train(env, workdir, hook='2:after_metrics:term',
                       extra=sweep + ('--config.checkpoint_every=0',))
    assert rc == 3, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('preempted:') and 'epoch 2' in last and 'Traceback' not in err, last
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
    rc, _, err = train(env, workdir, hook='4:during_checkpoint:kill:0.02', extra=sweep)
    assert rc == -signal.SIGKILL, err[-2000:]
    rc, _, err = train(env, workdir, extra=sweep)
    assert rc == 0, err[-2000:]
    assert_same_run(ref, workdir)
    summary = json.load(open(os.path.join(workdir, 'summary.json')))
    assert summary['num_members'] == 4 and summary['resumed_from_epoch'] >= 3
