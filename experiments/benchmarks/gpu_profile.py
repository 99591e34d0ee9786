"""Where a GPU train step spends its time: per-kernel device times from a profiler trace.

  python -m experiments.benchmarks.gpu_profile            # on the GPU machine (~1 min)
  python -m experiments.benchmarks.gpu_profile --quick    # tiny sizes, any backend (/tmp)

For each rule of `--rules` (default bp, mf, mf+layerwise: mf with layerwise
updates, as its config runs it) the 8x4096 bf16 MLP of `gpu.py` (batch
`--batch`, Adam) is compiled as one `lax.scan` of `--steps` train steps, run
once to warm up, then once under `jax.profiler.trace(create_perfetto_trace=True)`.
The trace's device events (processes named /device:...) are summed per kernel
name and per kind (matmul, elementwise/reduction fusion, copy, other): device
busy time per step, kernels per step, and the kernels that take the most time.
This is the profile issue #5 asks for to explain MF's step time on the GPU
(0.88x BP for 0.68x the FLOPs in session 5). On a CPU the trace has no device
events and the summary says so.
Writes experiments/benchmarks/results/gpu_profile.{json,md}.
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import tempfile

import jax
from absl import app, flags

from experiments.benchmarks import common

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes: checks the script, not the numbers.')
_RULES = flags.DEFINE_list('rules', ['bp', 'mf', 'mf+layerwise'], 'RULE or RULE+layerwise.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Train steps in the traced call.')
_BATCH = flags.DEFINE_integer('batch', 1024, 'Batch size.')
_TOP = flags.DEFINE_integer('top', 12, 'Kernels listed per rule.')

NAME = 'gpu_profile'


def profile(rule_spec, hidden, dtype, batch, steps, top):
    run = common.synthetic_epoch(rule_spec, hidden, dtype, batch, steps)[0]
    run()  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            run()
        paths = glob.glob(os.path.join(tmp, '**', 'perfetto_trace.json.gz'), recursive=True)
        if not paths:
            return {'rule': rule_spec, 'error': 'the profiler wrote no perfetto trace'}
        with gzip.open(paths[0]) as f:
            trace = json.load(f)
    events = trace['traceEvents'] if isinstance(trace, dict) else trace
    kernels = common.device_kernels(events)
    if not kernels:
        return {'rule': rule_spec, 'error': 'no device events in the trace (CPU, or no CUPTI)'}
    return {'rule': rule_spec, **common.summarize_kernels(kernels, steps, top)}


def markdown(res):
    lines = ['## GPU profile: where a train step spends its device time', '',
             common.header(res['command']).rstrip(), '',
             f"MLP 784-({res['hidden'][0]} x {len(res['hidden'])})-10 {res['dtype']}, batch "
             f"{res['batch_size']}, Adam; one traced call of {res['steps']} steps "
             '(`jax.profiler.trace`), device kernel times summed per kind and per kernel.', '']
    ok = [r for r in res['rules'] if 'error' not in r]
    for r in res['rules']:
        if 'error' in r:
            lines.append(f"- {r['rule']}: not profiled ({r['error']})")
    if ok:
        lines += ['| rule | device µs/step | kernels/step | ' + ' | '.join(f'{k} µs' for k in common.KERNEL_KINDS) + ' |',
                  '|---|---|---|' + '---|' * len(common.KERNEL_KINDS)]
        for r in ok:
            lines.append(f"| {r['rule']} | {r['device_us_per_step']:.0f} | {r['kernels_per_step']:.0f} | "
                         + ' | '.join(f"{r['us_per_step_by_kind'][k]:.0f}" for k in common.KERNEL_KINDS) + ' |')
        for r in ok:
            lines += ['', f"Top kernels of {r['rule']} (µs per step, calls per step):", '']
            lines += [f"- {t['us_per_step']:.1f} µs, {t['calls_per_step']:.0f}x, {t['kind']}: "
                      f"`{t['name'][:90]}`" for t in r['top']]
    return '\n'.join(lines) + '\n'


def main(argv):
    del argv
    quick = _QUICK.value
    hidden, dtype, batch, steps = (((64,) * 3, 'bfloat16', 16, 3) if quick else
                                   ((4096,) * 8, 'bfloat16', _BATCH.value, _STEPS.value))
    rows = []
    for spec in _RULES.value:
        try:
            rows.append(profile(spec, hidden, dtype, batch, steps, _TOP.value))
        except Exception as e:  # noqa: BLE001 - one rule failing must not hide the others
            rows.append({'rule': spec, 'error': f'{type(e).__name__}: {e}'[:300]})
        print(json.dumps(rows[-1])[:400], flush=True)
    res = {**common.run_facts(NAME, quick), 'platform': jax.devices()[0].platform,
           'hidden': list(hidden), 'dtype': dtype, 'batch_size': batch, 'steps': steps,
           'rules': rows}
    md = markdown(res)
    common.write(NAME, res, md, quick)
    print(md)


if __name__ == '__main__':
    app.run(main)
