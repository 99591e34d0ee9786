"""Two processes on localhost (CPU, gloo collectives) train like one process.

Each process joins via `neurokit.parallel.distributed.initialize`, loads only
its half of the training examples, and runs the sharded epoch over the
2-device global mesh. Expected: the final parameters equal those of the
plain single-process epoch on all examples, to 1e-5 (same data order and
keys; only the cross-process sums differ in rounding).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import multihost_check  # tests/parallel/multihost_check.py

N, BATCH, EPOCHS = 256, 64, 2
ALL = os.environ.get('NEUROKIT_PARALLEL_ALL') == '1'


def test_two_processes_match_one():
    """bp by default; every registered rule with NEUROKIT_PARALLEL_ALL=1 (about 2.5 min;
    `python -m experiments.benchmarks.parallel --only_multihost` records it)."""
    from neurokit.rules import registry
    rules = sorted(registry.RULES) if ALL else ['bp']
    result = multihost_check.check(rules, nproc=2, n=N, batch=BATCH, epochs=EPOCHS)
    for name in rules:
        assert result[name].get('ok'), (name, result[name])


CLI_FLAGS = ['--config=experiments/configs/bp.py', '--config.dataset=digits',
             f'--config.train_limit={N}', f'--config.epochs={EPOCHS}',
             '--config.model.hidden=(32,)',
             f'--config.batch_size={BATCH}', '--config.optimizer.learning_rate=0.01',
             '--config.progress=off', '--config.checkpoint_every=0', '--config.tensorboard=False']


@pytest.mark.skipif(os.environ.get('NEUROKIT_MULTIHOST_CLI') != '1',
                    reason='about 30 s on 2 cores: NEUROKIT_MULTIHOST_CLI=1 runs it')
def test_two_process_cli_run_matches_one_process(tmp_path):
    """`python -m experiments.train --config.distributed...` on 2 localhost processes.

    Both processes train as one 2-device run (each loads half the examples);
    only process 0 writes metrics.jsonl/summary.json, both join the checkpoint
    save. Expected: the per-epoch metrics of a 1-process run to 1e-5.
    """
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env['XLA_FLAGS'] = re.sub(r'--xla_force_host_platform_device_count=\d+', '', env.get('XLA_FLAGS', ''))
    port = multihost_check._free_port()
    dist = ['--config.distributed.enabled=True', '--config.distributed.num_processes=2',
            f'--config.distributed.coordinator_address=localhost:{port}']
    two = tmp_path / 'two'
    procs = [subprocess.Popen([sys.executable, '-m', 'experiments.train', *CLI_FLAGS, *dist,
                               f'--config.distributed.process_id={i}', f'--workdir={two}'],
                              cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    one = tmp_path / 'one'
    r = subprocess.run([sys.executable, '-m', 'experiments.train', *CLI_FLAGS, f'--workdir={one}'],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s2 = json.loads((two / 'summary.json').read_text())
    assert s2['devices'] == 2 and s2['processes'] == 2
    m1, m2 = ([json.loads(l) for l in (d / 'metrics.jsonl').read_text().splitlines()]
              for d in (one, two))
    assert [m['epoch'] for m in m2] == list(range(1, EPOCHS + 1))
    for a, b in zip(m1, m2):
        for key in ('train_loss', 'test_accuracy'):
            np.testing.assert_allclose(a[key], b[key], atol=1e-5, rtol=0)
    assert (two / 'checkpoints' / str(EPOCHS)).is_dir()
