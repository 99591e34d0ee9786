"""Preemption of a 2-process run (CPU, gloo collectives) through the real CLI, at step
granularity: calls of 2 steps (8 per epoch), a mid-epoch checkpoint every 4 steps.

A SIGTERM reaches ONE of the two processes (process 1 sends it to itself after step 10,
through the test hook): the processes agree on the stop at that call boundary, both save
the same mid-epoch checkpoint and exit 3 (a timeout catches a hang). Resumed, both are
killed with SIGKILL after the mid-epoch checkpoint of step 18 (saved 4 steps after step
14's); resumed again, the run ends with parameters bit-identical to an uninterrupted
2-process run.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import multihost_check  # tests/parallel/multihost_check.py
from idx_files import write_mnist

EPOCHS = 4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


STEPS = ['--config.steps_per_call=2', '--config.checkpoint_every_steps=4']


def _launch(data, workdir, hooks=('', ''), timeout=240, extra=STEPS):
    """The processes of one run, one per entry of `hooks` (one: no jax.distributed);
    `[(returncode, log), ...]` in process order. The runs share a compilation cache (next
    to the data), so a run's programs compile once."""
    env = dict(os.environ, JAX_PLATFORMS='cpu',
               JAX_COMPILATION_CACHE_DIR=os.path.join(os.path.dirname(data), 'jaxcache'),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
    env['XLA_FLAGS'] = re.sub(r'--xla_force_host_platform_device_count=\d+', '',
                              env.get('XLA_FLAGS', ''))
    port = multihost_check._free_port()
    flags = ['--config=experiments/configs/bp.py', '--config.dataset=fashion_mnist',
             f'--config.data_dir={data}', '--config.model.hidden=16,', f'--config.epochs={EPOCHS}',
             '--config.batch_size=32', '--config.eval_batch_size=64', '--config.progress=off',
             '--config.tensorboard=False', '--config.checkpoint_every=0', *extra,
             f'--workdir={workdir}']
    if len(hooks) > 1:
        flags += ['--config.distributed.enabled=True',
                  f'--config.distributed.num_processes={len(hooks)}',
                  f'--config.distributed.coordinator_address=localhost:{port}']
    procs = []
    for i, hook in enumerate(hooks):
        e = dict(env, NEUROKIT_TEST_HOOK=hook) if hook else env
        own = [f'--config.distributed.process_id={i}'] if len(hooks) > 1 else []
        procs.append(subprocess.Popen(
            [sys.executable, '-m', 'experiments.train', *flags, *own], cwd=REPO, env=e,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    out = []
    try:
        for p in procs:
            out.append((p.communicate(timeout=timeout)[0], p.returncode))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail('a process hung (no agreed stop?)')
    return [(rc, log) for log, rc in out]


def _final(workdir):
    """The final checkpoint's epoch and the checksums saved with it: a checksum of every
    array of the state (two 32-bit words; tests/train/test_checkpoint.py shows they see one
    flipped bit), read without restoring the 2-process arrays into this process."""
    import json
    folder = max((n for n in os.listdir(workdir / 'checkpoints') if n.isdigit()), key=int)
    meta = json.loads((workdir / 'checkpoints' / folder / 'meta' / 'metadata').read_text())
    return meta['epoch'], meta['checksums']


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes_exactly(tmp_path):
    data = str(tmp_path / 'idx')
    write_mnist(data, n_train=256, n_test=64)
    ref = tmp_path / 'ref'
    for rc, log in _launch(data, ref):
        assert rc == 0, log[-3000:]
    run = tmp_path / 'run'
    results = _launch(data, run, hooks=('', '10:after_call:term'))
    for i, (rc, log) in enumerate(results):
        assert rc == 3, f'process {i}: exit {rc}\n{log[-3000:]}'
        assert 'at step 2 of 8 in epoch 2 of 4' in log, log[-3000:]
    assert "another process's SIGTERM" in results[0][1]
    assert os.listdir(run / 'checkpoints' / 'partial') == ['10']
    for i, (rc, log) in enumerate(_launch(data, run, hooks=('18:after_mid_checkpoint:kill',) * 2)):
        assert rc == -9, f'process {i}: exit {rc}\n{log[-3000:]}'
    for rc, log in _launch(data, run):
        assert rc == 0, log[-3000:]
    (e_ref, ref_sums), (e_run, run_sums) = _final(ref), _final(run)
    assert e_ref == e_run == EPOCHS
    assert len(ref_sums) > 4 and run_sums == ref_sums, 'the resumed run differs'
    lines = [(d / 'metrics.jsonl').read_text().splitlines() for d in (ref, run)]
    drop = lambda line: re.sub(r'"epoch_seconds": [0-9.e+-]+', '', line)
    assert [drop(l) for l in lines[1]] == [drop(l) for l in lines[0]]


def test_a_sweep_over_two_processes_equals_the_sweep_in_one(tmp_path):
    """8 learning rates x 2 seeds: each process trains 8 of the 16 members on its device,
    process 0 gathers their metrics; every metrics line equals the 1-process sweep's."""
    data = str(tmp_path / 'idx')
    write_mnist(data, n_train=256, n_test=64)
    sweep = ['--config.sweep=optimizer.learning_rate=' + ','.join(
        str(round(1e-3 * 1.5 ** i, 6)) for i in range(8)), '--config.num_seeds=2',
        '--config.validation_examples=64']
    one, two = tmp_path / 'one', tmp_path / 'two'
    for rc, log in _launch(data, one, hooks=('',), extra=sweep):
        assert rc == 0, log[-3000:]
    results = _launch(data, two, extra=sweep)
    for rc, log in results:
        assert rc == 0, log[-3000:]
    lines = [[json.loads(l) for l in (d / 'metrics.jsonl').read_text().splitlines()]
             for d in (one, two)]
    assert len(lines[0]) == len(lines[1]) == EPOCHS
    for a, b in zip(*lines):
        assert len(a['train_loss']) == 16
        for key in ('train_loss', 'test_accuracy', 'validation_accuracy'):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-7, err_msg=key)
    summary = json.loads((two / 'summary.json').read_text())
    assert (summary['processes'], summary['devices']) == (2, 2)
