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
