"""Benchmarks as data: definitions, records, the renderer and BENCHMARKS.md agree."""
import json
import math
import os
import re
import statistics
import subprocess
import sys

import pytest

from experiments.benchmarks import records as R
from experiments.benchmarks import render, suite
from experiments.benchmarks.definitions import BY_ID, FIGURES

REPO = R.REPO
FAMILIES_WITH_RUNS = ('core', 'ff', 'mf', 'pc', 'fa')


@pytest.fixture(scope='module')
def recs():
    return R.load()


def _summary_rows():
    with open(os.path.join(REPO, 'BENCHMARKS.md')) as f:
        text = f.read()
    block = text.split('## Summary: every acceptance figure', 1)[1].split('\n## ', 1)[0]
    rows = [l for l in block.splitlines() if l.startswith('| #')]
    return [[c.strip() for c in l.strip('|').split('|')] for l in rows]


def _number(cell):
    """The cell's leading number and half a unit of its last printed digit."""
    text = re.match(r'[+-]?[0-9.]+(e[+-]?\d+)?', cell).group(0)
    mantissa, _, exp = text.partition('e')
    decimals = len(mantissa.partition('.')[2])
    return float(text), 0.5 * 10.0 ** (int(exp or 0) - decimals) * (1 + 1e-9)


def test_sample_std_is_ddof_1():
    mean, std = R.stats([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, over n - 1 = 3
    assert R.stats([7.0]) == (7.0, None)


def test_summary_lists_every_acceptance_figure_once():
    ids = [re.search(r'`([^`]+)`', row[1]).group(1) for row in _summary_rows()]
    assert sorted(ids) == sorted(f['id'] for f in FIGURES if f['issue'])


def test_every_summary_figure_comes_from_a_record(recs):
    """Each measured cell is recomputed here from the records alone: the mean (or max, or
    the difference of two figures' means), the sample std and the seed count; machine and
    date are the record's; NOT MEASURED exactly where no record exists."""
    for issue, figure, measured, _target, verdict, machine, date in _summary_rows():
        fig = BY_ID[re.search(r'`([^`]+)`', figure).group(1)]
        assert issue == f"#{fig['issue']}"
        if fig['kind'] == 'derived':
            sources = [recs.get(i) for i in fig['derive'][1:]]
        else:
            sources = [recs.get(fig['params'].get('record', fig['id']))]
        if verdict == 'NOT MEASURED':
            assert None in sources, fig['id']
            continue
        assert None not in sources, fig['id']
        values = [s['values'] for s in sources]
        if fig['kind'] == 'derived':
            want = statistics.fmean(values[0]) - statistics.fmean(values[1])
        elif fig['stat'] == 'max':
            want = max(values[0])
        else:
            want = statistics.fmean(values[0])
        got, tol = _number(measured)
        assert abs(got - want) <= tol, (fig['id'], got, want)
        m = re.search(r'± ([0-9.]+) \((\d+) seeds\)', measured)
        if m:
            std, tol = _number(m.group(1))
            assert abs(std - statistics.stdev(values[0])) <= tol, fig['id']
            assert int(m.group(2)) == len(values[0])
        newest = max(sources, key=lambda s: s['date'])
        assert machine == newest['machine'] and date.startswith(newest['date'])
        assert ('(migrated)' in date) == any('migrated' in s for s in sources)


def test_every_record_has_a_definition_and_a_provenance(recs):
    for rec in recs.values():
        assert rec['id'] in BY_ID
        assert rec['n'] == len(rec['values']) and rec['command'] and rec['machine'] and rec['date']
        if 'migrated' in rec:
            assert {'from', 'date', 'machine', 'command'} <= set(rec['migrated'])
        else:
            assert rec['commit'], rec['id']


def test_render_is_stable_and_benchmarks_md_is_its_output(recs):
    text = render.render(recs)
    assert render.render(R.load()) == text
    with open(os.path.join(REPO, 'BENCHMARKS.md')) as f:
        assert f.read() == text, 'BENCHMARKS.md is stale: python -m experiments.benchmarks.render'


def test_derived_commands_parse_back_to_the_recorded_config(recs):
    """One training record per family, measured by the suite: its command, read by
    experiments.train's own config loader, gives exactly the config it ran."""
    for family in FAMILIES_WITH_RUNS:
        rec = next((r for r in recs.values() if r['id'].startswith(family + '.')
                    and 'migrated' not in r and BY_ID[r['id']]['kind'] == 'train'), None)
        assert rec is not None, f'no suite-measured training record in family {family}'
        assert R.parse_command(rec['command']) == rec['config'], rec['id']


def test_measurement_records_name_the_suite_command_and_their_params(recs):
    """A measured (not trained) figure's command is the suite's, and the parameters it
    recorded are its definition's: the command measures the same thing again."""
    measured = [r for r in recs.values() if 'migrated' not in r
                and BY_ID[r['id']]['kind'] not in ('train', 'select', 'checkpoint')]
    assert measured
    for rec in measured:
        assert rec['command'] == f"python -m experiments.benchmarks.suite --only={rec['id']}"
        want = json.loads(json.dumps(BY_ID[rec['id']]['params']))
        assert {k: rec['config']['measure'][k] for k in want} == want, rec['id']


def test_a_record_command_reruns_its_row(recs, tmp_path):
    """pc.digits.pc's recorded command (20 epochs, 3 seeds: seconds), run through the CLI,
    gives the recorded accuracy of every seed (to one test image: the library may fuse
    differently, within 1e-6)."""
    rec = recs['pc.digits.pc']
    assert 'migrated' not in rec
    argv = rec['command'].replace('--workdir=DIR', f'--workdir={tmp_path}').split()
    proc = subprocess.run([sys.executable, '-m'] + argv[2:], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'summary.json') as f:
        accs = [100 * a for a in json.load(f)['test_accuracy']]
    assert accs == pytest.approx(rec['values'], abs=100 / 360 + 1e-9)


def test_definitions_build_valid_configs():
    """Every training figure's overrides name real keys of its rule's config."""
    from neurokit.experiment import config as config_lib
    from experiments.benchmarks.measure import KINDS, config_for
    for fig in FIGURES:
        assert fig['kind'] in KINDS or fig['kind'] in ('derived', 'manual'), fig['id']
        if fig['kind'] == 'train':
            config_lib.validate(config_for(fig['rule'], fig['overrides']))
        if fig['kind'] == 'derived':
            assert all(i in BY_ID for i in fig['derive'][1:])
        assert fig['direction'] in ('>=', '<=') and fig['machine'] in ('cpu', 'gpu')


def test_suite_plan_covers_each_part_and_refuses_unknown_ids(capsys):
    for part in suite.PARTS:
        planned = sorted(f['id'] for g in suite.plan(part, []) for f in g)
        assert planned == sorted(f['id'] for f in FIGURES if f['part'] == part
                                 and f['kind'] not in ('derived', 'manual'))
    assert suite.main(['--part=cpu', '--dry_run']) == 0
    out = capsys.readouterr().out
    assert 'core.digits' in out and 'python -m experiments.train --config=experiments/configs/bp.py' in out
    with pytest.raises(SystemExit, match='unknown figure id no.such'):
        suite.plan(None, ['no.such'])


def test_a_manual_figure_is_recorded_and_rendered(tmp_path, monkeypatch):
    """`suite --manual=ID=VALUE` saves a record with the definition's command, and a figure
    that reads another's record (the 5-minute test-suite target) takes its verdict from it."""
    monkeypatch.setattr(R, 'RECORDS', str(tmp_path / 'records.jsonl'))
    monkeypatch.setattr(render, 'OUT', str(tmp_path / 'BENCHMARKS.md'))
    assert suite.main(['--manual=core.test_suite=4.5']) == 0
    rec = R.load()['core.test_suite']
    assert rec['values'] == [4.5] and rec['unit'] == 'min'
    assert rec['command'] == BY_ID['core.test_suite']['params']['command']
    text = (tmp_path / 'BENCHMARKS.md').read_text()
    assert '`core.test_suite_5min`' in text.split('\n## ', 2)[1]
    row = next(l for l in text.splitlines() if '`core.test_suite_5min`' in l)
    assert '| 4.5 min | ≤ 5.0 min | PASS |' in row
    with pytest.raises(SystemExit, match='not a manual figure'):
        suite.main(['--manual=core.fmnist=3'])
