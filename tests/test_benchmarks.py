"""Benchmarks as data: definitions, records, the renderer and BENCHMARKS.md agree."""
import json
import math
import os
import re
import statistics

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
    experiments.train's own config loader, gives the config it ran (compared as a resume
    compares configs: a rule hyperparameter left out is its constructor's default)."""
    from neurokit.experiment.config import fill_defaults
    for family in FAMILIES_WITH_RUNS:
        rec = next((r for r in recs.values() if r['id'].startswith(family + '.')
                    and 'migrated' not in r and BY_ID[r['id']]['kind'] == 'train'), None)
        assert rec is not None, f'no suite-measured training record in family {family}'
        assert (fill_defaults(R.parse_command(rec['command']))
                == fill_defaults(rec['config'])), rec['id']


def test_measurement_records_name_the_suite_command_and_their_params(recs):
    """A measured (not trained) figure's command is the suite's, and the parameters it
    recorded are its definition's: the command measures the same thing again."""
    measured = [r for r in recs.values() if 'migrated' not in r
                and BY_ID[r['id']]['kind'] not in ('train', 'select', 'select_train', 'checkpoint',
                                                   'manual')]
    assert measured
    for rec in measured:
        assert rec['command'] == f"python -m experiments.benchmarks.suite --only={rec['id']}"
        want = json.loads(json.dumps(BY_ID[rec['id']]['params']))
        assert {k: rec['config']['measure'][k] for k in want} == want, rec['id']


def test_a_record_command_reruns_its_row(recs, tmp_path, cli):
    """pc.digits.pc's recorded command (20 epochs, 3 seeds: seconds), run through the CLI,
    gives the recorded accuracy of every seed (to one test image: the library may fuse
    differently, within 1e-6). The command runs as a real `python -m` from the repository
    root, forked by the session's command server (tests/cli_runner.py: JAX imported once)."""
    rec = recs['pc.digits.pc']
    assert 'migrated' not in rec
    argv = rec['command'].replace('--workdir=DIR', f'--workdir={tmp_path}').split()
    assert argv[:2] == ['python', '-m'], argv
    proc = cli.run(argv[2], argv[3:], timeout=600)
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
    from experiments.benchmarks import plots
    monkeypatch.setattr(R, 'RECORDS', str(tmp_path / 'records.jsonl'))
    monkeypatch.setattr(render, 'OUT', str(tmp_path / 'BENCHMARKS.md'))
    monkeypatch.setattr(plots, 'PLOTS', str(tmp_path / 'plots'))  # the repository's stay as they are
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


@pytest.fixture(scope='module')
def drawn(recs, tmp_path_factory):
    from experiments.benchmarks import plots
    out = tmp_path_factory.mktemp('plots')
    return out, plots.draw(recs, str(out))


def _panel(fig, title_start):
    return next(ax for ax in fig.axes if ax.get_title().startswith(title_start))


def test_plots_render_from_the_committed_records(drawn):
    out, figs = drawn
    assert sorted(figs) == ['curves.png', 'memory.png', 'speed.png']
    for name in figs:
        assert (out / name).stat().st_size > 10_000, name  # a blank 100-dpi canvas is ~5 kB


def test_speed_plot_has_one_bar_per_measured_ratio(recs, drawn):
    """CPU/GPU panels: one bar per rule/bp ratio in the records (a rule's figure measured in
    the same group as an every-rule figure is that figure's row, drawn once); peers: one
    bar per neurokit/peer ratio."""
    fig = drawn[1]['speed.png']
    want = {'cpu': [], 'gpu': [], 'peers': []}
    for fig_id, rec in recs.items():
        d = BY_ID[fig_id]
        if d['kind'] == 'speed' and d['rule'] is None:  # every rule: one ratio each, bp's is 1
            want[d['machine']] += [v for row, v in zip(rec['rows'], rec['values']) if row['rule'] != 'bp']
        elif d['kind'] == 'speed' and not any(
                o['kind'] == 'speed' and o['rule'] is None and o['params'] == d['params']
                and o['id'] in recs for o in FIGURES):
            want[d['machine']].append(rec['values'][0])
        elif d['kind'] in ('pcx', 'fflib', 'scan_loop'):
            want['peers'].append(rec['values'][0])
        elif d['kind'] == 'biotorch':
            want['peers'] += [row['neurokit / BioTorch'] for row in rec['rows']]
        if d['kind'] == 'pcx' and 'bp_over_pc_time' in rec.get('extra', {}):
            want[d['machine']].append(rec['extra']['bp_over_pc_time'])  # pc's time / bp's
    # the dropped rule figure is the same number as its every-rule figure's row
    row = [v for r, v in zip(recs['gpu.speed.8x4096']['rows'], recs['gpu.speed.8x4096']['values'])
           if r['rule'] == 'mf']
    assert row == recs['mf.speed.8x4096']['values']
    for panel, title in (('cpu', 'CPU'), ('gpu', 'GPU'), ('peers', 'neurokit')):
        ax = _panel(fig, title)
        got = sorted(p.get_width() for p in ax.patches)
        assert got == pytest.approx(sorted(want[panel])), panel
        assert len(ax.get_yticklabels()) == len(want[panel])


def test_memory_plot_draws_every_rule_of_the_depth_record(recs, drawn):
    fig = drawn[1]['memory.png']
    rows = {r['rule']: r for r in recs['memory.depth']['rows']}
    mib, ratio = fig.axes[0], fig.axes[1]
    assert sorted(l.get_label() for l in mib.lines) == sorted(rows)
    for line in mib.lines:
        cells = {int(k.split()[1]): v for k, v in rows[line.get_label()].items() if k != 'rule'}
        assert list(line.get_xdata()) == sorted(cells)
        assert list(line.get_ydata()) == [float(cells[d].split()[0]) for d in sorted(cells)]
    bp = next(l for l in ratio.lines if l.get_label() == 'bp')
    assert set(bp.get_ydata()) == {1.0}
    mf_rows = [r for i in ('mf.memory.cpu', 'mf.memory.gpu', 'gpu.aot_memory') if i in recs
               for r in recs[i]['rows'] if r.get('rule') != 'bp']
    assert len(_panel(fig, 'mf / bp').patches) == len(mf_rows)


def test_curves_plot_draws_each_twin_record_once_ending_at_its_final_accuracy(recs, drawn):
    """A panel per group of training figures with a bp twin; in it, one curve (or one
    error bar) per record. A curve's last epoch is the record's final accuracy."""
    fig = drawn[1]['curves.png']
    groups = {}
    for fig_id in recs:
        if BY_ID[fig_id]['kind'] == 'train':
            groups.setdefault(fig_id.rsplit('.', 1)[0], []).append(fig_id)
    twins = {p: ids for p, ids in groups.items()
             if any(BY_ID[i]['rule'] == 'bp' for i in ids) and any(BY_ID[i]['rule'] != 'bp' for i in ids)}
    assert {'mf.mlp', 'pc.mlp128', 'fa.lenet15', 'ff.4x2000'} <= set(twins)
    assert len(fig.axes) == len(twins)
    curves = 0
    for ax in fig.axes:
        prefix = ax.get_title().split(':')[0]
        ids = twins[prefix]
        means = sorted(recs[i]['mean'] for i in ids)
        if all(recs[i].get('curve') for i in ids):
            curves += 1
            assert len(ax.lines) == len(ids)
            assert sorted(l.get_ydata()[-1] for l in ax.lines) == pytest.approx(means, abs=1e-5)
            for line in ax.lines:
                assert len(line.get_xdata()) == len(recs[f'{prefix}.{line.get_label()}']['curve'])
        else:
            assert len(ax.containers) == len(ids)  # one error bar per record
            assert sorted(c.lines[0].get_ydata()[0] for c in ax.containers) == pytest.approx(means)
    assert curves >= 10  # the migrated per-epoch curves are drawn as curves


def test_benchmarks_md_embeds_the_plots_and_check_notices_a_missing_one(monkeypatch):
    from experiments.benchmarks import plots
    with open(os.path.join(REPO, 'BENCHMARKS.md')) as f:
        text = f.read()
    for name in plots.PLOTTERS:
        link = f'experiments/benchmarks/results/plots/{name}'
        assert f']({link})' in text and os.path.getsize(os.path.join(REPO, link)) > 0
    assert render.main(['--check']) == 0
    monkeypatch.setattr(plots, 'PLOTTERS', {**plots.PLOTTERS, 'absent.png': None})
    assert render.main(['--check']) == 1


def test_a_missing_peer_fails_its_group_in_one_line_and_keeps_its_record(recs, tmp_path,
                                                                          monkeypatch, capsys):
    """No .venvs/pcx: the group fails with one line pointing to the Peers section, the part
    stops there (or, with --keep_going, measures the next group), and the figure keeps the
    record it had."""
    from experiments.benchmarks import plots
    monkeypatch.setattr(R, 'REPO', str(tmp_path))  # where the peers' virtualenvs are looked up
    monkeypatch.setattr(R, 'RECORDS', str(tmp_path / 'records.jsonl'))
    monkeypatch.setattr(render, 'OUT', str(tmp_path / 'BENCHMARKS.md'))
    monkeypatch.setattr(plots, 'PLOTS', str(tmp_path / 'plots'))
    earlier = recs['peers.pcx.accuracy']
    R.save([earlier])
    only = '--only=peers.pcx.accuracy,parallel.traces'
    assert suite.main([only]) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    line, = [l for l in err.splitlines() if l.startswith('error:')]
    assert 'no pcx virtualenv' in line and 'docs/benchmarking.md (Peers)' in line
    assert set(R.load()) == {'peers.pcx.accuracy'}  # stopped at the failed group
    assert suite.main([only, '--keep_going']) == 1
    kept = R.load()
    assert kept['peers.pcx.accuracy'] == earlier and 'parallel.traces' in kept
    row = next(l for l in (tmp_path / 'BENCHMARKS.md').read_text().splitlines()
               if '`peers.pcx.accuracy`' in l)
    assert f"| {earlier['mean']:.2f} |" in row and earlier['date'] in row


def test_select_train_tests_each_seed_at_its_best_validation_epoch(monkeypatch):
    from experiments.benchmarks import measure
    seen = []

    def fake_run(config, validation=False):
        seen.append(config)
        lr = config.optimizer.learning_rate
        summary = {'validation_accuracy': [0.5 + lr], 'test_accuracy': [0.7, 0.8],
                   'config': config.to_dict(), 'wall_seconds': 1.0, 'train_seconds': 1.0}
        test = [[70.0, 80.0], [75.0, 60.0], [72.0, 81.0]]   # epochs x seeds
        val = [[1.0, 9.0], [5.0, 2.0], [4.0, 3.0]]          # seed 0 peaks at epoch 2, seed 1 at 1
        return (summary, test, val) if validation else (summary, test)

    monkeypatch.setattr(measure, '_run', fake_run)
    fig = {'id': 'x', 'rule': 'ccl', 'seeds': 2, 'overrides': {'validation_examples': 10},
           'params': {'grid': {'optimizer.learning_rate': (0.1, 0.2),
                               'optimizer.grad_clip+optimizer_groups.feedback.grad_clip': (0.5,)},
                      'test_at': 'best_validation'}}
    rec, = measure.select_train([fig], quick=False)
    assert rec['values'] == [75.0, 80.0] and rec['extra']['epochs_tested'] == [2, 1]
    final = seen[-1]  # the picked point (lr 0.2: the better validation), both clips tied
    assert final.optimizer.learning_rate == 0.2 and final.num_seeds == 2
    assert final.optimizer.grad_clip == 0.5 == final.optimizer_groups.feedback.grad_clip
