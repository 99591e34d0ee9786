"""1 device vs 8 (fake CPU) devices: sharded, FSDP, pmap and layer-pipelined paths agree.

The 8-device run happens in its own subprocess (XLA_FLAGS must be set before
JAX starts); `neurokit.parallel.equivalence` trains each rule a few steps on
digits on one device and on every parallel path, and reports the largest
parameter difference. Expected: < 1e-5 (the programs are the same up to the
order of the cross-device sums).

Budget: bp's FSDP, pmap and pipeline paths (the plain sharded path: for bp and
mf through the CLI in test_run_devices.py). NEUROKIT_PARALLEL_ALL=1 checks every
path for every registered rule (minutes; the benchmark
`experiments/benchmarks/parallel.py` does that too).
"""
import json
import os
import subprocess
import sys

from neurokit.rules import registry

ALL = os.environ.get('NEUROKIT_PARALLEL_ALL') == '1'
# Budget: bp's library paths that no other test covers (FSDP, pmap_epoch, the layer
# pipeline). The plain sharded path is checked end to end through the CLI for bp
# (with 2 seeds) and mf in test_run_devices.py; ALL=1 checks every path of every rule.
BP_PATHS = 'fsdp+pmap+pipeline'


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


def _problems(name, res, paths):
    """Failures of one rule's paths (a skipped path is fine: pmap/pipeline preconditions)."""
    if 'error' in res:
        return [f'{name}: {res["error"]}']
    return [f'{name} {path}: max |param difference| {res[path]["diff"]:.3g}'
            for path in paths if 'skipped' not in res[path] and not res[path]['diff'] < 1e-5]


# One test, not one per path: pytest-xdist's default distribution runs a module
# fixture once per worker that gets one of its tests, i.e. this 8-device
# subprocess twice under `-n 2`.
def test_parallel_paths_match_one_device(tmp_path):
    if ALL:
        results = _run(sorted(registry.RULES), 'sharded,fsdp,pmap,pipeline', tmp_path)
        checks = {name: ('sharded', 'fsdp', 'pmap', 'pipeline') for name in results}
    else:
        results = _run([f'bp:{BP_PATHS}'], '', tmp_path)
        checks = {'bp': tuple(BP_PATHS.split('+'))}
        # bp's pmap and pipeline preconditions hold: those paths must really run.
        assert not {p for p in ('pmap', 'pipeline') if 'skipped' in results['bp'].get(p, {})}, \
            results['bp']
    problems = [p for name, paths in checks.items() for p in _problems(name, results[name], paths)]
    assert not problems, '; '.join(problems)
