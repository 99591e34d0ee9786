"""Two processes on localhost (CPU, gloo collectives) train like one process.

Each process joins via `neurokit.parallel.distributed.initialize`, loads only
its half of the training examples, and runs the sharded epoch over the
2-device global mesh. Expected: the final parameters equal those of the
plain single-process epoch on all examples, to 1e-5 (same data order and
keys; only the cross-process sums differ in rounding).
"""
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import optax

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
