"""Writes BENCHMARKS.md and its plots from the figure definitions and the result records.

  python -m experiments.benchmarks.render            # rewrites BENCHMARKS.md and results/plots/
  python -m experiments.benchmarks.render --check    # exit 1 if BENCHMARKS.md is stale or a plot is missing

Nothing in BENCHMARKS.md is typed by hand: every number is a record's, every
threshold and published figure a definition's, every command a record's.
"""
from __future__ import annotations

import os
import sys

from experiments.benchmarks import plots
from experiments.benchmarks import records as R
from experiments.benchmarks.definitions import FIGURES

OUT = os.path.join(R.REPO, 'BENCHMARKS.md')
FAMILIES = {  # section title, what the family's figures share
    'core': ('Core: backprop baseline and the compiled epoch', ''),
    'ff': ('Forward-forward (ff, cff)', 'Adam lr 1e-3 with cosine decay; ff/cff with their '
           "constructors' defaults (SymBa loss, label in the first 10 inputs)."),
    'mf': ('Mono-Forward (mf)', 'Hyperparameters picked on a validation split of the training set, '
           'never the test set; the BP twin has the same model, initialisation and data order.'),
    'pc': ('Predictive coding (pc, ipc)', "The BP twin runs pc's network and optimizer "
           '(AdamW 2.97e-4, weight decay 1.8e-3, warm-up cosine).'),
    'fa': ('Feedback alignment family (fa, dfa, usf, brsf, frsf, pfa)', 'Adam 1e-3, batch 128.'),
    'parallel': ('Parallel (composition and scale)', ''),
    'checkpoint': ('Checkpoints', 'orbax, synchronous, whole TrainState, one save per epoch.'),
    'memory': ('Memory vs depth, every rule', 'XLA `memory_analysis().temp_size_in_bytes` of '
               'the compiled train step (rule.step + Adam, state donated); MiB (ratio to bp).'),
    'blocks': ('Flax models as blocks (the zoo, every rule)',
               "Zoo models built from linen modules; a CPU budget cut to 10,000 training images "
               "and 3 epochs, 3 seeds; one optimizer for every rule (the model config's), its "
               "learning rate picked from 3e-4, 1e-3, 3e-3 with one seed on 2,000 held-out "
               "training images, each rule's other hyperparameters its own."),
    'pod': ('Pod-scale runs: step granularity, the host feed, asynchronous checkpoints',
            'Calls of K steps (`config.steps_per_call`) against the one-program epoch, the host '
            'feed (`config.feed`) against the device feed, asynchronous saves against none, '
            'on this machine.'),
    'beyond': ('Rules beyond the four families (pepita, foton, fg, ccl, lls, dualprop, ep)',
               "Each rule's own config (optimizer, activation, batch) on one MLP, 784-256x5-10 "
               "(CCL's F-MNIST network); a CPU budget of 20 epochs (the papers: 100); the "
               'learning rate picked from three around the config\'s own with one seed on '
               '6,000 held-out training images, then 3 seeds.'),
    'gpu': ('GPU: every rule vs its backprop twin', ''),
    'suite': ('The suite itself', ''),
    'peers': ('Peers: PCX, BioTorch, fflib (`experiments/benchmarks/peers/`)',
              'Each peer runs in its own virtualenv (.venvs/<peer>), interleaved with neurokit '
              'on the same network, batch and data.'),
}
PASS, SHORT, MISSING = 'PASS', 'SHORT', 'NOT MEASURED'


def figure_value(fig: dict, recs: dict):
    """(value, record or None, the records it came from) for one figure; value None
    when a record it needs is missing."""
    if fig['kind'] == 'derived':
        _, a, b = fig['derive']
        ra, rb = recs.get(a), recs.get(b)
        if ra is None or rb is None:
            return None, None, []
        return ra['mean'] - rb['mean'], None, [ra, rb]
    rec = recs.get(fig['params'].get('record', fig['id'])) if fig['kind'] == 'manual' \
        else recs.get(fig['id'])
    if rec is None:
        return None, None, []
    return (max(rec['values']) if fig['stat'] == 'max' else rec['mean']), rec, [rec]


def verdict(fig: dict, value) -> str:
    if value is None:
        return MISSING
    if fig['target'] is None:
        return PASS if fig['issue'] else '—'  # a figure the issue asks to report
    ok = value >= fig['target'] if fig['direction'] == '>=' else value <= fig['target']
    return PASS if ok else SHORT


def fmt(v, unit: str) -> str:
    if unit in ('rel. error', 'abs. diff'):
        return f'{v:.1e}'
    if unit == 'points':
        return f'{v:+.2f}'
    if unit == 'x':
        return f'{v:.2f}×'
    if unit == 'min':
        return f'{v:.1f} min'
    if unit == '% overhead':
        return f'{v:+.1f} %'
    if unit == 'traces':
        return f'{v:g}'
    return f'{v:.2f}'


def measured(fig: dict, recs: dict) -> str:
    """The measured cell: mean ± sample std (n) for seeds, the value otherwise."""
    value, rec, _ = figure_value(fig, recs)
    if value is None:
        return '—'
    if rec is not None and fig['stat'] == 'mean' and rec['n'] > 1 and fig['unit'] == '%':
        return f"{fmt(value, fig['unit'])} ± {rec['std']:.2f} ({rec['n']} seeds)"
    if rec is not None and fig['unit'] == '%' and fig['kind'] in ('train', 'select'):
        return f"{fmt(value, fig['unit'])} (1 seed)"
    return fmt(value, fig['unit'])


def target(fig: dict) -> str:
    if fig['target'] is None:
        return 'report' if fig['issue'] else '—'
    return f"{fig['direction'].replace('>=', '≥').replace('<=', '≤')} {fmt(fig['target'], fig['unit'])}"


def provenance(sources: list[dict]) -> tuple[str, str]:
    """(machine, date) of the records a figure came from; 'migrated' marks earlier code."""
    if not sources:
        return '—', '—'
    newest = max(sources, key=lambda r: r['date'] or '')
    date = newest['date'] or '?'
    if any('migrated' in r for r in sources):
        date += ' (migrated)'
    return newest['machine'], date


def summary(recs: dict) -> list[str]:
    lines = ['## Summary: every acceptance figure', '',
             '| issue | figure | measured | target | verdict | machine | date |',
             '|---|---|---|---|---|---|---|']
    for fig in sorted((f for f in FIGURES if f['issue']), key=lambda f: f['issue']):
        value, _, src = figure_value(fig, recs)
        machine, date = provenance(src)
        lines.append(f"| #{fig['issue']} | `{fig['id']}` {fig['title']} | {measured(fig, recs)} | "
                     f"{target(fig)} | {verdict(fig, value)} | {machine} | {date} |")
    counts = {v: sum(verdict(f, figure_value(f, recs)[0]) == v for f in FIGURES if f['issue'])
              for v in (PASS, SHORT, MISSING)}
    lines += ['', ', '.join(f'{n} {v}' for v, n in counts.items()) + '.', '']
    return lines


def _table(rows: list[dict]) -> list[str]:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    out += ['| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |' for r in rows]
    return out


def family(name: str, recs: dict) -> list[str]:
    title, intro = FAMILIES[name]
    figs = [f for f in FIGURES if f['family'] == name]
    lines = [f'## {title}', ''] + ([intro, ''] if intro else [])
    lines += ['| figure | model | data | measured | target | verdict | published | machine | date |',
              '|---|---|---|---|---|---|---|---|---|']
    for fig in figs:
        value, _, src = figure_value(fig, recs)
        machine, date = provenance(src)
        pub = '; '.join(x for x in (fig['published'], fig['source']) if x) or '—'
        data = fig['data'] if fig['kind'] in ('train', 'select') else '—'
        lines.append(f"| `{fig['id']}` {fig['title']} | {fig['model'] or '—'} | {data} | "
                     f"{measured(fig, recs)} | {target(fig)} | {verdict(fig, value)} | {pub} | "
                     f'{machine} | {date} |')
    lines.append('')
    for fig in figs:
        rec = recs.get(fig['id'])
        if rec and rec.get('rows'):
            lines += [f"### `{fig['id']}`: {fig['title']}", ''] + _table(rec['rows']) + ['']
    notes = [(f['id'], recs[f['id']]) for f in figs if f['id'] in recs
             and (recs[f['id']].get('note') or recs[f['id']].get('extra'))]
    if notes:
        lines += ['Notes and side figures:', '']
        for fig_id, rec in notes:
            bits = [rec['note']] if rec.get('note') else []
            bits += [f'{k} {_short(v)}' for k, v in (rec.get('extra') or {}).items() if v is not None]
            lines.append(f"- `{fig_id}`: " + '; '.join(bits))
        lines.append('')
    cmds = [(f['id'], recs[f['id']]) for f in figs if f['id'] in recs]
    if cmds:
        lines += ['Commands (a training row: run it with DIR a new folder; migrated: as recorded):', '']
        lines += [f"- `{i}`{' (migrated)' if 'migrated' in r else ''}: `{r['command']}`"
                  for i, r in cmds]
        lines.append('')
    return lines


def _short(v) -> str:
    if isinstance(v, float):
        return f'{v:.3g}'
    if isinstance(v, dict):
        return '{' + ', '.join(f'{k}: {_short(x)}' for k, x in v.items()) + '}'
    if isinstance(v, list):
        return '[' + ', '.join(_short(x) for x in v) + ']'
    return str(v)


def render(recs: dict) -> str:
    """BENCHMARKS.md's text for `recs` (id -> record): the same records give the same text."""
    lines = [
        '# Benchmarks', '',
        'Generated by `python -m experiments.benchmarks.render` from the figure definitions '
        '(`experiments/benchmarks/definitions.py`) and the result records '
        '(`experiments/benchmarks/results/records.jsonl`); edit those, not this file. '
        'Accuracies are test accuracies in %, mean ± sample standard deviation (ddof = 1) over '
        'seeds. Speed figures are ratios of interleaved medians in one process on one machine. '
        'PASS: the target is met; SHORT: measured, not met; NOT MEASURED: no record. '
        '"(migrated)": measured on earlier code and converted from the per-family result files '
        'it wrote then; its command is the one recorded then.', '',
        'Regenerate: `python -m experiments.benchmarks.suite --part=cpu|gpu|long` '
        '(`--dry_run` lists the figures and commands; `--only=ID,...` measures some; '
        '`--manual=ID=VALUE` records a figure measured by hand), which re-renders this file '
        '(`python -m experiments.benchmarks.render` alone does that from the records).', '']
    lines += summary(recs)
    for name in FAMILIES:
        lines += family(name, recs)
    lines += plots.section(recs)
    return '\n'.join(lines).rstrip() + '\n'


def main(argv) -> int:
    recs = R.load()
    text, out = render(recs), OUT
    if '--check' in argv:
        # the PNGs' pixels depend on the installed matplotlib and fonts: checked for presence only
        with open(out) as f:
            stale = f.read() != text or not all(
                os.path.exists(os.path.join(plots.PLOTS, n)) for n in plots.PLOTTERS)
        print('BENCHMARKS.md is stale or a plot is missing: run python -m experiments.benchmarks.render'
              if stale else 'BENCHMARKS.md is up to date')
        return int(stale)
    with open(out, 'w') as f:
        f.write(text)
    drawn = plots.draw(recs)
    print(f"wrote {out} and {', '.join(drawn)} in {os.path.relpath(plots.PLOTS, R.REPO)}")
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
