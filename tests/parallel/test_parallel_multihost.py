"""Two processes on localhost (CPU, gloo collectives) train like one process.

Each process joins via `neurokit.parallel.distributed.initialize`, loads only
its half of the training examples, and runs the sharded epoch over the
2-device global mesh. Expected: the final parameters equal those of the
plain single-process epoch on all examples, to 1e-5 (same data order and
keys; only the cross-process sums differ in rounding).
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from neurokit import data, models, train
from neurokit.rules import bp

N, BATCH, EPOCHS = 256, 64, 2

WORKER = r'''
import sys
import numpy as np
pid, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
from neurokit.parallel import distributed
distributed.initialize(f'localhost:{port}', nproc, pid)
import jax, optax
from neurokit import data, models, train
from neurokit.rules import bp
from neurokit.parallel import mesh as M
assert jax.process_count() == nproc and jax.device_count() == nproc
mesh = M.make_mesh()
x, y = distributed.load_shard(data.load('digits'), mesh, train_limit=%(N)d)
model = models.mlp((8, 8, 1), 10, (32, 32))
rule, opt = bp(model), optax.adam(1e-3)
state = jax.jit(lambda k: train.init_state(k, model, rule, opt),
                out_shardings=M.replicated(mesh))(jax.random.PRNGKey(0))
epoch = M.sharded_epoch(rule, opt, %(BATCH)d, mesh, x_sharding=M.batch_sharding(mesh))
for e in range(%(EPOCHS)d):
    state, metrics = epoch(state, x, y, e)
leaves = [np.asarray(a.addressable_data(0)) for a in jax.tree.leaves(state.params)]
if pid == 0:
    np.savez(out, *leaves)
jax.distributed.shutdown()
''' % {'N': N, 'BATCH': BATCH, 'EPOCHS': EPOCHS}


def _free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    out = tmp_path / 'params.npz'
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env.pop('XLA_FLAGS', None)  # one CPU device per process
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(i), '2', port, str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]

    # The single-process run: the training loop's own epoch on all N examples.
    ds = data.load('digits')
    x, y = ds.x_train[:N], ds.y_train[:N]
    model = models.mlp((8, 8, 1), 10, (32, 32))
    rule, opt = bp(model), optax.adam(1e-3)
    state = jax.jit(lambda k: train.init_state(k, model, rule, opt))(jax.random.PRNGKey(0))
    epoch = jax.jit(train.make_epoch(rule, opt, BATCH))
    for e in range(EPOCHS):
        state, _ = epoch(state, x, y, e)
    got = np.load(out)
    want = jax.tree.leaves(state.params)
    assert len(got.files) == len(want)
    for i, w in enumerate(want):
        np.testing.assert_allclose(got[f'arr_{i}'], np.asarray(w), atol=1e-5, rtol=0)


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
    env.pop('XLA_FLAGS', None)
    port = _free_port()
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
