"""Two processes (localhost, CPU, gloo) train every rule like one process.

  python -m tests.parallel.multihost_check --rules=all --out=/tmp/mh.json

Launches `nproc` worker processes; each joins with
`neurokit.parallel.distributed.initialize`, loads only its shard of the first
`n` digits images (`distributed.load_shard`) and trains each rule (a small MLP,
the rule's default hyperparameters, Adam) with the sharded epoch over the
global one-device-per-process mesh. The parent trains the same rules in one
process with the plain scanned epoch on all `n` images and reports, per rule,
the largest absolute parameter difference. Expected: below the rule's declared
`multihost_tolerance` (1e-5 unless it says otherwise; same data order and keys: only
the cross-process sums differ in rounding). One pair of
processes serves all rules, so the cost is one start-up plus one compile per
rule.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile

import numpy as np


_WORKER = r'''
import sys
import numpy as np
pid, nproc, port, out, rules = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
n, batch, epochs = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
from neurokit.parallel import distributed
distributed.initialize(f'localhost:{port}', nproc, pid)
import jax, optax
from neurokit import data, models, train
from neurokit.parallel import mesh as M
from neurokit.rules import registry
assert jax.process_count() == nproc and jax.device_count() == nproc
mesh = M.make_mesh()
x, y = distributed.load_shard(data.load('digits'), mesh, train_limit=n)
model = models.mlp((8, 8, 1), 10, (32, 32))
for name in rules.split(','):
    rule, opt = registry.build(name, model), optax.adam(1e-3)
    state = jax.jit(lambda k: train.init_state(k, model, rule, opt),
                    out_shardings=M.replicated(mesh))(jax.random.PRNGKey(0))
    epoch = M.sharded_epoch(rule, opt, batch, mesh, x_sharding=M.batch_sharding(mesh))
    for e in range(epochs):
        state, metrics = epoch(state, x, y, e)
    leaves = [np.asarray(a.addressable_data(0)) for a in jax.tree.leaves(state.params)]
    if pid == 0:
        np.savez(f'{out}/{name}.npz', *leaves)
jax.distributed.shutdown()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def check(rules, nproc: int = 2, n: int = 256, batch: int = 64, epochs: int = 2,
          timeout: int = 900) -> dict:
    """{rule: {'diff': float, 'ok': bool}} for `nproc` processes against one."""
    import jax
    import optax
    from neurokit import data, models, train
    from neurokit.rules import registry

    rules = list(rules)
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, JAX_PLATFORMS='cpu')
        env['XLA_FLAGS'] = re.sub(r'--xla_force_host_platform_device_count=\d+', '', env.get('XLA_FLAGS', ''))  # one CPU device per process
        port = str(_free_port())
        args = [str(nproc), port, out, ','.join(rules), str(n), str(batch), str(epochs)]
        procs = [subprocess.Popen([sys.executable, '-c', _WORKER, str(i)] + args, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for i in range(nproc)]
        # The one-process reference trains while the workers start up and connect.
        try:
            ds = data.load('digits')
            x, y = ds.x_train[:n], ds.y_train[:n]
            model = models.mlp((8, 8, 1), 10, (32, 32))
            reference = {}
            for name in rules:
                rule, opt = registry.build(name, model), optax.adam(1e-3)
                init = jax.jit(lambda k: train.init_state(k, model, rule, opt))
                state = init(jax.random.PRNGKey(0))
                epoch = jax.jit(train.make_epoch(rule, opt, batch))
                for e in range(epochs):
                    state, _ = epoch(state, x, y, e)
                reference[name] = jax.tree.leaves(state.params)
            logs = [p.communicate(timeout=timeout)[0] for p in procs]
            for p, log in zip(procs, logs):
                if p.returncode != 0:
                    raise RuntimeError(f'worker failed (exit {p.returncode}): {log[-3000:]}')
        except BaseException:  # no orphaned workers waiting on a peer
            for p in procs:
                p.kill()
            raise
        result = {}
        for name in rules:
            got = np.load(os.path.join(out, f'{name}.npz'))
            want = reference[name]
            if len(got.files) != len(want):
                result[name] = {'error': f'{len(got.files)} leaves from the workers, {len(want)} here'}
                continue
            d = max(float(np.max(np.abs(got[f'arr_{i}'] - np.asarray(w))))
                    for i, w in enumerate(want))
            tol = registry.capabilities(name).multihost_tolerance  # the rule's declared
            result[name] = {'diff': d, 'ok': d < tol}
    return result


def main(argv):
    import argparse
    from neurokit.rules import registry
    p = argparse.ArgumentParser()
    p.add_argument('--rules', default='all')
    p.add_argument('--out', default='')
    a = p.parse_args(argv)
    rules = sorted(registry.RULES) if a.rules == 'all' else a.rules.split(',')
    text = json.dumps({'processes': 2, 'rules': check(rules)}, indent=1)
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text)
    print(text)


if __name__ == '__main__':
    main(sys.argv[1:])
