"""1 device vs 8 (fake CPU) devices: sharded, FSDP, pmap and layer-pipelined paths agree.

The 8-device run happens in its own subprocess (XLA_FLAGS must be set before
JAX starts); `neurokit.parallel.equivalence` trains each rule a few steps on
digits on one device and on every parallel path, and reports the largest
parameter difference. Expected: < 1e-5 (the programs are the same up to the
order of the cross-device sums).

Budget: every path for bp, the sharded path for one rule of each other
family. NEUROKIT_PARALLEL_ALL=1 checks every path for every registered rule
(minutes; the benchmark `experiments/benchmarks/parallel.py` does that too).
"""
import json
import os
import subprocess
import sys

import pytest

from neurokit.rules import registry

ALL = os.environ.get('NEUROKIT_PARALLEL_ALL') == '1'
FAMILY_REPS = ('dfa', 'mf')  # sharded path only; ALL=1 adds ff, pc and every path


def _run(rules, paths, tmp_path):
    out = tmp_path / 'eq.json'
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
               JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-m', 'neurokit.parallel.equivalence',
                           f'--rules={",".join(rules)}', f'--paths={paths}', f'--out={out}'],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['devices'] == 8
    return result['rules']


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('eq')
    if ALL:
        return _run(sorted(registry.RULES), 'sharded,fsdp,pmap,pipeline', tmp)
    reps = [f'{r}:sharded' for r in FAMILY_REPS if r in registry.RULES]
    return _run(['bp:sharded+fsdp+pmap+pipeline'] + reps, '', tmp)


def _check(res, path):
    if 'error' in res:
        pytest.fail(res['error'])
    r = res[path]
    if 'skipped' in r:
        pytest.skip(r['skipped'])
    assert r['diff'] < 1e-5, f'{path}: max |param difference| {r["diff"]:.3g}'


@pytest.mark.parametrize('path', ['sharded', 'fsdp', 'pmap', 'pipeline'])
def test_bp_all_paths_match_one_device(results, path):
    _check(results['bp'], path)


@pytest.mark.parametrize('name', sorted(registry.RULES) if ALL else FAMILY_REPS)
def test_rule_sharded_matches_one_device(results, name):
    if name not in results:
        pytest.skip(f'{name} not registered yet')
    _check(results[name], 'sharded')
    if ALL:
        for path in ('fsdp', 'pmap', 'pipeline'):
            if 'skipped' not in results[name][path]:
                assert results[name][path]['diff'] < 1e-5, (path, results[name][path])
