"""1 device vs 8 (fake CPU) devices: sharded, FSDP, pmap and layer-pipelined paths agree.

The 8-device run happens in ONE subprocess (XLA_FLAGS must be set before
JAX starts; every test of this module reads its results): `tests/parallel/equivalence.py`
trains each rule a few steps on digits on one device and on every parallel path, and
reports the largest parameter difference. Expected: < 1e-5 (the programs are the same up
to the order of the cross-device sums). The same process first tries the misuse that
only shows on several devices (a pmap state replicated over 4 of the 8 devices,
a mesh axis of -2, a data set that does not split over 'data') and records each
exception: one line naming the argument and the fix.

Budget: bp's FSDP, pmap and pipeline paths (the plain sharded path: for bp and
mf through the CLI in test_run_devices.py). NEUROKIT_PARALLEL_ALL=1 checks every
path for every registered rule (minutes; the benchmark
`experiments/benchmarks/parallel.py` does that too).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from neurokit.rules import registry

ALL = os.environ.get('NEUROKIT_PARALLEL_ALL') == '1'
# Budget: bp's library paths that no other test covers (FSDP, pmap_epoch, the layer
# pipeline). The plain sharded path is checked end to end through the CLI for bp
# (with 2 seeds) and mf in test_run_devices.py; ALL=1 checks every path of every rule.
BP_PATHS = 'fsdp+pmap+pipeline'

# Misuse that only shows on several devices, run in the same 8-device process before
# the equivalence check (JAX starts once): each case's value, or its exception.
DRIVER = r'''
import json, sys
import jax, numpy as np, optax
from neurokit import data, models, rules
from neurokit.parallel import distributed, make_mesh, pmap_epoch, replicate
sys.path.insert(0, sys.argv[2])
import equivalence  # tests/parallel/equivalence.py
from neurokit.train.state import init_state

def outcome(f):
    try:
        return {'value': f()}
    except Exception as e:
        return {'error': type(e).__name__, 'message': str(e)}

ds = data.load('digits')
model = models.mlp(ds.input_shape, 10, hidden=(8,))
rule, opt = rules.build('bp', model), optax.sgd(0.1)
state = init_state(jax.random.PRNGKey(0), model, rule, opt)
epoch = pmap_epoch(rule, opt, 64)  # over all 8 devices
x, y = ds.x_train[:128], ds.y_train[:128]
mesh = make_mesh()

def shard(limit):
    xs, ys = distributed.load_shard(ds, mesh, train_limit=limit)
    n = xs.shape[0]
    return {'rows': [n, ys.shape[0]], 'spec': list(xs.sharding.spec),
            'same': bool(np.array_equal(np.asarray(xs), ds.x_train[:n])
                         and np.array_equal(np.asarray(ys), ds.y_train[:n]))}

def sharded_eval():
    from neurokit.parallel import mesh as mesh_lib
    from neurokit.train import loop
    trained = epoch(replicate(state, jax.devices()), x, y, 0)[0]
    params = jax.tree.map(lambda a: a[0], trained.params)
    xe, ye = mesh_lib.eval_arrays(ds.x_test, ds.y_test, mesh, 100)
    f = jax.jit(loop.make_evaluate(rule, 100, shards=8))
    hlo = f.lower(params, None, xe, ye).compile().as_text()
    one = jax.jit(loop.make_evaluate(rule, 100))(params, None, ds.x_test, ds.y_test)
    return {'acc': float(f(params, None, xe, ye)), 'one': float(one),
            'rows': xe.shape[0], 'local': [s.data.shape[0] for s in xe.addressable_shards],
            'all_reduce': 'all-reduce' in hlo, 'all_gather': 'all-gather' in hlo,
            'n': int(ds.x_test.shape[0])}

cases = {
    'eval_sharded': sharded_eval,
    'pmap_4_replicas': lambda: str(epoch(replicate(state, jax.devices()[:4]), x, y, 0)[0].step),
    'pmap_unreplicated': lambda: str(epoch(state, x, y, 0)[0].step),
    'make_mesh_data_-2': lambda: make_mesh(data=-2).devices.shape,
    'load_shard_all': lambda: shard(0),
    'load_shard_100': lambda: shard(100),
    'load_shard_5': lambda: shard(5),
}
with open(sys.argv[1], 'w') as f:
    json.dump({name: outcome(case) for name, case in cases.items()}, f)
equivalence.main(sys.argv[3:])
'''


@pytest.fixture(scope='module')
def eight_devices(tmp_path_factory):
    """`(misuse outcomes, equivalence results)` from one 8-device subprocess."""
    tmp = tmp_path_factory.mktemp('eight')
    if ALL:
        rules, paths = sorted(registry.RULES), 'sharded,fsdp,pmap,pipeline'
    else:
        rules, paths = [f'bp:{BP_PATHS}'], ''
    env = dict(os.environ, XLA_FLAGS=os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8',
               JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-c', DRIVER, str(tmp / 'misuse.json'),
                           os.path.dirname(os.path.abspath(__file__)),
                           f'--rules={",".join(rules)}', f'--paths={paths}',
                           f'--out={tmp / "eq.json"}'],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp / 'eq.json').read_text())
    assert result['devices'] == 8
    return json.loads((tmp / 'misuse.json').read_text()), result['rules']


def _problems(name, res, paths):
    """Failures of one rule's paths (a skipped path is fine: pmap/pipeline preconditions)."""
    if 'error' in res:
        return [f'{name}: {res["error"]}']
    return [f'{name} {path}: max |param difference| {res[path]["diff"]:.3g}'
            for path in paths if 'skipped' not in res[path] and not res[path]['diff'] < 1e-5]


# The tests of this module share the 8-device subprocess: a module fixture, run once
# because pytest's addopts distribute by module (`--dist loadscope`).
def test_parallel_paths_match_one_device(eight_devices):
    results = eight_devices[1]
    if ALL:
        checks = {name: ('sharded', 'fsdp', 'pmap', 'pipeline') for name in results}
    else:
        checks = {'bp': tuple(BP_PATHS.split('+'))}
        # bp's pmap and pipeline preconditions hold: those paths must really run.
        assert not {p for p in ('pmap', 'pipeline') if 'skipped' in results['bp'].get(p, {})}, \
            results['bp']
    problems = [p for name, paths in checks.items() for p in _problems(name, results[name], paths)]
    assert not problems, '; '.join(problems)


@pytest.mark.parametrize('case, error, match', [
    # pmap would run 4 replicas on 4 devices, each on 1/8 of every batch: half the data
    ('pmap_4_replicas', 'ValueError',
     r'over 8 devices got a state of 4 replicas .*replicate\(state, devices\) with the 8 devices'),
    ('pmap_unreplicated', 'ValueError',
     r'over 8 devices got a state that is not replicated \(state\.step has shape \(\)\).*'
     r'replicate\('),
    # silently a 6-device mesh before (8 - 2); the other refusals of make_mesh need no
    # second device (test_parallel_api_errors.py)
    ('make_mesh_data_-2', 'ValueError', r'data must be a positive integer .*got -2'),
    ('load_shard_5', 'ValueError', r'5 training examples \(train_limit=5\) .*at least 8'),
])
def test_misuse_on_8_devices_raises_one_line(eight_devices, case, error, match):
    got = eight_devices[0][case]
    assert got.get('error') == error, got
    assert '\n' not in got['message'] and re.search(match, got['message']), got['message']


def test_load_shard_keeps_the_rows_that_split_over_the_data_axis(eight_devices):
    """One process, 8 devices on 'data': the global arrays keep the first n - n % 8 rows
    (lcm(process_count=1, data=8)), in order, split over 'data'."""
    misuse = eight_devices[0]
    for case, n in (('load_shard_all', 1437), ('load_shard_100', 100)):
        got = misuse[case]['value']
        assert got == {'rows': [n - n % 8] * 2, 'spec': ['data'], 'same': True}, \
            (case, got)


def test_evaluation_on_8_devices_is_sharded_and_counts_as_one_device(eight_devices):
    """Each device holds 1/8 of the (padded) test set and evaluates it; only the count of
    correct predictions crosses devices (an all-reduce, no all-gather of the examples);
    the accuracy is one device's, padding rows not counted."""
    got = eight_devices[0]['eval_sharded']['value']
    assert got['local'] == [got['rows'] // 8] * 8 and got['rows'] >= got['n'] > got['rows'] - 8 * 13
    assert got['all_reduce'] and not got['all_gather']
    assert got['acc'] == got['one'] and 0 < got['acc'] < 1
