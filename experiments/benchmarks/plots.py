"""The benchmark plots, drawn from the result records alone; BENCHMARKS.md embeds them.

  speed.png    time per step of each rule / its backprop twin (a CPU and a GPU panel),
               and neurokit's throughput / another implementation's (peers, and the
               scanned epoch / a Python loop of the same jitted step)
  memory.png   compiled train-step temporaries vs depth, every rule (MiB, and / bp),
               and mf / bp at 16 layers of 1024 (CPU, GPU peak, H200 compiled ahead)
  curves.png   every rule beside its bp twin (the 'train' figures that share an id
               prefix with a bp one): test accuracy per epoch where the records keep a
               `curve`; otherwise the final test accuracy, mean with sample-std error
               bars and a dot per seed

`render.py` calls `draw` (writes the PNGs) and `section` (the markdown that embeds them).
Each `*_data` function returns exactly what its panel draws, so a test can compare the
drawn artists with the records.
"""
from __future__ import annotations

import json
import os
import re

from experiments.benchmarks import records as R
from experiments.benchmarks.definitions import BY_ID, FIGURES

PLOTS = os.path.join(R.RESULTS, 'plots')
PEER_LABEL = {'pcx': 'pc vs PCX', 'fflib': 'ff vs fflib', 'scan_loop': 'bp scanned epoch vs Python loop'}
MEMORY_RATIO_OF = ('memory', 'gpu_peak', 'aot_memory')  # kinds whose rows hold mf / bp at one size


def _key(fig) -> str:
    return json.dumps(fig['params'], sort_keys=True)


def speed_data(recs: dict) -> dict:
    """{panel: [(label, ratio, figure id)]} for the panels 'cpu', 'gpu' (rule / bp step
    time) and 'peers' (neurokit samples/s / the other implementation's)."""
    panels = {'cpu': [], 'gpu': [], 'peers': []}
    # a rule's figure measured in the same group as an every-rule figure is one of its rows
    whole = {_key(f) for f in FIGURES if f['kind'] == 'speed' and not f['rule'] and f['id'] in recs}
    for fig in FIGURES:
        rec = recs.get(fig['id'])
        if rec is None or rec['unit'] != 'x':
            continue
        where = panels['gpu' if fig['machine'] == 'gpu' else 'cpu']
        net = fig['model'].replace('MLP ', '')
        if fig['kind'] == 'speed' and fig['rule']:
            if _key(fig) not in whole:
                where.append((f"{fig['rule']} ({net})", rec['values'][0], fig['id']))
        elif fig['kind'] == 'speed':  # every rule: values and rows in the same order
            where += [(f"{row['rule']} ({net})", v, fig['id'])
                      for row, v in zip(rec['rows'], rec['values'], strict=True) if row['rule'] != 'bp']
        elif fig['kind'] == 'biotorch':
            panels['peers'] += [(f"{row['rule']} vs BioTorch", row['neurokit / BioTorch'], fig['id'])
                                for row in rec['rows']]
        elif fig['kind'] in PEER_LABEL:
            gpu = ' (GPU)' if fig['machine'] == 'gpu' else ''
            panels['peers'].append((PEER_LABEL[fig['kind']] + gpu, rec['values'][0], fig['id']))
            if fig['kind'] == 'pcx' and 'bp_over_pc_time' in rec.get('extra', {}):
                # a ratio of samples/s, bp over pc: pc's time per step over bp's
                where.append((f"pc ({net}, T={fig['params']['T']})",
                              rec['extra']['bp_over_pc_time'], fig['id']))
    return panels


def memory_data(recs: dict) -> tuple[dict, list]:
    """({rule: [(depth, MiB, ratio to bp)]} from memory.depth's rows; [(label, mf / bp,
    figure id)] from the rows of the figures that compare mf with bp at one size)."""
    lines = {}
    rec = recs.get('memory.depth')
    for row in rec['rows'] if rec else []:
        for col, cell in row.items():
            m = re.fullmatch(r'depth (\d+)', col)
            if m:  # cells read 'MiB (ratio)'
                mib, ratio = re.fullmatch(r'([0-9.]+) \(([0-9.]+)\)', cell).groups()
                lines.setdefault(row['rule'], []).append((int(m.group(1)), float(mib), float(ratio)))
    bars = []
    for fig in FIGURES:
        rec = recs.get(fig['id'])
        if fig['kind'] not in MEMORY_RATIO_OF or fig['rule'] != 'mf' or rec is None:
            continue
        for row in rec.get('rows', []):
            col = next((c for c in ('mf/bp', '/ bp') if c in row), None)
            if col and row.get('rule') != 'bp':
                what = f"{row.get('rule', 'mf')} {row.get('what', '')}".strip()
                bars.append((f"{what}, batch {row['batch']} [{fig['id']}]", row[col], fig['id']))
    return lines, bars


def twin_data(recs: dict) -> list[tuple[str, list]]:
    """[(id prefix, [(figure, record)])]: each group of 'train' figures with a measured bp
    twin and at least one measured other rule; bp first, then definition order."""
    groups: dict = {}
    for fig in FIGURES:
        if fig['kind'] == 'train' and fig['id'] in recs:
            groups.setdefault(fig['id'].rsplit('.', 1)[0], []).append((fig, recs[fig['id']]))
    out = []
    for prefix, members in groups.items():
        rules = [f['rule'] for f, _ in members]
        if 'bp' in rules and any(r != 'bp' for r in rules):
            out.append((prefix, sorted(members, key=lambda m: m[0]['rule'] != 'bp')))
    return out


def _figure(width, height):
    try:
        from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state
    except ImportError:
        raise SystemExit('error: drawing the plots needs matplotlib: pip install -e ".[plot]"') from None
    return Figure(figsize=(width, height))


def _save(fig, path):
    fig.tight_layout()
    # no version in the PNG's metadata: a redraw from the same records diffs clean
    fig.savefig(path, dpi=100, metadata={'Software': None})


def _bars(ax, bars, title, log=False):
    ax.barh(range(len(bars)), [b[1] for b in bars], color=[
        ('C2' if b[1] >= 1 else 'C3') if log else ('C0' if b[1] <= 1 else 'C3') for b in bars])
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color='k', lw=0.8)
    if log:
        ax.set_xscale('log')
    for i, b in enumerate(bars):
        ax.text(b[1], i, f' {b[1]:.2f}', va='center', fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.grid(axis='x', alpha=0.3)


def draw_speed(recs, path):
    panels = speed_data(recs)
    titles = {'cpu': 'CPU: time per step, rule / bp twin (< 1: faster)',
              'gpu': 'GPU: time per step, rule / bp twin',
              'peers': 'neurokit samples/s / other implementation (log; > 1: faster)'}
    shown = [k for k in titles if panels[k]]
    fig = _figure(6 * max(len(shown), 1), 0.3 * max([len(panels[k]) for k in shown] + [4]) + 1.6)
    for i, k in enumerate(shown):
        _bars(fig.add_subplot(1, len(shown), i + 1), panels[k], titles[k], log=k == 'peers')
    _save(fig, path)
    return fig


def draw_memory(recs, path):
    lines, bars = memory_data(recs)
    fig = _figure(18, 5)
    mib, ratio, mf = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    for i, (rule, pts) in enumerate(lines.items()):
        pts = sorted(pts)
        style = dict(marker='osD^v<>ph*Xd'[i % 12], markersize=4, label=rule,
                     color=f'C{i % 10}' if i < 10 else 'k', lw=2.4 if rule in ('bp', 'mf') else 1.0)
        mib.plot([p[0] for p in pts], [p[1] for p in pts], **style)
        ratio.plot([p[0] for p in pts], [p[2] for p in pts], **style)
    p = BY_ID['memory.depth']['params']
    depths = sorted({d for pts in lines.values() for d, *_ in pts})
    for ax, label in ((mib, 'temporaries, MiB (log)'), (ratio, 'temporaries / bp at the same depth')):
        ax.set_xscale('log', base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel(f"hidden layers of {p['width']} (memory.depth, batch {p['batches'][0]})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    mib.set_yscale('log')
    ratio.axhline(1.0, color='k', lw=0.8)
    if lines:
        mib.legend(fontsize=7, ncol=2)
    if bars:
        _bars(mf, bars, 'mf / bp, 16 layers of 1024 (< 1: less memory)')
    else:
        mf.axis('off')
    _save(fig, path)
    return fig


def draw_curves(recs, path):
    from matplotlib.ticker import MaxNLocator
    panels = twin_data(recs)
    cols = min(4, max(len(panels), 1))
    rows = -(-len(panels) // cols) or 1
    fig = _figure(4.4 * cols, 3.3 * rows)
    for i, (prefix, members) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        first = members[0][0]
        ax.set_title(f"{prefix}: {first['model']}, {first['data']}", fontsize=8)
        if all(rec.get('curve') for _, rec in members):
            for j, (f, rec) in enumerate(members):
                # an epoch's entry: its per-seed values, or (some migrated records) their mean
                stats = [R.stats(e if isinstance(e, list) else [e]) for e in rec['curve']]
                x = range(1, len(stats) + 1)
                mean = [m for m, _ in stats]
                std = [s or 0.0 for _, s in stats]
                ax.plot(x, mean, marker='o', markersize=2 if len(x) > 1 else 6, color=f'C{j}',
                        label=f['id'].rsplit('.', 1)[1])
                ax.fill_between(x, [m - s for m, s in zip(mean, std)],
                                [m + s for m, s in zip(mean, std)], color=f'C{j}', alpha=0.2)
            ax.set_xlabel('epoch', fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=6)
        else:
            for j, (f, rec) in enumerate(members):
                ax.errorbar([j], [rec['mean']], yerr=[rec['std'] or 0.0], fmt='o', capsize=4,
                            color=f'C{j}')
                ax.plot([j] * rec['n'], rec['values'], '.', color=f'C{j}', alpha=0.4, markersize=4)
            ax.set_xticks(range(len(members)), [f['id'].rsplit('.', 1)[1] for f, _ in members],
                          fontsize=7, rotation=30)
            ax.set_xlim(-0.6, len(members) - 0.4)
            ax.set_xlabel('final epoch (mean ± sample std; dots: seeds)', fontsize=7)
        ax.set_ylabel('test accuracy %', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    _save(fig, path)
    return fig


PLOTTERS = {'speed.png': draw_speed, 'memory.png': draw_memory, 'curves.png': draw_curves}


def draw(recs: dict, out_dir: str | None = None) -> dict:
    """Writes every plot of `recs` (id -> record) into `out_dir`.

    Args:
      recs: the records, as `records.load` returns them.
      out_dir: the folder of the PNGs (made if missing); default `PLOTS`, read at the
        call (so that a test can point it elsewhere).

    Returns:
      {file name: the matplotlib Figure written to it}.
    """
    out_dir = PLOTS if out_dir is None else out_dir
    os.makedirs(out_dir, exist_ok=True)
    return {name: fn(recs, os.path.join(out_dir, name)) for name, fn in PLOTTERS.items()}


def section(recs: dict) -> list[str]:
    """BENCHMARKS.md's plots section: each PNG, with the figure ids it was drawn from."""
    rel = os.path.relpath(PLOTS, R.REPO).replace(os.sep, '/')
    speed = sorted({i for bars in speed_data(recs).values() for *_, i in bars})
    lines, bars = memory_data(recs)
    memory = (['memory.depth'] if lines else []) + sorted({b[2] for b in bars})
    twins = twin_data(recs)
    curved = [f['id'] for _, m in twins for f, rec in m if rec.get('curve')]
    ids = lambda xs: ', '.join(f'`{x}`' for x in xs) or 'none yet'
    return [
        '## Plots', '',
        'Drawn by `experiments/benchmarks/plots.py` from the records above (rendering writes '
        'them).', '',
        '### Time per step of each rule vs its backprop twin, and vs other implementations', '',
        f'![speed]({rel}/speed.png)', '', f'From {ids(speed)}.', '',
        '### Memory vs depth, every rule; mf vs bp', '',
        f'![memory]({rel}/memory.png)', '', f'From {ids(memory)}.', '',
        '### Each rule beside its backprop twin', '',
        f'![curves]({rel}/curves.png)', '',
        f"From {ids([f['id'] for _, m in twins for f, _ in m])}. Test accuracy per epoch (mean "
        f"± sample std over seeds) where every record of a panel keeps its curve ({len(curved)} "
        f"of these {sum(len(m) for _, m in twins)} do; the suite records one for every training "
        'figure it measures); otherwise the final accuracy, mean ± sample std, a dot per seed.', '']
