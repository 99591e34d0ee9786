"""Preemption of a 2-process run (CPU, gloo collectives) through the real CLI, at step
granularity: calls of 2 steps (8 per epoch), a mid-epoch checkpoint every 4 steps.

A SIGTERM reaches ONE of the two processes (process 1 sends it to itself after step 10,
through the test hook): the processes agree on the stop at that call boundary, both save
the same mid-epoch checkpoint and exit 3 (a timeout catches a hang). Resumed, both are
killed with SIGKILL mid-epoch at 3 random call boundaries, each before or after that
boundary's checkpoint, resumed after each (the seed is printed on failure; fix it with
NEUROKIT_RESUME_SEED); the last resume ends with parameters bit-identical to an
uninterrupted 2-process run.
"""
import json
import os
import random
import re

import numpy as np
import pytest

import multihost_check  # tests/parallel/multihost_check.py
from idx_files import write_mnist

EPOCHS = 4
SWEEP_EPOCHS = 2
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


STEPS = ['--config.steps_per_call=2', '--config.checkpoint_every_steps=4']


@pytest.fixture(scope='module')
def server(cli):
    """The test process's command server (tests/conftest.py's `cli`, the same cli_env()
    environment a server of this module's own had): each process of a run is a fork of one
    interpreter that imported JAX once, and the runs share its compilation cache."""
    return cli


def _launch(server, data, workdir, hooks=('', ''), timeout=240, extra=STEPS, epochs=EPOCHS):
    """The processes of one run, one per entry of `hooks` (one: no jax.distributed);
    `[(returncode, log), ...]` in process order."""
    xla = re.sub(r'--xla_force_host_platform_device_count=\d+', '', os.environ.get('XLA_FLAGS', ''))
    port = multihost_check._free_port()
    flags = ['--config=experiments/configs/bp.py', '--config.dataset=fashion_mnist',
             f'--config.data_dir={data}', '--config.model.hidden=16,', f'--config.epochs={epochs}',
             '--config.batch_size=32', '--config.eval_batch_size=64', '--config.progress=off',
             '--config.tensorboard=False', '--config.checkpoint_every=0', *extra,
             f'--workdir={workdir}']
    if len(hooks) > 1:
        flags += ['--config.distributed.enabled=True',
                  f'--config.distributed.num_processes={len(hooks)}',
                  f'--config.distributed.coordinator_address=localhost:{port}']
    jobs = []
    for i, hook in enumerate(hooks):
        env = dict({'XLA_FLAGS': xla}, **({'NEUROKIT_TEST_HOOK': hook} if hook else {}))
        own = [f'--config.distributed.process_id={i}'] if len(hooks) > 1 else []
        jobs.append(server.start('experiments.train', flags + own, env))
    try:
        runs = [job.wait(timeout) for job in jobs]
    except TimeoutError:
        pytest.fail('a process hung (no agreed stop?)')
    return [(r.returncode, r.stdout + r.stderr) for r in runs]


def _final(workdir):
    """The final checkpoint's epoch and the checksums saved with it: a checksum of every
    array of the state (two 32-bit words; tests/train/test_checkpoint.py shows they see one
    flipped bit), read without restoring the 2-process arrays into this process."""
    import json
    folder = max((n for n in os.listdir(workdir / 'checkpoints') if n.isdigit()), key=int)
    meta = json.loads((workdir / 'checkpoints' / folder / 'meta' / 'metadata').read_text())
    return meta['epoch'], meta['checksums']


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes_exactly(server, tmp_path):
    data = str(tmp_path / 'idx')
    write_mnist(data, n_train=256, n_test=64)
    ref = tmp_path / 'ref'
    for rc, log in _launch(server, data, ref):
        assert rc == 0, log[-3000:]
    run = tmp_path / 'run'
    results = _launch(server, data, run, hooks=('', '10:after_call:term'))
    for i, (rc, log) in enumerate(results):
        assert rc == 3, f'process {i}: exit {rc}\n{log[-3000:]}'
        assert 'at step 2 of 8 in epoch 2 of 4' in log, log[-3000:]
    assert "another process's SIGTERM" in results[0][1]
    assert os.listdir(run / 'checkpoints' / 'partial') == ['10']
    seed = int(os.environ.get('NEUROKIT_RESUME_SEED', random.randrange(2 ** 31)))
    rng = random.Random(seed)
    # mid-epoch call boundaries after the stop at step 10 (8 steps per epoch, calls of 2)
    points = sorted(rng.sample([e * 8 + o for e in range(1, EPOCHS) for o in (2, 4, 6)
                                if e * 8 + o > 10], 3))
    for step in points:
        # mid-epoch checkpoints sit every 4 steps from the stop's at step 10
        saves = (step - 10) % 4 == 0
        phase = rng.choice(('after_call', 'after_mid_checkpoint')) if saves else 'after_call'
        killed = _launch(server, data, run, hooks=(f'{step}:{phase}:kill',) * 2)
        # each process dies by its own SIGKILL, or, if process 0 (the coordinator) went
        # first, aborts when the coordination service is gone
        assert killed[0][0] == -9, (seed, step, phase, killed[0][1][-3000:])
        assert killed[1][0] in (-9, -6), (seed, step, phase, killed[1][1][-3000:])
    for rc, log in _launch(server, data, run):
        assert rc == 0, log[-3000:]
    (e_ref, ref_sums), (e_run, run_sums) = _final(ref), _final(run)
    assert e_ref == e_run == EPOCHS
    assert len(ref_sums) > 4 and run_sums == ref_sums, f'the resumed run differs (seed {seed})'
    lines = [(d / 'metrics.jsonl').read_text().splitlines() for d in (ref, run)]
    drop = lambda line: re.sub(r'"epoch_seconds": [0-9.e+-]+', '', line)
    assert [drop(l) for l in lines[1]] == [drop(l) for l in lines[0]]


def test_a_sweep_over_two_processes_equals_the_sweep_in_one(server, tmp_path):
    """8 learning rates x 2 seeds (issue 30's acceptance): each process trains 8 of the 16
    members on its device, process 0 gathers their metrics; every metrics line equals the
    1-process sweep's."""
    data = str(tmp_path / 'idx')
    write_mnist(data, n_train=256, n_test=64)
    sweep = ['--config.sweep=optimizer.learning_rate=' + ','.join(
        str(round(1e-3 * 1.5 ** i, 6)) for i in range(8)), '--config.num_seeds=2',
        '--config.validation_examples=64']
    one, two = tmp_path / 'one', tmp_path / 'two'
    for rc, log in _launch(server, data, one, hooks=('',), extra=sweep, epochs=SWEEP_EPOCHS):
        assert rc == 0, log[-3000:]
    results = _launch(server, data, two, extra=sweep, epochs=SWEEP_EPOCHS)
    for rc, log in results:
        assert rc == 0, log[-3000:]
    lines = [[json.loads(l) for l in (d / 'metrics.jsonl').read_text().splitlines()]
             for d in (one, two)]
    assert len(lines[0]) == len(lines[1]) == SWEEP_EPOCHS
    for a, b in zip(*lines):
        assert len(a['train_loss']) == 16
        for key in ('train_loss', 'test_accuracy', 'validation_accuracy'):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-7, err_msg=key)
    summary = json.loads((two / 'summary.json').read_text())
    assert (summary['processes'], summary['devices']) == (2, 2)
