"""Measures the figures of `definitions.FIGURES`, writes their records, re-renders BENCHMARKS.md.

  python -m experiments.benchmarks.suite --part=cpu        # the CPU figures (2 cores: minutes)
  python -m experiments.benchmarks.suite --part=gpu        # one device run
  python -m experiments.benchmarks.suite --part=long       # full-size reproductions (hours on CPU)
  python -m experiments.benchmarks.suite --only=core.digits,pc.oracle.zil
  python -m experiments.benchmarks.suite --part=cpu --dry_run    # the plan, nothing runs
  python -m experiments.benchmarks.suite --part=cpu --quick      # tiny budgets, scratch records
  python -m experiments.benchmarks.suite --manual=core.test_suite=4.6   # a figure measured by hand

Figures of one kind with the same params are measured together (one process,
interleaved where they are compared). Each finished group's records are saved
at once, so an interrupted part keeps what it measured. A whole part (no
--only, not --quick) also records its own wall time as `suite.<part>`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

from experiments.benchmarks import records as R
from experiments.benchmarks.definitions import BY_ID, FIGURES

PARTS = ('cpu', 'gpu', 'long')
QUICK_RECORDS = os.path.join(tempfile.gettempdir(), 'nkb_quick', 'records.jsonl')


def plan(part: str | None, only: list[str]) -> list[list[dict]]:
    """The groups of figures to measure, in definition order."""
    unknown = [i for i in only if i not in BY_ID]
    if unknown:
        raise SystemExit(f'error: unknown figure id {unknown[0]}; see experiments/benchmarks/'
                         'definitions.py (or --dry_run --part=long for a list)')
    figs = [BY_ID[i] for i in only] if only else [f for f in FIGURES if f['part'] == part]
    groups: dict = {}
    for f in figs:
        if f['kind'] in ('derived', 'manual'):
            continue  # computed from other records, or measured outside the suite
        key = (f['id'],) if f['kind'] in ('train', 'select') else (
            f['kind'], json.dumps(f['params'], sort_keys=True))
        groups.setdefault(key, []).append(f)
    return list(groups.values())


def describe(group: list[dict]) -> str:
    fig = group[0]
    ids = ', '.join(f['id'] for f in group)
    if fig['kind'] == 'train':
        from experiments.benchmarks.measure import config_for
        return f"{ids} [{fig['machine']}]: {R.train_command(config_for(fig['rule'], fig['overrides']))}"
    return f"{ids} [{fig['kind']}, {fig['machine']}]: {json.dumps(fig['params'])}"


def record_manual(spec: str) -> int:
    """Saves the record of a figure measured by hand (`ID=VALUE`, in the figure's unit)."""
    fig_id, _, value = spec.partition('=')
    fig = BY_ID.get(fig_id)
    if fig is None or fig['kind'] != 'manual' or 'command' not in fig['params']:
        raise SystemExit(f'error: {fig_id} is not a manual figure with a command of its own; '
                         'see the kind= manual entries of experiments/benchmarks/definitions.py')
    try:
        value = float(value)
    except ValueError:
        raise SystemExit(f'error: --manual={spec}: give ID=NUMBER (in {fig["unit"]})') from None
    R.save([R.make(fig_id, [value], fig['unit'], {'command': fig['params']['command']},
                   command=fig['params']['command'])])
    from experiments.benchmarks.render import main as render_main
    return render_main([])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--part', choices=PARTS)
    ap.add_argument('--only', default='', help='comma-separated figure ids')
    ap.add_argument('--dry_run', action='store_true', help='print the plan; run nothing')
    ap.add_argument('--quick', action='store_true', help='tiny budgets; records go to '
                    f'{QUICK_RECORDS}, never to results/')
    ap.add_argument('--manual', default='', help="ID=VALUE: record a 'manual' figure (measured "
                    "outside the suite, by its definition's command) on this machine, now")
    ap.add_argument('--keep_going', action='store_true', help='a failing group does not stop '
                    'the part (its figures keep their earlier records)')
    a = ap.parse_args(argv)
    only = [i for i in a.only.split(',') if i]
    if a.manual:
        return record_manual(a.manual)
    if not a.part and not only:
        ap.error('give --part=cpu|gpu|long or --only=ID,...')
    groups = plan(a.part, only)
    if a.dry_run:
        for i, g in enumerate(groups, 1):
            print(f'{i:3d}. {describe(g)}')
        print(f'{sum(len(g) for g in groups)} figures in {len(groups)} groups')
        return 0
    from experiments.benchmarks import measure
    from experiments.benchmarks.render import main as render_main
    path = QUICK_RECORDS if a.quick else R.RECORDS
    t0, failed = time.perf_counter(), []
    for i, group in enumerate(groups, 1):
        print(f'[{i}/{len(groups)}] {describe(group)}', flush=True)
        try:
            recs = measure.KINDS[group[0]['kind']](group, a.quick)
        except Exception as e:  # noqa: BLE001 - one failing group must not hide the others' figures
            if isinstance(e, measure.MissingPeer):
                print(f'error: {e}', file=sys.stderr)
            else:
                traceback.print_exc()
            failed.append(group[0]['id'])
            if not a.keep_going:
                break
            continue
        R.save(recs, path)
        for r in recs:
            print(f"  {r['id']}: {r['mean']:.4g} {r['unit']} ({r['n']} values)", flush=True)
    if a.part and not only and not a.quick and not failed:
        fig = BY_ID.get(f'suite.{a.part}')
        if fig:
            minutes = (time.perf_counter() - t0) / 60
            R.save([R.make(fig['id'], [minutes], 'min', {'part': a.part},
                           command=f'python -m experiments.benchmarks.suite --part={a.part}',
                           wall_s=minutes * 60)], path)
    if not a.quick:
        render_main([])
    if failed:
        print(f'failed: {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
