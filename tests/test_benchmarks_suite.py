"""The benchmark suite's plan and the report: cheap checks (no benchmark is run).

Both run as subprocesses: the benchmark modules define absl flags that must not
collide with other modules imported into the pytest process.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ('core', 'ff', 'mf', 'pc', 'fa', 'parallel', 'checkpoint', 'memory', 'ff_fflib', 'report')


def _run(*args):
    proc = subprocess.run([sys.executable, '-m', *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_cpu_plan_lists_every_family_within_60_minutes():
    out = _run('experiments.benchmarks.suite', '--part=cpu', '--dry_run')
    modules = set(re.findall(r'`python -m experiments\.benchmarks\.(\w+)', out))
    assert set(FAMILIES) <= modules, set(FAMILIES) - modules
    total = float(re.search(r'Estimated total ([\d.]+) min', out).group(1))
    assert 0 < total < 60, out


def test_report_writes_markdown_and_plots(tmp_path):
    md, plots = tmp_path / 'B.md', tmp_path / 'plots'
    _run('experiments.benchmarks.report', f'--out={md}', f'--plots_dir={plots}')
    text = md.read_text()
    pngs = sorted(p.name for p in plots.glob('*.png'))
    assert pngs, 'no PNG written'
    for name in pngs:
        assert f'](plots/{name})' in text  # linked relative to the markdown file
        assert (plots / name).stat().st_size > 1000
    assert '## How to regenerate' in text and '## Plots' in text


def test_suite_runs_steps_in_order_and_records_failures(tmp_path):
    """`run` keeps going past a failing step and `record` writes each step's return code and the
    failures: what BENCHMARKS.md quotes as the measured suite time."""
    code = f'''
import json, sys
from experiments.benchmarks import suite
steps = [suite.Step('platform', (), lambda: (0.1, 'x'), 'cpu'),
         suite.Step('neurokit_no_such_module', (), lambda: (0.1, 'x'), 'cpu'),
         suite.Step('platform', ('--terse',), lambda: (0.1, 'x'), 'cpu')]
done = suite.run(steps, keep_going=True)
rec = suite.record('cpu', done, 90.0, 0.5, path={str(tmp_path / 'suite.json')!r})
stopped = suite.run(steps, keep_going=False)
print(json.dumps({{'rcs': [rc for _, rc, _ in done], 'rec': rec, 'stopped': len(stopped)}}))
'''
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = __import__('json').loads(proc.stdout.strip().splitlines()[-1])
    assert out['rcs'][0] == 0 and out['rcs'][1] != 0 and out['rcs'][2] == 0
    assert out['stopped'] == 2  # without keep_going, nothing after the failure runs
    rec = out['rec']
    assert rec['wall_minutes'] == 1.5 and rec['budget_minutes'] == 60.0
    assert rec['failed'] == ['python -m neurokit_no_such_module']
    assert [s['rc'] for s in rec['steps']] == out['rcs']
    assert (tmp_path / 'suite.json').exists()
