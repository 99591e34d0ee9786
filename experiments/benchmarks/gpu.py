"""GPU speed of every rule vs its backprop twin, and achieved TFLOP/s vs a measured matmul peak.

  python -m experiments.benchmarks.gpu            # on the GPU machine (sized for a 10-min run)
  python -m experiments.benchmarks.gpu --quick    # tiny sizes, any backend (CPU smoke test; /tmp)

Two networks (F-MNIST shaped inputs 28x28x1, 10 classes; synthetic data, since
only the step time matters and the device machine need not hold the data set):
  small: MLP 784-1000-1000-10 float32, batch 128;
  large: MLP 784-(4096 x 8)-10 bfloat16 parameters, batch `--large_batch`.
For each network every registered rule (constructor defaults, Adam 1e-3), plus
`mf+layerwise` (mf with one optimizer step per block inside its pass, as the mf
config runs it), is compiled as one `lax.scan` of `--steps` training steps; then all rules are timed
round-robin for `--repeats` rounds (medians). FLOPs per step come from XLA's cost
analysis of one lowered (pre-optimisation) train step (`common.step_flops`); achieved TFLOP/s = FLOPs x steps / time, set
against the peak of a measured `--matmul_n`-square matmul chain of the same dtype.
Peak device memory (`--peak_rules`, default bp, mf and mf+layerwise): a 16-hidden-layer MLP
(width `--peak_width`, batch `--peak_batch`, float32), one train step with the state
donated (as the loop runs it), each rule in its own process so that the allocator's
peak counter starts clean; the figure is the device's peak bytes during the step
minus the bytes resident before it (state and batch), next to XLA's compiled
`temp_size_in_bytes` on the same device.
Writes experiments/benchmarks/results/gpu.{json,md}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import optax
from absl import app, flags

from experiments.benchmarks import common
from neurokit import models, train
from neurokit.rules import registry

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes: checks the script, not the numbers.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Training steps per timed call.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Interleaved timing rounds.')
_LARGE_BATCH = flags.DEFINE_integer('large_batch', 1024, 'Batch of the 8x4096 bf16 network.')
_MATMUL_N = flags.DEFINE_integer('matmul_n', 8192, 'Size of the square matmuls of the peak.')
_ONLY = flags.DEFINE_list('only', [], 'Subset of rules (default: every registered rule).')
_NETS = flags.DEFINE_list('nets', ['small', 'large'], 'Which networks.')
_PEAK_RULES = flags.DEFINE_list('peak_rules', ['bp', 'mf', 'mf+layerwise'],
                                 'Rules of the peak-memory part (bp first; RULE+layerwise: the '
                                 'rule with layerwise updates).')
_PEAK_WIDTH = flags.DEFINE_integer('peak_width', 1024, 'Width of the 16-layer peak-memory MLP.')
_PEAK_BATCH = flags.DEFINE_list('peak_batch', ['1024', '4096'], 'Batch sizes of the peak-memory part.')
_REFRESH = flags.DEFINE_bool('refresh_flops', False, 'Recount the FLOPs of results/gpu.json (any '
                              'backend) and recompute its TFLOP/s; no timing.')
_PEAK_ONLY = flags.DEFINE_bool('peak_only', False, 'Run only the peak-memory part and merge it into '
                                'the stored gpu.json (the speed figures stay).')
_PEAK_XLA_FLAGS = flags.DEFINE_string(
    'peak_xla_flags', '', 'Extra XLA_FLAGS for the peak-memory processes, a diagnostic (e.g. '
    '--xla_disable_hlo_passes=horizontal_loop_fusion): stored beside the default rows, under '
    'peak_memory_variants, never replacing them.')
_PEAK_CHILD = flags.DEFINE_string('peak_child', '', 'Internal: measure one rule:batch in this process.')
_BUDGET = flags.DEFINE_integer('budget_seconds', 480, 'Compile no further rule after this many '
                               'seconds (each network gets an equal share; rules left out are '
                               'recorded as skipped), so that the run fits a 10-minute device call.')

NAME = 'gpu'
# Timed beside the registered rules: mf as its config runs it (config.layerwise_updates=True).
LAYERWISE_VARIANTS = ('mf+layerwise',)


def nets(quick):
    if quick:
        return {'small': ((32, 32), 'float32', 16), 'large': ((64,) * 3, 'bfloat16', 16)}
    return {'small': ((1000, 1000), 'float32', 128),
            'large': ((4096,) * 8, 'bfloat16', _LARGE_BATCH.value)}


def matmul_peak(n, dtype, repeats=10, chain=8):
    """TFLOP/s of `chain` back-to-back (n x n) @ (n x n) matmuls, median of `repeats`."""
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (n, n), dtype)
    b = jax.random.normal(kb, (n, n), dtype) / jnp.sqrt(n).astype(dtype)

    @jax.jit
    def f(a, b):
        for _ in range(chain):
            a = a @ b
        return a
    jax.block_until_ready(f(a, b))
    t = common.median_time(lambda: jax.block_until_ready(f(a, b)), repeats)
    return 2 * n ** 3 * chain / t / 1e12


def _rates(net):
    """Achieved TFLOP/s and fraction of the matmul peak from FLOPs and step times."""
    for o in net['rules'].values():
        if o.get('flops_per_step') and o.get('step_seconds'):
            o['tflops'] = o['flops_per_step'] / o['step_seconds'] / 1e12
            o['fraction_of_peak'] = o['tflops'] / net['peak_tflops'] if net['peak_tflops'] else None


def refresh_flops():
    """Recounts the FLOPs of results/gpu.json's steps with `common.step_flops` (any backend) and
    recomputes TFLOP/s from the recorded step times; the times are not touched."""
    res = common.load(NAME)
    for net in res['nets'].values():
        for r, o in net['rules'].items():
            if 'error' not in o:
                o['flops_per_step'] = common.step_flops(r, tuple(net['hidden']), net['dtype'],
                                                        net['batch_size'])
        _rates(net)
    res['flops_recounted'] = common.run_facts(NAME, False)['command']
    res['flops_recounted_on'] = common.machine()
    common.write(NAME, res, markdown(res))


def peak_only():
    """The peak-memory part alone, merged into the stored gpu.json (speed figures kept); with
    `--peak_xla_flags` the rows go under `peak_memory_variants[flags]` beside the default ones."""
    if jax.devices()[0].platform == 'cpu':
        sys.exit('gpu.py --peak_only: no GPU here (the CPU client keeps no peak counter)')
    res = common.load(NAME)
    rows = peak_memory(_PEAK_RULES.value, _PEAK_WIDTH.value, _PEAK_BATCH.value,
                       _PEAK_XLA_FLAGS.value)
    facts = common.run_facts(NAME, False)
    if _PEAK_XLA_FLAGS.value:
        res.setdefault('peak_memory_variants', {})[_PEAK_XLA_FLAGS.value] = {
            'rows': rows, 'command': facts['command'], 'date': facts['date']}
    else:
        res.update(peak_memory=rows, peak_memory_command=facts['command'],
                   peak_memory_date=facts['date'])
    common.write(NAME, res, markdown(res))


def setup(rule_name, hidden, dtype, batch, steps):
    """(timed call, FLOPs of one train step, compile seconds)."""
    run, rule, opt, state, x, y, compile_s = common.synthetic_epoch(rule_name, hidden, dtype,
                                                                   batch, steps)
    flops = common.lowered_flops(jax.jit(train.make_train_step(rule, opt)).lower(
        state, {'x': x[:batch], 'y': y[:batch]}))
    run()  # warm-up
    return run, flops, compile_s


def measure_net(name, hidden, dtype, batch, rules, steps, repeats, peak, deadline):
    calls, out = {}, {}
    for r in rules:
        if time.perf_counter() > deadline:
            out[r] = {'error': 'skipped: --budget_seconds reached before this rule was compiled'}
            continue
        try:
            calls[r], flops, cs = setup(r, hidden, dtype, batch, steps)
            out[r] = {'flops_per_step': flops, 'compile_seconds': cs}
        except Exception as e:  # one rule failing must not hide the others
            out[r] = {'error': f'{type(e).__name__}: {e}'[:500]}
        print(f'  {name} {r}: {out[r]}', flush=True)
    times = common.interleaved(calls, repeats)
    for r, t in times.items():
        o = out[r]
        o['step_seconds'] = t / steps
        o['samples_per_second'] = batch * steps / t
    if 'bp' in times:
        for r in times:
            out[r]['ratio_to_bp'] = times[r] / times['bp']
    label = f"{'x'.join(map(str, hidden)) if len(set(hidden)) > 1 else f'{len(hidden)}x{hidden[0]}'} {dtype}"
    net = {'label': label, 'hidden': list(hidden), 'dtype': dtype, 'batch_size': batch,
           'steps_per_call': steps, 'repeats': repeats, 'peak_tflops': peak, 'rules': out}
    _rates(net)
    return net


PEAK_DEPTH = 16


def peak_child(spec, width):
    """One rule's peak device bytes during one donated train step (run in a fresh process)."""
    name, batch = spec.split(':')
    rule_name, layerwise = common.rule_variant(name)
    batch = int(batch)
    dev = jax.local_devices()[0]
    model = models.build('mlp', (28, 28, 1), 10, hidden=(width,) * PEAK_DEPTH)
    rule = registry.build(rule_name, model)
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt, layerwise)
    data = {'x': jax.random.uniform(jax.random.PRNGKey(1), (batch, 28, 28, 1)),
            'y': jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)}
    step = jax.jit(train.make_train_step(rule, opt), donate_argnums=0).lower(state, data).compile()
    jax.block_until_ready((state, data))
    before = dev.memory_stats()
    state, metrics = step(state, data)
    jax.block_until_ready((state, metrics))
    after = dev.memory_stats()
    return {'rule': name, 'batch_size': batch, 'width': width, 'hidden_layers': PEAK_DEPTH,
            'resident_bytes': before['bytes_in_use'],
            'peak_before_bytes': before['peak_bytes_in_use'],
            'peak_bytes': after['peak_bytes_in_use'],
            # the step's own extra memory; exact when the step set a new peak
            'step_peak_bytes': after['peak_bytes_in_use'] - before['bytes_in_use'],
            'step_set_peak': after['peak_bytes_in_use'] > before['peak_bytes_in_use'],
            'xla_temp_bytes': step.memory_analysis().temp_size_in_bytes}


def peak_memory(rules, width, batches, xla_flags=''):
    """Runs `peak_child` for each rule and batch in its own process; ratios to bp."""
    rows = []
    # no preallocation, and no gemm autotuning: its scratch buffers at compile time would set
    # the process's peak before the step runs
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE='false',
               XLA_FLAGS=' '.join(filter(None, [os.environ.get('XLA_FLAGS', ''),
                                                '--xla_gpu_autotune_level=0', xla_flags])))
    for batch in batches:
        for r in rules:
            cmd = [sys.executable, '-m', 'experiments.benchmarks.gpu', f'--peak_child={r}:{batch}',
                   f'--peak_width={width}']
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith('{')]
            row = json.loads(lines[-1]) if p.returncode == 0 and lines else {
                'rule': r, 'batch_size': int(batch), 'error': (p.stderr or p.stdout)[-500:]}
            rows.append(row)
            print('  peak', row, flush=True)
    for row in rows:
        base = next((b for b in rows if b['rule'] == 'bp' and b['batch_size'] == row['batch_size']
                     and 'error' not in b), None)
        if base and 'error' not in row:
            row['step_peak_ratio_to_bp'] = row['step_peak_bytes'] / base['step_peak_bytes']
            row['xla_temp_ratio_to_bp'] = row['xla_temp_bytes'] / base['xla_temp_bytes']
    return rows


def _peak_table(rows):
    lines = ['| rule | width | batch | step peak MiB | / bp | XLA temp MiB | / bp |',
             '|---|---|---|---|---|---|---|']
    for o in rows:
        if 'error' in o:
            lines.append(f"| {o['rule']} | | {o['batch_size']} | error: {o['error'][-120:]} | | | |")
            continue
        mark = '' if o['step_set_peak'] else ' (upper bound)'
        lines.append(f"| {o['rule']} | {o['width']} | {o['batch_size']} | "
                     f"{o['step_peak_bytes'] / 2**20:.1f}{mark} | "
                     f"{o.get('step_peak_ratio_to_bp', float('nan')):.2f} | "
                     f"{o['xla_temp_bytes'] / 2**20:.1f} | "
                     f"{o.get('xla_temp_ratio_to_bp', float('nan')):.2f} |")
    return lines + ['']


def markdown(res):
    lines = ['## GPU: speed of every rule vs its backprop twin, achieved TFLOP/s', '',
             f"- Command: `{res['command']}`", f"- Machine: {res['machine']}",
             f"- Date: {res['date']}", f"- Versions: jax {res['jax']}, python {res['python']}", '']
    if res.get('quick'):
        lines += ['**Smoke run (--quick): tiny sizes, the numbers mean nothing.**', '']
    lines += ['Measured matmul peak (chain of square matmuls, median): '
              + ', '.join(f'{k} {v:.1f} TFLOP/s' for k, v in res['peak_tflops'].items()) + '.', '',
              'Synthetic inputs (28x28x1, 10 classes); each rule with its constructor\'s defaults and '
              'Adam; one compiled scan of the steps per call, rules timed round-robin, medians. '
              'FLOPs per step: XLA cost analysis of one lowered (pre-optimisation) train step.'
              + (f" FLOPs recounted on {res['flops_recounted_on']} by `{res['flops_recounted']}` "
                 '(the times are the GPU run\'s).' if res.get('flops_recounted') else ''), '']
    for key, n in res['nets'].items():
        lines += [f"### {n['label']}, batch {n['batch_size']} ({n['steps_per_call']} steps per call, "
                  f"{n['repeats']} rounds)", '',
                  '| rule | ms/step | samples/s | time / BP | GFLOP/step | TFLOP/s | of peak |',
                  '|---|---|---|---|---|---|---|']
        for r, o in n['rules'].items():
            if 'error' in o:
                lines.append(f"| {r} | error: {o['error'][:120]} | | | | | |")
                continue
            g = o.get('flops_per_step')
            lines.append(f"| {r} | {1e3 * o['step_seconds']:.3f} | {o['samples_per_second']:.0f} | "
                         f"{o.get('ratio_to_bp', float('nan')):.2f} | "
                         f"{g / 1e9 if g else float('nan'):.2f} | {o.get('tflops', float('nan')):.2f} | "
                         f"{100 * (o.get('fraction_of_peak') or float('nan')):.1f} % |")
        lines.append('')
    if res.get('peak_memory'):
        lines += [f'### Peak device memory of one train step: {PEAK_DEPTH}-hidden-layer MLP, float32', '',
                  'Each rule in its own process (the allocator\'s peak starts clean), state donated; '
                  '"step peak" = device peak bytes during the step minus the bytes resident before '
                  'it (parameters, optimizer state, batch); "XLA temp" = compiled '
                  '`memory_analysis().temp_size_in_bytes` on this device. Gemm autotuning is off in '
                  'these processes (its compile-time scratch buffers would otherwise set the peak '
                  'before the step runs).'
                  + (f" Measured by `{res['peak_memory_command']}` ({res.get('peak_memory_date', '')})."
                     if res.get('peak_memory_command') else ''), '',
                  ] + _peak_table(res['peak_memory'])
    for flags_, v in res.get('peak_memory_variants', {}).items():
        lines += [f'With `XLA_FLAGS={flags_}` added (a diagnostic; `{v["command"]}`, {v["date"]}):',
                  ''] + _peak_table(v['rows'])
    return '\n'.join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}')
    if _PEAK_CHILD.value:
        print(json.dumps(peak_child(_PEAK_CHILD.value, _PEAK_WIDTH.value)))
        return
    if _REFRESH.value:
        return refresh_flops()
    if _PEAK_ONLY.value:
        return peak_only()
    quick = _QUICK.value
    if not quick and jax.devices()[0].platform == 'cpu':
        sys.exit('gpu.py: no GPU here (the 8x4096 network would take hours on CPU); use --quick '
                 'for a smoke test')
    steps, repeats = (3, 2) if quick else (_STEPS.value, _REPEATS.value)
    rules = _ONLY.value or list(registry.RULES) + list(LAYERWISE_VARIANTS)
    if 'bp' not in rules:
        rules = ['bp'] + rules
    t0 = time.perf_counter()
    n = 256 if quick else _MATMUL_N.value
    peaks = {d: matmul_peak(n, jnp.dtype(d)) for d in ('bfloat16', 'float32')}
    print('peaks', peaks, flush=True)
    res = {**common.run_facts('gpu', quick), 'platform': jax.devices()[0].platform, 'matmul_n': n,
           'peak_tflops': peaks, 'nets': {}}
    chosen = {k: v for k, v in nets(quick).items() if k in _NETS.value}
    for i, (name, (hidden, dtype, batch)) in enumerate(chosen.items()):
        # each network may compile until its share of the budget is spent
        deadline = t0 + _BUDGET.value * (i + 1) / len(chosen)
        res['nets'][name] = measure_net(name, hidden, dtype, batch, rules, steps, repeats,
                                        peaks[dtype], deadline)
    if jax.devices()[0].platform != 'cpu':  # the CPU client keeps no peak counter
        res['peak_memory'] = peak_memory(_PEAK_RULES.value, 64 if quick else _PEAK_WIDTH.value,
                                         [32] if quick else _PEAK_BATCH.value)
    res['wall_seconds'] = time.perf_counter() - t0
    md = markdown(res)
    common.write(NAME, res, md, quick=quick)
    print(md)


if __name__ == '__main__':
    app.run(main)
