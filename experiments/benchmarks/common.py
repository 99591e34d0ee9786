"""What every benchmark shares: machine facts, timing, result files."""
from __future__ import annotations

import collections
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

import jax

RESULTS = os.path.join(os.path.dirname(__file__), 'results')


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    dev = jax.devices()[0]
    if dev.platform == 'cpu':
        return f'{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU'
    return f'{dev.device_kind} ({dev.platform})'


def header(command: str) -> str:
    """Markdown lines: command, machine, date, versions."""
    today = datetime.date.today().isoformat()
    return (f'- Command: `{command}`\n- Machine: {machine()}\n- Date: {today}\n'
            f'- Versions: jax {jax.__version__}, python {platform.python_version()}\n')


def median_time(fn, repeats: int) -> float:
    """Median wall time of `fn()` (which must block until its result is ready)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict, repeats: int) -> dict:
    """Median time of each callable, measured round-robin so that load on a shared
    machine hits every contender alike."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def run_facts(module: str, quick: bool) -> dict:
    """The facts every results JSON starts with: command, machine, versions, date."""
    return {'command': ' '.join([f'python -m experiments.benchmarks.{module}'] + sys.argv[1:]),
            'machine': machine(), 'jax': jax.__version__, 'python': platform.python_version(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'quick': quick}


def load(name: str) -> dict:
    """results/<name>.json, or {} if absent (parts that were not re-run keep their figures)."""
    path = os.path.join(RESULTS, f'{name}.json')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write(name: str, payload: dict, markdown: str, quick: bool = False) -> None:
    """Writes results/<name>.json and results/<name>.md (`quick`: under /tmp/nk_<name>_quick,
    so a smoke run never replaces a real figure)."""
    out = os.path.join(tempfile.gettempdir(), f'nk_{name}_quick') if quick else RESULTS
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f'{name}.json'), 'w') as f:
        json.dump(payload, f, indent=2)
        f.write('\n')
    with open(os.path.join(out, f'{name}.md'), 'w') as f:
        f.write(markdown.rstrip() + '\n')


def fresh_workdir(tag: str) -> str:
    """A new, empty workdir under the system temp folder."""
    return tempfile.mkdtemp(prefix=f'nk-{tag}-')


def train_curve(config, x_tr, y_tr, x_ev, y_ev) -> list:
    """Trains `config` (num_seeds vmapped members, keys seed + i as in a run) on (x_tr, y_tr);
    returns the eval accuracy per epoch on (x_ev, y_ev): one list of member values per epoch."""
    return train_curves(config, x_tr, y_tr, x_ev, y_ev)['']


def train_curves(config, x_tr, y_tr, x_ev, y_ev, eval_variants=None) -> dict:
    """As `train_curve`, and also evaluates the same trained members with the `predict` of
    each `eval_variants[name]` config (same training, another prediction rule, e.g. MF's
    `prediction='combine'`). Returns `{'': curve, name: curve, ...}`."""
    import jax.numpy as jnp
    import numpy as np
    from neurokit import data as data_lib
    from neurokit.train import loop
    from neurokit.experiment.run import build as build_run
    from neurokit.train.state import init_state
    ds = data_lib.Dataset('val', np.asarray(x_tr), np.asarray(y_tr), np.asarray(x_ev),
                          np.asarray(y_ev), 10)
    model, rule, optimizer = build_run(config, ds)
    rules = {'': rule, **{k: build_run(c, ds)[1] for k, c in (eval_variants or {}).items()}}
    keys = jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(config.num_seeds)])
    state = jax.jit(jax.vmap(lambda k: init_state(k, model, rule, optimizer)))(keys)
    epoch_fn = jax.jit(jax.vmap(loop.make_epoch(rule, optimizer, config.batch_size),
                                (0, None, None, None)), donate_argnums=0)
    eval_fns = {k: jax.jit(jax.vmap(loop.make_evaluate(r, config.eval_batch_size),
                                    (0, 0, None, None))) for k, r in rules.items()}
    x_tr, y_tr, x_ev, y_ev = map(jnp.asarray, (x_tr, y_tr, x_ev, y_ev))
    curves = {k: [] for k in rules}
    for epoch in range(config.epochs):
        state, _ = epoch_fn(state, x_tr, y_tr, epoch)
        for k, fn in eval_fns.items():
            curves[k].append(np.asarray(fn(state.params, state.rule_state, x_ev, y_ev)).tolist())
    return curves


def parse_overrides(text):
    """'a.b=1,c=x' -> {'a.b': '1', 'c': 'x'} (values stay strings until `apply_overrides`)."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(','))):
        if '=' not in item:
            raise ValueError(f'override {item!r} must be KEY=VALUE')
        k, v = item.split('=', 1)
        out[k.strip()] = v.strip()
    return out


def apply_overrides(config, overrides):
    """Sets dotted keys of `config`; a string value (from a flag) is converted to the type the
    key already has, any other value is set as it is. An unknown key is an error, as on the
    command line."""
    for key, value in overrides.items():
        *path, leaf = key.split('.')
        node = config
        for part in path:
            node = node[part]
        if leaf not in node:
            raise ValueError(f'unknown config key {key!r}')
        old = node[leaf]
        if isinstance(value, str) and old is not None and not isinstance(old, str):
            value = value.lower() in ('1', 'true') if isinstance(old, bool) else type(old)(value)
        node[leaf] = value
    return config


def setting_of(key):
    """The '[name=value]...' part of a result key such as 'lenet/dfa@50ep[conv_feedback=channel]'."""
    return key[key.index('['):] if '[' in key else ''


def mean_std(values) -> str:
    vals = [100 * v for v in values]
    mean = statistics.fmean(vals)
    std = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f'{mean:.2f} ± {std:.2f}'


def pick_best(runs: list, rule: str) -> dict:
    """The run of `rule` with the best final validation accuracy (ties: the first)."""
    mine = [r for r in runs if r['rule'] == rule]
    return max(mine, key=lambda r: r['final_val_accuracy'])


def lowered_flops(lowered) -> float | None:
    """FLOPs of one train step from XLA's cost analysis of the lowered (not yet optimised)
    program: the same count on every backend. (The compiled program's analysis on a GPU
    misses matmuls that XLA hands to cuBLAS as custom calls: 3 GFLOP for an ff step that
    runs ~1,000.)"""
    cost = lowered.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get('flops', 0.0)) or None


def rule_variant(spec: str) -> tuple:
    """'mf+layerwise' -> ('mf', True): a rule with layerwise updates; 'bp' -> ('bp', False)."""
    rule_name, plus, what = spec.partition('+')
    if plus and what != 'layerwise':
        raise ValueError(f'unknown rule variant {spec!r}; valid: RULE or RULE+layerwise')
    return rule_name, bool(plus)


def synthetic_epoch(spec: str, hidden: tuple, dtype: str, batch: int, steps: int):
    """A compiled epoch of `steps` Adam steps of rule `spec` (`rule_variant`) on an MLP for
    28x28x1 inputs and 10 classes, on uniform random data.

    Returns:
      `(run, rule, optimizer, state, x, y, compile_seconds)`; `run()` runs the epoch once
      from `state` and blocks until it is done.
    """
    import optax
    from neurokit import models, train
    from neurokit.rules import registry
    rule_name, layerwise = rule_variant(spec)
    model = models.build('mlp', (28, 28, 1), 10, hidden=hidden, dtype=dtype)
    rule = registry.build(rule_name, model)
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt, layerwise)
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.uniform(kx, (steps * batch, 28, 28, 1))
    y = jax.random.randint(ky, (steps * batch,), 0, 10)
    t0 = time.perf_counter()
    epoch = jax.jit(train.make_epoch(rule, opt, batch)).lower(state, x, y, 0).compile()
    compile_s = time.perf_counter() - t0
    return (lambda: jax.block_until_ready(epoch(state, x, y, 0))), rule, opt, state, x, y, compile_s


def lowered_train_step(rule_name: str, hidden: tuple, dtype: str, batch: int,
                       layerwise: bool = False, donate: bool = False, sharding=None):
    """One train step (rule + Adam) of `rule_name` on an MLP for 28x28x1 inputs and 10
    classes, lowered on abstract inputs (nothing is allocated or run).

    Args:
      layerwise: the rule's layerwise step (`init_state(..., layerwise=True)`).
      donate: donate the state, as the training loop does (for memory analysis:
        otherwise XLA parks temporaries in the fresh output buffers).
      sharding: placement of every input (e.g. on a compile-only GPU client); None:
        the default device.

    Returns:
      The `jax.stages.Lowered` step; `.compile()` it for memory analysis.
    """
    import jax.numpy as jnp
    import optax
    from neurokit import models, train
    from neurokit.rules import registry
    model = models.build('mlp', (28, 28, 1), 10, hidden=hidden, dtype=dtype)
    rule = registry.build(rule_name, model)
    opt = optax.adam(1e-3)
    abstract = lambda tree: jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)
    state = abstract(jax.eval_shape(lambda k: train.init_state(k, model, rule, opt, layerwise),
                                    jax.random.PRNGKey(0)))
    data = abstract({'x': jax.ShapeDtypeStruct((batch, 28, 28, 1), jnp.float32),
                     'y': jax.ShapeDtypeStruct((batch,), jnp.int32)})
    step = jax.jit(train.make_train_step(rule, opt), donate_argnums=0 if donate else ())
    return step.lower(state, data)


def step_flops(rule_name: str, hidden: tuple, dtype: str, batch: int) -> float | None:
    """FLOPs of one train step (rule + Adam) of `rule_name` on an MLP for 28x28x1 inputs and
    10 classes (lowering only, nothing runs)."""
    return lowered_flops(lowered_train_step(rule_name, hidden, dtype, batch))


# ---- compiled XLA:GPU programs (gpu_aot.py)

# instructions of the entry computation that launch no kernel
_NO_KERNEL = {'parameter', 'get-tuple-element', 'tuple', 'bitcast', 'constant',
              'opt-barrier', 'after-all', 'add-dependency'}
_INSTR = re.compile(r'\s*(?:ROOT )?%?[\w.\-]+ = .*? ([a-z][a-z\-]*)\(')


def kernel_counts(hlo_text: str) -> dict:
    """Kernels launched by the entry computation of an optimized XLA:GPU program, by kind.

    Kinds: 'gemm' (a fusion or custom call around a matmul), 'loop' (element-wise
    fusions), 'reduce' (reduction and scatter fusions, XLA's kInput), 'triton' (other
    custom fusions, e.g. a softmax), 'copy', and 'other'; plus 'total'.
    """
    entry = re.search(r'^ENTRY .*?^}', hlo_text, re.S | re.M)
    if entry is None:
        raise ValueError('no ENTRY computation in the HLO text')
    counts = collections.Counter()
    for line in entry.group(0).splitlines()[1:-1]:
        m = _INSTR.match(line)
        if m is None or m.group(1) in _NO_KERNEL:
            continue
        op = m.group(1)
        kind = re.search(r'kind=(k\w+)', line)
        if op == 'copy':
            counts['copy'] += 1
        elif 'gemm' in line.split('=', 1)[0] or (op == 'custom-call' and 'gemm' in line):
            counts['gemm'] += 1
        elif op == 'fusion' and kind and kind.group(1) == 'kLoop':
            counts['loop'] += 1
        elif op == 'fusion' and kind and kind.group(1) == 'kInput':
            counts['reduce'] += 1
        elif op == 'fusion' and kind and kind.group(1) == 'kCustom':
            counts['triton'] += 1
        else:
            counts['other'] += 1
    counts['total'] = sum(counts.values())
    return dict(counts)


# ---- profiler traces (gpu_profile.py)

KERNEL_KINDS = ('matmul', 'fusion', 'copy', 'other')


def kernel_kind(name: str) -> str:
    """'matmul', 'fusion', 'copy' or 'other', from a GPU kernel's name."""
    n = name.lower()
    if any(k in n for k in ('gemm', 'xmma', 'cutlass', 'cublas', 'nvjet', 'matmul', 'dot', 'sm90_',
                            'sm80_')):
        return 'matmul'
    if any(k in n for k in ('copy', 'memcpy', 'memset')):
        return 'copy'
    if 'fusion' in n or n.startswith(('loop_', 'input_', 'wrapped_')):
        return 'fusion'
    return 'other'


def device_kernels(trace_events):
    """[(name, microseconds)] of the events on device processes of a Chrome/perfetto trace."""
    procs = {e['pid']: e.get('args', {}).get('name', '') for e in trace_events
             if e.get('ph') == 'M' and e.get('name') == 'process_name'}
    return [(e['name'], float(e.get('dur', 0.0))) for e in trace_events
            if e.get('ph') == 'X' and procs.get(e.get('pid'), '').startswith('/device:')]


def summarize_kernels(kernels, steps: int, top: int) -> dict:
    """Per-step device time, kernel count, time per kind and the `top` kernels by time."""
    total = sum(d for _, d in kernels)
    by_name = collections.defaultdict(lambda: [0, 0.0])
    for name, d in kernels:
        by_name[name][0] += 1
        by_name[name][1] += d
    by_kind = {k: 0.0 for k in KERNEL_KINDS}
    for name, (_, d) in by_name.items():
        by_kind[kernel_kind(name)] += d
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]
    return {'device_us_per_step': total / steps, 'kernels_per_step': len(kernels) / steps,
            'us_per_step_by_kind': {k: v / steps for k, v in by_kind.items()},
            'top': [{'name': n, 'kind': kernel_kind(n), 'calls_per_step': c / steps,
                     'us_per_step': d / steps} for n, (c, d) in ranked]}
