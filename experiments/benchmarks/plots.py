"""PNG plots of the benchmark results, with their captions, for BENCHMARKS.md.

Called by `python -m experiments.benchmarks.report`; reads only the results
JSONs (`experiments/benchmarks/results/*.json`) and draws:
  speed.png    time per step of every rule over its backprop twin (CPU, and GPU
               when results/gpu.json exists); neurokit vs peer libraries.
  memory.png   compiled temporary memory vs depth per rule (results/memory.json).
  curves.png   test accuracy vs epoch per rule, wherever a JSON keeps per-epoch
               curves; what lacks curves is listed in the markdown.
Each caption names the command, machine, date and versions recorded with the
numbers (or from the family's .md header when its JSON has none).
"""
from __future__ import annotations

import json
import math
import os
import re

from experiments.benchmarks import common

FAMILIES = ('core', 'ff', 'mf', 'pc', 'fa', 'parallel', 'checkpoint', 'memory', 'fflib', 'gpu')
NOT_RECORDED = 'not recorded'


def load_results(results_dir):
    out = {}
    for name in FAMILIES:
        path = os.path.join(results_dir, f'{name}.json')
        if os.path.exists(path):
            with open(path) as f:
                out[name] = json.load(f)
    return out


def _md_header(results_dir, name):
    """`Command/Machine/Date/Versions` lines of results/<name>.md (common.header's format)."""
    path = os.path.join(results_dir, f'{name}.md')
    found = {}
    if os.path.exists(path):
        text = open(path).read()
        m = re.search(r'^- Command: `([^`]+)`', text, re.M)
        if m:
            found['command'] = m.group(1)
        for key in ('Machine', 'Date', 'Versions'):
            m = re.search(rf'^- {key}: (.+)$', text, re.M)
            if m:
                found[key.lower()] = m.group(1).strip().rstrip('.')
        m = re.search(r'\bjax (\d[\w.]*\d)', text)
        if m and 'versions' not in found:
            found['versions'] = f'jax {m.group(1)}'
    return found


def provenance(results_dir, results, name, part=None, command=None):
    """dict(command, machine, date, versions) of `results[name][part]`, falling back to the
    family's top level, then to its .md header."""
    top = results.get(name, {})
    node = top.get(part, {}) if part else {}
    node = node if isinstance(node, dict) else {}
    md = _md_header(results_dir, name)

    def pick(key):
        for src in (node, top):
            if isinstance(src.get(key), str):
                return src[key]
        return None
    jax_v = pick('jax')
    versions = f'jax {jax_v}' if jax_v else md.get('versions', NOT_RECORDED)
    if part == 'biotorch' and isinstance(node.get('version'), str):
        versions += f", torch and biotorch {node['version']}"
    for extra in ('torch', 'fflib'):
        if isinstance(node.get(extra) or top.get(extra), str):
            versions += f', {extra} {node.get(extra) or top.get(extra)}'
    return {'command': pick('command') or command or md.get('command', NOT_RECORDED),
            'machine': pick('machine') or md.get('machine', NOT_RECORDED),
            'date': pick('date') or md.get('date', NOT_RECORDED), 'versions': versions}


def _caption_lines(sources):
    """Markdown bullets: one per (label, provenance)."""
    return [f"- {label}: `{p['command']}`; {p['machine']}; {p['date']}; {p['versions']}"
            for label, p in sources]


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


# ---------------------------------------------------------------- speed


def _hidden_desc(text):
    """'MLP 784-256-256-10 ...' -> '256x2' (hidden widths of the first dash-joined size list)."""
    m = re.search(r'\b\d+(?:-\d+){2,}\b', text)
    if not m:
        return '?'
    return _widths(m.group(0).split('-')[1:-1])


def _widths(hidden):
    hidden = [str(h) for h in hidden]
    return f'{len(hidden)}x{hidden[0]}' if len(set(hidden)) == 1 else '-'.join(hidden)


def speed_data(results_dir, res):
    """Bars (label, ratio, note) of rule/BP time on CPU, GPU ratios and peer throughput ratios."""
    cpu, peers, sources = [], [], []
    ff = res.get('ff', {}).get('speed')
    if ff:
        m = ff['median_step_seconds']
        net = _widths(ff['hidden'])
        cpu += [(f'ff ({net})', m['ff'] / m['bp']), (f'cff ({net})', m['cff'] / m['bp'])]
        sources.append(('ff', provenance(results_dir, res, 'ff', 'speed',
                                         'python -m experiments.benchmarks.ff --parts=speed')))
    mf = res.get('mf', {}).get('speed')
    if mf:
        cpu.append((f"mf ({_widths(mf['hidden'])})", mf['ratio_mf_over_bp']))
        sources.append(('mf', provenance(results_dir, res, 'mf', 'speed',
                                         'python -m experiments.benchmarks.mf --part=speed')))
    pc = res.get('pc', {}).get('speed')
    if pc:
        t = re.search(r'\bT=(\d+)', pc.get('network', ''))
        cpu.append((f"pc ({_hidden_desc(pc.get('network', ''))}{f', T={t.group(1)}' if t else ''})",
                    pc['bp_over_pc_time_ratio']))
        if pc.get('pc_over_pcx'):
            peers.append(('pc vs PCX', pc['pc_over_pcx']))
        sources.append(('pc', provenance(results_dir, res, 'pc', 'speed',
                                         'python -m experiments.benchmarks.pc --part=speed')))
    fa = res.get('fa', {}).get('speed')
    if fa:
        for k, v in fa['ratio_vs_bp'].items():
            cpu.append((f"{k} ({_hidden_desc(fa.get('model', ''))})", v))
        sources.append(('fa', provenance(results_dir, res, 'fa', 'speed',
                                         'python -m experiments.benchmarks.fa --part=speed')))
    bt = res.get('fa', {}).get('biotorch')
    if bt and bt.get('speedup'):
        for k, v in bt['speedup'].items():
            peers.append((f'{k} vs BioTorch', v))
        sources.append(('BioTorch', provenance(results_dir, res, 'fa', 'biotorch')))
    fl = res.get('fflib', {})
    if fl.get('available') and not fl.get('quick'):
        peers.append(('ff vs fflib', fl['ff_over_fflib']))
        sources.append(('fflib', provenance(results_dir, res, 'fflib')))
    core = res.get('core', {}).get('speed')
    if core:
        peers.append(('bp scan vs Python loop', core['ratio_scan_over_loop']))
        sources.append(('core', provenance(results_dir, res, 'core', None,
                                           'python -m experiments.benchmarks.core --only=speed')))
    gpu = []
    g = res.get('gpu', {})
    if g and not g.get('quick'):
        for net, r in g.get('nets', {}).items():
            for rule, v in r['rules'].items():
                if rule != 'bp' and v.get('ratio_to_bp'):
                    gpu.append((f"{rule} ({r.get('label', net)})", v['ratio_to_bp']))
        sources.append(('gpu', provenance(results_dir, res, 'gpu')))
    return cpu, gpu, peers, sources


def speed_plot(results_dir, res, out_png):
    cpu, gpu, peers, sources = speed_data(results_dir, res)
    if not (cpu or gpu or peers):
        return None
    plt = _plt()
    panels = [(cpu, 'CPU: time per step, rule / BP twin (< 1: faster)', False),
              (gpu, 'GPU: time per step, rule / BP twin', False),
              (peers, 'neurokit throughput / other implementation (log)', True)]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 0.45 * max(
        len(p[0]) for p in panels) + 1.6), squeeze=False)
    for ax, (bars, title, log) in zip(axes[0], panels):
        labels, vals = [b[0] for b in bars], [b[1] for b in bars]
        ax.barh(range(len(bars)), vals, color=['C0' if v <= 1 else 'C3' for v in vals] if not log
                else ['C2' if v >= 1 else 'C3' for v in vals])
        ax.set_yticks(range(len(bars)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color='k', lw=0.8)
        if log:
            ax.set_xscale('log')
        for i, v in enumerate(vals):
            ax.text(v, i, f' {v:.2f}', va='center', fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    caption = ['Speed ratios from the results JSONs (same-process interleaved medians; each '
               'family measured its own network, named in the label). Sources:'] + _caption_lines(sources)
    if not gpu:
        caption.append('- GPU: no results/gpu.json yet (`python -m experiments.benchmarks.suite '
                       '--part=gpu` on a GPU machine).')
    return caption


# ---------------------------------------------------------------- memory


def memory_plot(results_dir, res, out_png):
    m = res.get('memory')
    if not m or not m.get('rows'):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    markers = 'osD^v<>ph*Xd'
    for i, rule in enumerate(m['rules']):
        rows = sorted((r for r in m['rows'] if r['rule'] == rule and 'error' not in r),
                      key=lambda r: r['depth'])
        if not rows:
            continue
        d = [r['depth'] for r in rows]
        style = dict(marker=markers[i % len(markers)], markersize=4, label=rule,
                     color=plt.cm.tab20(i % 20), lw=2.2 if rule == 'bp' else 1.2)
        axes[0].plot(d, [r['train_step_bytes'] / 2**20 for r in rows], **style)
        axes[1].plot(d, [r.get('train_step_ratio_to_bp', math.nan) for r in rows], **style)
    axes[0].set_yscale('log')
    axes[0].set_ylabel('temp MiB (log)')
    axes[0].set_title(f"train step temporaries, MLP width {m['width']}, batch {m['batch_size']}",
                      fontsize=9)
    axes[1].set_ylabel('ratio to bp')
    axes[1].axhline(1.0, color='k', lw=0.8)
    axes[1].set_title('ratio to bp at the same depth', fontsize=9)
    for ax in axes:
        ax.set_xscale('log', base=2)
        ax.set_xticks(m['depths'])
        ax.set_xticklabels(map(str, m['depths']))
        ax.set_xlabel('hidden layers')
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return (['Compiled temporary memory (XLA memory analysis) of the train step (rule.step + '
             'Adam, state donated) vs depth; every registered rule with its defaults. Source:']
            + _caption_lines([('memory', provenance(results_dir, res, 'memory'))]))


# ---------------------------------------------------------------- curves


def _mean(v):
    vals = list(_flat(v))
    return sum(vals) / len(vals) if vals else math.nan


def _std(v):
    vals = list(_flat(v))
    if len(vals) < 2:
        return 0.0
    m = sum(vals) / len(vals)
    return math.sqrt(sum((x - m) ** 2 for x in vals) / len(vals))


def _flat(v):
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _flat(x)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield float(v)


def _model_desc(r):
    m = r.get('model')
    if isinstance(m, dict):
        if m.get('name') == 'mlp':
            return 'mlp ' + _widths(m.get('hidden', []))
        return m.get('name', '')
    return str(m or '')


def curve_data(results_dir, res):
    """Panels {title: {rule: per-epoch values}}, their sources, and notes on missing curves."""
    panels, sources, missing = {}, [], []
    ff = res.get('ff', {})
    ff_parts = {'datasets': '--parts=datasets', 'fmnist_2x1000': '--parts=fmnist',
                'cnn_fmnist': '--parts=cnn', 'fmnist_4x2000': '--parts=wide'}
    for key, flag in ff_parts.items():
        for r in ff.get(key, []):
            kind, sizes = r['model'][0], r['model'][1]
            if kind == 'mlp':
                sizes = _widths(re.findall(r'\d+', sizes))
            title = f"ff.json: {r['dataset']} {kind} {sizes}"
            kw = ','.join(f'{k}={v}' for k, v in r.get('kwargs', {}).items())
            label = r['rule'] + (f' ({kw})' if kw else '')
            curve = [h['test_accuracy'] for h in r.get('history', [])]
            panels.setdefault(title, {})[label] = curve
            if len(curve) == 1 and r['rule'] == 'bp' or (len(curve) == 1 and not any(
                    x['rule'] == 'bp' for x in ff.get(key, []))):
                same = ', '.join(x['rule'] for x in ff[key] if x['dataset'] == r['dataset'])
                missing.append(f"{title} ({same}): "
                               'one epoch only, drawn as single points; a curve needs '
                               f"`python -m experiments.benchmarks.ff {flag}` with more epochs.")
        if ff.get(key):
            sources.append((f'ff {key}', provenance(results_dir, res, 'ff', None,
                                                    f'python -m experiments.benchmarks.ff {flag}')))
    for fam in ('mf', 'pc'):
        for key, part in sorted(res.get(fam, {}).items()):
            if not key.startswith('accuracy_') or not isinstance(part, dict):
                continue
            first = next((r for r in part.values() if isinstance(r, dict) and 'curve' in r), None)
            if first is None:
                continue
            title = f"{fam}.json: {first.get('dataset', '')} {_model_desc(first)}"
            for rule, r in part.items():
                if isinstance(r, dict) and 'curve' in r:
                    panels.setdefault(title, {})[rule] = r['curve']
                    sources.append((f'{fam} {key} {rule}', provenance(
                        results_dir, res, fam, key, r.get('command'))))
    for fam in ('mf', 'pc'):
        if res.get(fam) and not any(k.startswith(f'{fam}.json') for k in panels):
            missing.append(f'{fam}.json holds no accuracy curves.')
    fa_acc = res.get('fa', {}).get('accuracy', {})
    no_curve = []
    for key, r in fa_acc.items():
        if not r.get('per_epoch_test_accuracy'):
            no_curve.append(key)
            continue
        title = (f"fa.json: fashion_mnist {r['model']}, {r['epochs']} epochs, "
                 f"{r.get('train_limit') or 60000} images, {r['seeds']} seeds")
        # a setting in the key (dfa [conv_feedback=channel]) keeps variants apart in one panel
        label = f"{r['rule']} {common.setting_of(key)}".strip()
        panels.setdefault(title, {})[label] = r['per_epoch_test_accuracy']
        prov = provenance(results_dir, res, 'fa', 'accuracy', r.get('command'))
        prov.update({k: r[k] for k in ('command', 'date') if isinstance(r.get(k), str)})
        sources.append((f'fa {key}', prov))
    if no_curve:
        missing.append(f"fa.json ({', '.join(no_curve)}): final accuracies only (recorded before "
                       'fa.py kept per-epoch test accuracy); a re-run of '
                       '`python -m experiments.benchmarks.fa --part=accuracy` draws them.')
    if res.get('core', {}).get('accuracy'):
        missing.append('core.json (bp on fashion_mnist, digits, mnist1d) stores final accuracies '
                       'only: curves need core.py to keep the per-epoch test accuracy and a re-run '
                       'of `python -m experiments.benchmarks.core`.')
    return panels, sources, missing


def curves_plot(results_dir, res, out_png):
    panels, sources, missing = curve_data(results_dir, res)
    if not panels:
        return None, missing
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = {}
    for ax, (title, curves) in zip(axes.flat, panels.items()):
        drawn = set()  # a second curve of the same rule in a panel (a variant) is dashed
        for label, curve in curves.items():
            c = colors.setdefault(label.split()[0], f'C{len(colors) % 10}')
            variant = label.split()[0] in drawn
            drawn.add(label.split()[0])
            xs = list(range(1, len(curve) + 1))
            m = [100 * _mean(v) for v in curve]
            s = [100 * _std(v) for v in curve]
            ax.plot(xs, m, marker='o', markersize=3 if len(xs) > 1 else 6, label=label, color=c,
                    ls='--' if variant else '-')
            if any(s):
                ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                                alpha=0.2, color=c)
        ax.set_title(title, fontsize=8)
        if max(len(c) for c in curves.values()) == 1:
            ax.set_xlim(0.5, 1.5)
        ax.set_xlabel('epoch', fontsize=8)
        ax.set_ylabel('test accuracy %', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    # one caption line per distinct provenance (runs of one part share it)
    seen, lines = set(), []
    for label, p in sources:
        key = (p['command'], p['date'])
        if key not in seen:
            seen.add(key)
            lines.append((label, p))
    caption = (['Test accuracy vs epoch (mean over vmapped seeds, band ± std) wherever a results '
                'JSON keeps per-epoch curves. Sources:'] + _caption_lines(lines))
    return caption, missing


# ---------------------------------------------------------------- section


def section(results_dir, plots_dir, md_dir):
    """Draws every plot into `plots_dir`; the markdown section that embeds them (links relative
    to `md_dir`, the folder of the markdown file)."""
    os.makedirs(plots_dir, exist_ok=True)
    res = load_results(results_dir)
    lines = ['## Plots', '', 'Drawn by `experiments/benchmarks/plots.py` (called by the report) '
             'from the results JSONs only.', '']
    written = []

    def emit(title, png, caption):
        rel = os.path.relpath(os.path.join(plots_dir, png), md_dir).replace(os.sep, '/')
        lines.extend([f'### {title}', '', f'![{title}]({rel})', ''] + caption + [''])
        written.append(os.path.join(plots_dir, png))

    problems = []

    def safe(fn, *args):
        try:
            return fn(results_dir, res, *args)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
            problems.append(f'{fn.__name__}: {type(e).__name__}: {e} (a results JSON changed '
                            'shape; plots.py needs updating)')
            return None

    cap = safe(speed_plot, os.path.join(plots_dir, 'speed.png'))
    if cap:
        emit('Speed ratio per rule vs its backprop twin, and vs other implementations',
             'speed.png', cap)
    cap = safe(memory_plot, os.path.join(plots_dir, 'memory.png'))
    if cap:
        emit('Memory vs depth per rule', 'memory.png', cap)
    else:
        lines += ['### Memory vs depth per rule', '',
                  'No results/memory.json: run `python -m experiments.benchmarks.memory`.', '']
    cap, missing = safe(curves_plot, os.path.join(plots_dir, 'curves.png')) or (None, [])
    if cap:
        emit('Accuracy vs epoch per rule', 'curves.png', cap)
    if missing:
        lines += ['Curves not drawn (re-runs needed):', ''] + [f'- {m}' for m in missing] + ['']
    if problems:
        lines += ['Plots that failed:', ''] + [f'- {p}' for p in problems] + ['']
    return '\n'.join(lines), written
