"""Compiled temporary memory of the training step vs depth, every registered rule.

  python -m experiments.benchmarks.memory            # depths 2..32, width 256, batch 128 (~6 min)
  python -m experiments.benchmarks.memory --quick    # depths 2,4, width 64, batch 32; writes /tmp

Compile-only (nothing is trained): for an MLP 784-(width x depth)-10 on F-MNIST
shaped inputs, XLA's `memory_analysis().temp_size_in_bytes` of
  * the train step: `rule.step` + Adam update, TrainState donated (as the
    training loop runs it), and
  * `rule.step` alone (the rule's own temporaries, no optimizer),
for every rule in `neurokit.rules.registry` with its constructor's defaults.
The measurement itself is `experiments.benchmarks.mf._temp_bytes` (imported,
not copied); importing mf also brings its `--quick` flag, used here.

Writes experiments/benchmarks/results/memory.{json,md} (quick: /tmp/nk_memory_quick/).
"""
from __future__ import annotations

import json
import time

from absl import app, flags

from experiments.benchmarks import common
from experiments.benchmarks import mf as mf_bench  # defines --quick (shared with this script)
from neurokit.rules import registry

_WIDTH = flags.DEFINE_integer('width', 256, 'Hidden width of the MLP.')
_DEPTHS = flags.DEFINE_list('depths', ['2', '4', '8', '16', '32'], 'Numbers of hidden layers.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Batch size of the compiled step.')
_ONLY = flags.DEFINE_list('only', [], 'Subset of rules (default: every registered rule).')

NAME = 'memory'
WHAT = {'train_step': 'train step (rule.step + Adam, state donated)', 'rule_step': 'rule.step alone'}


def measure(rules, depths, width, batch_size):
    rows = []
    for rule in rules:
        for depth in depths:
            t0 = time.perf_counter()
            row = {'rule': rule, 'depth': depth, 'width': width, 'batch_size': batch_size}
            try:
                row['train_step_bytes'] = mf_bench._temp_bytes(rule, depth, width, batch_size, True)
                row['rule_step_bytes'] = mf_bench._temp_bytes(rule, depth, width, batch_size, False)
            except Exception as e:  # one rule failing to compile must not hide the others
                row['error'] = f'{type(e).__name__}: {e}'[:500]
            row['compile_seconds'] = time.perf_counter() - t0
            rows.append(row)
            print(json.dumps(row), flush=True)
    bp = {r['depth']: r for r in rows if r['rule'] == 'bp' and 'error' not in r}
    for r in rows:
        if 'error' not in r and r['depth'] in bp:
            r['train_step_ratio_to_bp'] = r['train_step_bytes'] / bp[r['depth']]['train_step_bytes']
            r['rule_step_ratio_to_bp'] = r['rule_step_bytes'] / bp[r['depth']]['rule_step_bytes']
    return rows


def _mib(b):
    return f'{b / 2**20:.2f}'


def markdown(res):
    depths = res['depths']
    rules = res['rules']
    by = {(r['rule'], r['depth']): r for r in res['rows']}
    lines = ['## Memory vs depth (compiled temporaries, every rule)', '',
             f"- Command: `{res['command']}`", f"- Machine: {res['machine']}",
             f"- Date: {res['date']}", f"- Versions: jax {res['jax']}, python {res['python']}",
             f"- Network: MLP 784-({res['width']} x depth)-10, batch {res['batch_size']}, float32, "
             "each rule with its constructor's defaults; compile only, nothing trained. "
             'Figure: XLA `jax.jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes` '
             '(temporaries only: parameters, optimizer state and the batch are not counted).', '']
    if res.get('quick'):
        lines += ['**Smoke run (--quick): tiny sizes, the numbers mean nothing.**', '']
    for key in ('train_step', 'rule_step'):
        lines += [f'### {WHAT[key]}: MiB (ratio to bp)', '',
                  '| rule | ' + ' | '.join(f'depth {d}' for d in depths) + ' |',
                  '|---|' + '---|' * len(depths)]
        for rule in rules:
            cells = []
            for d in depths:
                r = by.get((rule, d))
                if r is None or 'error' in r:
                    cells.append('error' if r else '—')
                else:
                    ratio = r.get(f'{key}_ratio_to_bp')
                    cells.append(_mib(r[f'{key}_bytes'])
                                 + (f' ({ratio:.2f})' if ratio is not None else ''))
            lines.append(f'| {rule} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    errors = [r for r in res['rows'] if 'error' in r]
    if errors:
        lines += ['Compile errors:', ''] + [f"- {r['rule']} depth {r['depth']}: {r['error']}"
                                            for r in errors] + ['']
    growth = {}
    for rule in rules:
        rs = [by.get((rule, d)) for d in (depths[0], depths[-1])]
        if len(depths) > 1 and all(r and 'error' not in r for r in rs):
            growth[rule] = rs[1]['train_step_bytes'] / rs[0]['train_step_bytes']
    if growth:
        flat = [r for r, g in growth.items() if g < 1.5]
        grow = [f'{r} {g:.1f}x' for r, g in growth.items() if g >= 1.5]
        lines += [f'Growth of the train-step temporaries from depth {depths[0]} to {depths[-1]} '
                  f'({depths[-1] / depths[0]:.0f}x the layers): flat (< 1.5x): '
                  f"{', '.join(flat) or 'none'}; growing: {', '.join(grow) or 'none'}. A flat rule "
                  'keeps no activations for a backward pass through the depth. CPU figures: XLA '
                  'may assign buffers differently on a GPU.', '']
    return '\n'.join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}')
    quick = mf_bench._QUICK.value
    depths = [2, 4] if quick else [int(d) for d in _DEPTHS.value]
    width, bs = (64, 32) if quick else (_WIDTH.value, _BATCH.value)
    rules = _ONLY.value or list(registry.RULES)
    if 'bp' not in rules:
        rules = ['bp'] + rules  # the ratios need it
    t0 = time.perf_counter()
    rows = measure(rules, depths, width, bs)
    res = {**common.run_facts('memory', quick), 'width': width, 'batch_size': bs, 'depths': depths, 'rules': rules,
           'wall_seconds': time.perf_counter() - t0, 'rows': rows}
    md = markdown(res)
    common.write(NAME, res, md, quick=quick)
    print(md)


if __name__ == '__main__':
    app.run(main)
