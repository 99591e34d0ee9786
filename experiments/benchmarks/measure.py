"""How each kind of figure is measured: `KINDS[kind](figures, quick)` -> records.

Every function takes the figures (dicts of `definitions.FIGURES`) that share one
kind and one set of params, measures them in this process (interleaved where they
are compared), and returns one record per figure (`records.make`). `quick` shrinks
every budget to check the code path, not the numbers (the suite then writes its
records to a scratch file, never to results/).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.benchmarks import records as R
from neurokit import data as data_lib
from neurokit import experiment, models, rules, train
from neurokit.experiment.errors import TrainingError
from neurokit.flops import matmul_flops
from neurokit.rules import registry

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peers')


def config_for(rule: str, overrides: dict, quick: bool = False):
    """experiments/configs/<rule>.py with `overrides` (dotted keys), quiet on stderr."""
    import ml_collections
    cfg = ml_collections.ConfigDict(R.file_config(rule))
    cfg.update_from_flattened_dict({'progress': 'off', 'tensorboard': False, **overrides})
    if quick:
        cfg.epochs, cfg.num_seeds = 1, min(cfg.num_seeds, 2)
        cfg.train_limit = 512 if cfg.dataset != 'digits' else 0
        if cfg.model.name == 'mlp':
            cfg.model.hidden = (32,) * len(cfg.model.hidden)
    return cfg


def _run(config, validation=False):
    """experiment.run in a scratch workdir: (summary, the test accuracy in % after each
    epoch, one list of per-seed values per epoch, from its metrics.jsonl); with
    `validation`, the validation accuracy's curve as a third value."""
    workdir = tempfile.mkdtemp(prefix='nkb_')
    try:
        summary = experiment.run(config, workdir)
        with open(os.path.join(workdir, 'metrics.jsonl')) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        curves = [[(np.atleast_1d(m[k]) * 100).tolist() for m in lines]
                  for k in ('test_accuracy',) + (('validation_accuracy',) if validation else ())]
        return (summary, *curves)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _overrides(grid, point) -> dict:
    """A grid point as config overrides; a key 'A+B' sets A and B to the same value (e.g. the
    gradient clip of two optimizer groups)."""
    return {k: v for key, v in zip(grid, point) for k in key.split('+')}


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, timed round-robin so load hits all alike."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _rel(a, b) -> float:
    num = sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    return math.sqrt(num / sum(float(jnp.sum(y ** 2)) for y in jax.tree.leaves(b)))


def _maxrel(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _rules(spec) -> list:
    names = list(registry.RULES) if spec == 'all' else list(spec)
    return ['bp'] + [r for r in names if r != 'bp']


# ------------------------------------------------------------------------- training runs

def train_run(figs, quick):
    """One run per figure of experiments/configs/<rule>.py with its overrides."""
    out = []
    for fig in figs:
        s, curve = _run(config_for(fig['rule'], fig['overrides'], quick))
        accs = np.atleast_1d(s['test_accuracy']) * 100
        out.append(R.make(fig['id'], accs.tolist(), '%', s['config'], wall_s=s['wall_seconds'],
                          extra={'train_seconds': s['train_seconds'],
                                 'compile_seconds': s['compile_seconds']}, curve=curve))
    return out


def select(figs, quick):
    """Each point of the grid trained with the last 10,000 training images held out;
    the record's values are the best point's validation accuracies, its rows every point."""
    import itertools
    out = []
    for fig in figs:
        p = fig['params']
        grid = p['grid']
        rows, best = [], None
        for point in itertools.product(*grid.values()):
            over = {**{k: v for k, v in p.items() if k != 'grid'}, **dict(zip(grid, point)),
                    'validation_examples': 10000, 'num_seeds': max(fig['seeds'], 1)}
            s, _ = _run(config_for(fig['rule'], over, quick))
            val = np.atleast_1d(s['validation_accuracy']) * 100
            rows.append({**dict(zip(grid, point)), 'validation %': round(float(val.mean()), 2)})
            if best is None or val.mean() > best[0].mean():
                best = (val, s['config'])
        out.append(R.make(fig['id'], best[0].tolist(), '%', best[1], rows=rows))
    return out


def select_train(figs, quick):
    """The protocol of a figure with a hyperparameter grid: each grid point trained with one
    seed and `validation_examples` of the training set held out, the point with the best
    validation accuracy trained again with the figure's seeds. The record's values are
    those runs' test accuracies (params `test_at='best_validation'`: each seed's at the
    epoch of its best validation accuracy, early stopping on the held-out split; else after
    the last epoch); its rows every point's validation accuracy."""
    import itertools
    out = []
    for fig in figs:
        grid = fig['params']['grid']
        if not fig['overrides'].get('validation_examples'):
            raise ValueError(f"{fig['id']}: a selection needs validation_examples > 0")
        rows, best = [], None
        for point in itertools.product(*grid.values()):
            over = {**fig['overrides'], **_overrides(grid, point), 'num_seeds': 1}
            try:
                s, _ = _run(config_for(fig['rule'], over, quick))
            except TrainingError as e:  # a setting that diverges loses the selection
                rows.append({**dict(zip(grid, point)), 'validation %': None,
                             'diverged': str(e).split(';')[0]})
                continue
            val = float(np.mean(np.atleast_1d(s['validation_accuracy']))) * 100
            rows.append({**dict(zip(grid, point)), 'validation %': round(val, 2)})
            if best is None or val > best[0]:
                best = (val, point)
        if best is None:
            raise TrainingError(f"{fig['id']}: every point of the grid diverged")
        for row in rows:
            row['picked'] = all(row[k] == v for k, v in zip(grid, best[1]))
        over = {**fig['overrides'], **_overrides(grid, best[1]), 'num_seeds': fig['seeds']}
        s, curve, vcurve = _run(config_for(fig['rule'], over, quick), validation=True)
        accs = (np.atleast_1d(s['test_accuracy']) * 100).tolist()
        extra = {'train_seconds': s['train_seconds'],
                 'picked': {k: float(v) for k, v in zip(grid, best[1])}}
        if fig['params'].get('test_at') == 'best_validation':
            epochs = [int(np.argmax([v[i] for v in vcurve])) for i in range(len(accs))]
            extra.update(last_epoch_test=accs, epochs_tested=[e + 1 for e in epochs])
            accs = [curve[e][i] for i, e in enumerate(epochs)]
        out.append(R.make(fig['id'], accs, '%', s['config'], wall_s=s['wall_seconds'],
                          rows=rows, curve=curve, extra=extra))
    return out


# --------------------------------------------------------------------------- speed

def _epoch_timer(rule_name, net, dtype, batch, steps, ds, overrides=None, flops=False):
    """A compiled scan of `steps` train steps of the rule's config on `net`: an MLP's hidden
    widths, or a dict of config overrides naming a model (`{'model.name': 'vit'}`);
    (timer, config, with `flops` the counted matmul FLOPs of one step, else 0:
    `neurokit.flops.matmul_flops`, each loop's body times its trip count, e.g. ep's 70
    relaxation steps)."""
    net = dict(net) if isinstance(net, dict) else {'model.name': 'mlp',
                                                   'model.hidden': tuple(net)}
    cfg = config_for(rule_name, {**net, 'model.dtype': dtype, 'batch_size': batch,
                                 **(overrides or {})})
    model, rule, opt = experiment.build(cfg, ds)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    n = batch * steps
    x = jnp.asarray(np.resize(ds.x_train, (n,) + ds.x_train.shape[1:]))
    y = jnp.asarray(np.resize(ds.y_train, (n,)))
    compiled = jax.jit(train.make_epoch(rule, opt, batch)).lower(state, x, y, 0).compile()
    count = matmul_flops(train.make_train_step(rule, opt), state,  # a compile for the CPU
                         {'x': x[:batch], 'y': y[:batch]}) if flops else 0
    fn = lambda: jax.block_until_ready(compiled(state, x, y, 0))
    fn()
    return fn, R.normal(cfg), count


def speed(figs, quick):
    """Step time of each rule / its backprop twin on the same model, interleaved medians:
    an MLP of params `hidden`, or the model params `model` names in config overrides
    (`quick_model` with --quick)."""
    p = figs[0]['params']
    steps, repeats = (3, 2) if quick else (p['steps'], p['repeats'])
    if 'model' in p:
        net = p['quick_model'] if quick else p['model']
    else:
        net = (32,) * len(p['hidden']) if quick else p['hidden']
    ds = data_lib.load('fashion_mnist')
    t0 = time.perf_counter()
    timers = {r: _epoch_timer(r, net, p.get('dtype', 'float32'), p['batch'], steps, ds,
                              flops=p.get('flops', False))
              for r in _rules(p['rules'])}
    med = interleaved({r: t[0] for r, t in timers.items()}, repeats)
    rows = [{'rule': r, 'ms/step': round(1e3 * med[r] / steps, 3),
             'samples/s': round(p['batch'] * steps / med[r]), 'time / bp': round(med[r] / med['bp'], 3),
             **({'matmul GFLOP/step': round(timers[r][2] / 1e9, 3),
                 'matmul bound / bp': round(timers[r][2] / timers['bp'][2], 3),
                 'TFLOP/s': round(timers[r][2] * steps / med[r] / 1e12, 2)} if p.get('flops') else {})}
            for r in timers]
    wall = time.perf_counter() - t0
    params = {**p, 'steps': steps, 'repeats': repeats,
              **({'model': net} if 'model' in p else {'hidden': list(net)})}
    out = []
    for fig in figs:
        if fig['rule']:
            out.append(R.make(fig['id'], [med[fig['rule']] / med['bp']], 'x',
                              {'measure': params, 'rule_config': timers[fig['rule']][1]},
                              command=_suite_command(fig), wall_s=wall, rows=rows))
        else:
            out.append(R.make(fig['id'], [med[r] / med['bp'] for r in timers], 'x',
                              {'measure': params}, command=_suite_command(fig), wall_s=wall,
                              rows=rows))
    return out


def scan_loop(figs, quick):
    """Samples/s of one F-MNIST epoch: the scanned epoch vs the same jitted step from Python."""
    cfg = config_for('bp', {'train_limit': 2048} if quick else {})
    ds = data_lib.load('fashion_mnist')
    model, rule, opt = experiment.build(cfg, ds)
    n = cfg.train_limit or len(ds.x_train)
    x, y, bs = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n]), cfg.batch_size
    state0 = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    epoch = jax.jit(train.make_epoch(rule, opt, bs))
    step = jax.jit(train.make_train_step(rule, opt))
    order = np.asarray(train.epoch_order(state0.key, 0, n, bs))

    def scan():
        jax.block_until_ready(epoch(state0, x, y, 0))

    def loop():
        s = state0
        for idx in order:  # the batch gather stays on the device, as in the scan
            s, _ = step(s, {'x': x[idx], 'y': y[idx]})
        jax.block_until_ready(s)

    scan(), loop()
    reps = 1 if quick else figs[0]['params']['repeats']
    t = interleaved({'scan': scan, 'loop': loop}, reps)
    return [R.make(figs[0]['id'], [t['loop'] / t['scan']], 'x', {'measure': {'repeats': reps},
                   'rule_config': R.normal(cfg)}, command=_suite_command(figs[0]),
                   extra={'scan_samples_per_second': order.size / t['scan'],
                          'loop_samples_per_second': order.size / t['loop']})]


# -------------------------------------------------------------------------- memory

def temp_bytes(rule_name, hidden, batch, dtype='float32', layerwise=None, sharding=None,
               rule_step_only=False):
    """XLA's temporary bytes of one donated train step (rule + Adam), compiled, never run.
    `layerwise` None: as the rule's config file says."""
    cfg = R.file_config(rule_name)
    layerwise = cfg.get('layerwise_updates', False) if layerwise is None else layerwise
    layerwise = layerwise and not rule_step_only  # rule.step alone: the plain rule's
    model = models.build('mlp', (28, 28, 1), 10, hidden=tuple(hidden), dtype=dtype)
    rule = rules.build(rule_name, model, layerwise=layerwise)
    opt = optax.adam(1e-3)
    spec = lambda t: jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), t)
    batch_ = spec({'x': jnp.zeros((batch, 28, 28, 1)), 'y': jnp.zeros((batch,), jnp.int32)})
    key = jax.random.PRNGKey(0)
    state = spec(jax.eval_shape(lambda k: train.init_state(k, model, rule, opt), key))
    if rule_step_only:
        fn, args = jax.jit(rule.step), (state.params, state.rule_state, batch_, spec(key))
    else:  # donated, as the training loop runs it (else XLA parks temporaries in the outputs)
        fn, args = jax.jit(train.make_train_step(rule, opt), donate_argnums=0), (state, batch_)
    return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes


def memory(figs, quick):
    """Compiled temporaries of the train step vs depth (and batch), each rule / bp: one row
    per rule and MiB (ratio) per depth; with `ratio_of`, one row per size and step kind."""
    fig = figs[0]
    p = fig['params']
    depths, width, batches = ((2, 4), 64, (32,)) if quick else (p['depths'], p['width'], p['batches'])
    rows, ratios, matrix, of = [], [], {}, p.get('ratio_of')
    for depth in depths:
        for batch in batches:
            for what, only in (('train step', False), ('rule.step', True)) if of else (('', False),):
                b = {r: temp_bytes(r, (width,) * depth, batch, rule_step_only=only)
                     for r in _rules(p['rules'])}
                if of:
                    ratios.append(b[of] / b['bp'])
                    rows.append({'width': width, 'batch': batch, 'what': what,
                                 f'{of} MiB': round(b[of] / 2**20, 1), 'bp MiB': round(b['bp'] / 2**20, 1),
                                 f'{of}/bp': round(b[of] / b['bp'], 2)})
                    continue
                for r, v in b.items():
                    matrix.setdefault(r, {'rule': r})[f'depth {depth}'] = \
                        f"{v / 2**20:.2f} ({v / b['bp']:.2f})"
                if depth == depths[-1]:
                    ratios = [v / b['bp'] for v in b.values()]
    params = {**p, 'depths': list(depths), 'width': width, 'batches': list(batches)}
    return [R.make(fig['id'], ratios, 'x', {'measure': params}, command=_suite_command(fig),
                   rows=rows or list(matrix.values()))]


def aot_memory(figs, quick):
    """mf (layerwise and not) / bp temporaries of the program compiled for a GPU described by
    a target config, on a compile-only client (needs jax's CUDA plugin, not a GPU)."""
    from jax.experimental import topologies
    fig, p = figs[0], figs[0]['params']
    topo = topologies.get_topology_desc(platform='cuda', topology='1x1x1',
                                        target_config=os.path.join(R.REPO, p['target_config']))
    mesh = topologies.make_mesh(topo=topo, mesh_shape=(1,), axis_names=('x',))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    rows, ratios = [], []
    for batch in (p['batches'][:1] if quick else p['batches']):
        b = {name: temp_bytes(r, (p['width'],) * 16, batch, layerwise=lw, sharding=sharding)
             for name, r, lw in (('bp', 'bp', False), ('mf', 'mf', False), ('mf layerwise', 'mf', True))}
        ratios.append(b['mf layerwise'] / b['bp'])
        rows += [{'rule': k, 'batch': batch, 'temp MiB': round(v / 2**20, 1),
                  '/ bp': round(v / b['bp'], 2)} for k, v in b.items()]
    return [R.make(fig['id'], ratios, 'x', {'measure': p}, command=_suite_command(fig), rows=rows)]


def gpu_peak(figs, quick):
    """Peak device bytes of one donated train step beyond the resident state, each rule and
    batch in a fresh process (the allocator's peak starts clean), / bp."""
    fig, p = figs[0], figs[0]['params']
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE='false',
               XLA_FLAGS=(os.environ.get('XLA_FLAGS', '') + ' --xla_gpu_autotune_level=0').strip())
    rows, ratios = [], []
    for batch in p['batches']:
        peak = {}
        for r in p['rules']:
            code = (f'from experiments.benchmarks.measure import _peak_child; '
                    f'_peak_child({r!r}, {p["width"]}, {batch})')
            res = subprocess.run([sys.executable, '-c', code], env=env, cwd=R.REPO,
                                 capture_output=True, text=True, check=True, timeout=600)
            peak[r] = json.loads(res.stdout.strip().splitlines()[-1])
        for r, v in peak.items():
            ratio = v['step_peak'] / peak['bp']['step_peak']
            ratios += [ratio] if r != 'bp' else []
            rows.append({'rule': r, 'batch': batch, 'step peak MiB': round(v['step_peak'] / 2**20, 1),
                         '/ bp': round(ratio, 2), 'XLA temp MiB': round(v['temp'] / 2**20, 1)})
    return [R.make(fig['id'], ratios, 'x', {'measure': p}, command=_suite_command(fig), rows=rows)]


def _peak_child(rule_name, width, batch):
    dev = jax.local_devices()[0]
    cfg = R.file_config(rule_name)
    model = models.build('mlp', (28, 28, 1), 10, hidden=(width,) * 16)
    rule = rules.build(rule_name, model, layerwise=cfg.get('layerwise_updates', False))
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    b = {'x': jax.random.uniform(jax.random.PRNGKey(1), (batch, 28, 28, 1)),
         'y': jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)}
    step = jax.jit(train.make_train_step(rule, opt), donate_argnums=0).lower(state, b).compile()
    jax.block_until_ready((state, b))
    before = dev.memory_stats()['bytes_in_use']
    jax.block_until_ready(step(state, b))
    print(json.dumps({'step_peak': dev.memory_stats()['peak_bytes_in_use'] - before,
                      'temp': step.memory_analysis().temp_size_in_bytes}))


# ------------------------------------------------------------------------- oracles

def pc_oracle(figs, quick):
    """Z-IL (fixed prediction, T = layers, step 1) vs backprop; energy-nudged PC as β shrinks."""
    ds = data_lib.load('fashion_mnist')
    model = models.build('mlp', ds.input_shape, 10, hidden=(128, 128, 128), activation='gelu')
    params = model.init(jax.random.PRNGKey(0))
    batch = {'x': jnp.asarray(ds.x_train[:128]), 'y': jnp.asarray(ds.y_train[:128])}
    key = jax.random.PRNGKey(1)
    step = lambda rule: jax.jit(rule.step)(params, rule.init(key, params), batch, key)[0]
    out = []
    for fig in figs:
        rows, values = [], []
        for energy, loss in (('gaussian', 'mse'), ('cross_entropy', 'cross_entropy')):
            g_bp = rules.build('bp', model, loss=loss).step(params, None, batch, key)[0]
            if fig['params']['part'] == 'zil':
                values.append(_rel(step(rules.build('pc', model, inference_steps=len(model.layers),
                                                    inference_lr=1.0, output_energy=energy,
                                                    fixed_prediction=True)), g_bp))
                rows.append({'energy': energy, 'rel. error': f'{values[-1]:.2e}'})
                continue
            for nudge in ('energy', 'target'):
                errs = {b: _rel(step(rules.build('pc', model, inference_steps=50 if quick else 500,
                                                 inference_lr=0.1, output_energy=energy, beta=b,
                                                 nudge=nudge)), g_bp) for b in (1.0, 0.1, 0.01, 0.001)}
                rows.append({'energy / nudge': f'{energy}/{nudge}',
                             **{f'β={b}': float(f'{e:.3g}') for b, e in errs.items()}})
                values += [errs[0.001] / errs[1.0]] if nudge == 'energy' else []
        out.append(R.make(fig['id'], values, fig['unit'], {'measure': fig['params']},
                          command=_suite_command(fig), rows=rows))
    return out


def fa_oracle(figs, quick):
    """fa with B = Wᵀ and dfa (one hidden layer) with B = W₂ᵀ against backprop; usf against
    fa with B = sign(W) set by hand."""
    from neurokit.rules import fa as fa_lib
    ds = data_lib.load('fashion_mnist')
    key = jax.random.PRNGKey(0)
    batch = {'x': jnp.asarray(ds.x_train[:128]), 'y': jnp.asarray(ds.y_train[:128])}
    checks = {}
    for name, model in (('mlp', models.build('mlp', (28, 28, 1), 10, hidden=(1000, 1000))),
                        ('lenet', models.build('lenet', (28, 28, 1), 10))):
        params = model.init(key)
        true = rules.build('bp', model).step(params, None, batch, key)[0]
        rule = fa_lib.fa(model)
        state = fa_lib.with_feedback(rule.init(key, params), [p['w'] for p in params['layers'][1:]])
        checks[f'fa_eq_bp_{name}'] = _maxrel(rule.step(params, state, batch, key)[0], true)
        signs = [jnp.sign(p['w']) for p in params['layers'][1:]]
        usf = fa_lib.usf(model, scaled=False).step(params, fa_lib.EmptyState(), batch, key)[0]
        checks[f'usf_eq_fa_sign_{name}'] = _maxrel(
            usf, rule.step(params, fa_lib.with_feedback(state, signs), batch, key)[0])
    model = models.build('mlp', (28, 28, 1), 10, hidden=(1000,))
    params = model.init(key)
    rule = fa_lib.dfa(model)
    state = fa_lib.with_feedback(rule.init(key, params), [params['layers'][1]['w']])
    checks['dfa_eq_bp_mlp1'] = _maxrel(rule.step(params, state, batch, key)[0],
                                       rules.build('bp', model).step(params, None, batch, key)[0])
    return [R.make(figs[0]['id'], list(checks.values()), 'rel. error', {'measure': {}},
                   command=_suite_command(figs[0]),
                   rows=[{'check': k, 'max rel. diff': f'{v:.2e}'} for k, v in checks.items()])]


# ------------------------------------------------------------------------ parallel

def seeds(figs, quick):
    """Wall time of one epoch of N vmapped bp seeds / 1 seed (MLP 2x1000, F-MNIST)."""
    fig, p = figs[0], figs[0]['params']
    members, reps = (2, 1) if quick else (p['members'], p['repeats'])
    ds = data_lib.load('fashion_mnist')
    n = 6000 if quick else len(ds.x_train)
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    cfg = config_for('bp', {})
    model, rule, opt = experiment.build(cfg, ds)
    epoch = jax.vmap(train.make_epoch(rule, opt, cfg.batch_size), (0, None, None, None))
    fns = {}
    for m in (1, members):
        keys = jnp.stack([jax.random.PRNGKey(i) for i in range(m)])
        state = jax.jit(jax.vmap(lambda k: train.init_state(k, model, rule, opt)))(keys)
        c = jax.jit(epoch).lower(state, x, y, 0).compile()
        fns[m] = (lambda c, s: lambda: jax.block_until_ready(c(s, x, y, 0)))(c, state)
    t = interleaved(fns, reps)
    return [R.make(fig['id'], [t[members] / t[1]], 'x',
                   {'measure': {**p, 'members': members, 'repeats': reps, 'n_train': n},
                    'rule_config': R.normal(cfg)}, command=_suite_command(fig),
                   extra={'seconds_1': t[1], f'seconds_{members}': t[members]})]


def traces(figs, quick):
    """Traces of the epoch program over several epochs: a vmapped sweep and a sharded run."""
    from neurokit.parallel import mesh as M, sweep
    fig = figs[0]
    epochs = fig['params']['epochs']
    ds = data_lib.load('digits')
    x, y = jnp.asarray(ds.x_train[:512]), jnp.asarray(ds.y_train[:512])
    model = models.build('mlp', ds.input_shape, 10, hidden=(32,))
    res = sweep.train(model, lambda hp: (rules.build('bp', model), optax.adam(hp['lr'])),
                      sweep.grid(lr=[1e-3, 1e-2]), x, y, epochs=epochs, batch_size=64)
    rule, opt, count = rules.build('bp', model), optax.adam(1e-3), []

    def counted(*args):
        count.append(1)
        return rule.step(*args)

    mesh = M.make_mesh()
    epoch = M.sharded_epoch(rule._replace(step=counted), opt, 64, mesh)
    state = M.put_state(train.init_state(jax.random.PRNGKey(0), model, rule, opt), mesh)
    xs, ys = M.put_dataset(x, y, mesh)
    for e in range(epochs):
        state, _ = epoch(state, xs, ys, e)
    return [R.make(fig['id'], [res.traces, len(count)], 'traces', {'measure': fig['params']},
                   command=_suite_command(fig),
                   rows=[{'program': 'vmapped sweep epoch', 'traces': res.traces},
                         {'program': 'sharded epoch', 'traces': len(count)}])]


def _harness(module, args, env_extra):
    out = os.path.join(tempfile.mkdtemp(prefix='nkb_'), 'out.json')
    env = dict(os.environ, **env_extra)
    subprocess.run([sys.executable, '-m', module, *args, f'--out={out}'], env=env, cwd=R.REPO,
                   check=True, capture_output=True, text=True)
    with open(out) as f:
        return json.load(f)


def _declared(figs, diffs: dict, rows: list) -> list:
    """The equality figures of `diffs` (`{rule: [diff, ...]}`): a figure with a target in
    absolute difference takes the rules that declare the default tolerance
    (`multihost_tolerance`, 1e-5) and leaves out those that declare a looser one with
    their reason in the rule's file; a figure in 'diff / tolerance' takes every rule's
    differences over its declared tolerance."""
    tol = {r: registry.capabilities(r).multihost_tolerance for r in diffs}
    for row in rows:
        row['declared tolerance'] = f"{tol[row['rule']]:.0e}"
    out = []
    for fig in figs:
        if fig['unit'] == 'diff / tolerance':
            values = [d / tol[r] for r, ds in diffs.items() for d in ds]
        else:
            values = [d for r, ds in diffs.items() if tol[r] <= fig['target'] for d in ds]
        out.append(R.make(fig['id'], values, fig['unit'], {'measure': fig['params']},
                          command=_suite_command(fig), rows=rows))
    return out


def equality(figs, quick):
    """Max |param diff| of the sharded, FSDP, pmap and pipeline paths vs one device, every rule
    (the harness in tests/parallel/equivalence.py, on 8 host devices)."""
    fig = figs[0]
    res = _harness('tests.parallel.equivalence', ['--rules=' + ('bp,ff' if quick else 'all'),
                                                  f"--steps={fig['params']['steps']}"],
                   {'XLA_FLAGS': '--xla_force_host_platform_device_count=8', 'JAX_PLATFORMS': 'cpu'})
    rows, diffs = [], {}
    for rule, cells in sorted(res['rules'].items()):
        row = {'rule': rule}
        for path in ('sharded', 'fsdp', 'pmap', 'pipeline'):
            c = cells.get(path, {})
            row[path] = f"{c['diff']:.1e}" if 'diff' in c else 'n/a'
            diffs.setdefault(rule, []).extend([c['diff']] if 'diff' in c else [])
        rows.append(row)
    return _declared(figs, diffs, rows)


def multihost(figs, quick):
    """Max |param diff| of 2 processes vs 1, every rule (tests/parallel/multihost_check.py)."""
    res = _harness('tests.parallel.multihost_check', ['--rules=' + ('bp' if quick else 'all')],
                   {'JAX_PLATFORMS': 'cpu'})
    rows = [{'rule': r, '2 processes vs 1': f"{c['diff']:.1e}"}
            for r, c in sorted(res['rules'].items())]
    return _declared(figs, {r: [c['diff']] for r, c in res['rules'].items()}, rows)


def checkpoint(figs, quick):
    """Time inside the saves / rest of the training loop, a save every epoch (bp, 2x1000)."""
    fig, p = figs[0], figs[0]['params']
    over = {'epochs': 1 if quick else p['epochs'], 'checkpoint_every': 1,
            **({'train_limit': 6000} if quick else {})}
    direct, configs = [], None
    for _ in range(1 if quick else p['repeats']):
        s, _ = _run(config_for('bp', over))
        direct.append(100 * s['checkpoint_seconds'] / (s['loop_seconds'] - s['checkpoint_seconds']))
        configs = s['config']
    return [R.make(fig['id'], direct, '% overhead', configs, wall_s=s['wall_seconds'],
                   extra={'seconds_per_save': s['checkpoint_seconds'] / over['epochs']})]


def _pod_overrides(p, quick) -> dict:
    """The bp config's overrides of the pod figures' runs: calls of K steps, no epoch
    checkpoints, their MLP and batch (quick: one epoch of 6,000 images)."""
    return {'epochs': 1 if quick else p['epochs'], 'checkpoint_every': 0,
            'steps_per_call': p['steps_per_call'], 'model.hidden': tuple(p['hidden']),
            'batch_size': p['batch'], **({'train_limit': 6000} if quick else {})}


def async_checkpoints(figs, quick):
    """Training-loop time of a run that saves a mid-epoch checkpoint every N steps in the
    background (`config.async_checkpoints`), over the same run saving only at its end; the
    synchronous saves beside it. bp, the 2x1000 MLP, F-MNIST, calls of K steps, the three
    runs interleaved, medians."""
    p = figs[0]['params']
    base = _pod_overrides(p, quick)
    every = 50 if quick else p['every']
    runs = {'no mid-epoch saves': {'async_checkpoints': True},
            f'async saves every {every} steps': {'async_checkpoints': True,
                                                  'checkpoint_every_steps': every},
            f'sync saves every {every} steps': {'checkpoint_every_steps': every}}
    loops, saves, config = {k: [] for k in runs}, {}, None
    for _ in range(1 if quick else p['repeats']):
        for name, over in runs.items():
            s, _ = _run(config_for('bp', {**base, **over}))
            loops[name].append(s['loop_seconds'])
            saves[name] = s['checkpoint_seconds']
            config = config or s['config']
    med = {k: statistics.median(v) for k, v in loops.items()}
    none, (a_name, s_name) = med['no mid-epoch saves'], list(runs)[1:]
    rows = [{'run': k, 'loop s (median)': round(v, 3), 'vs no saves': round(v / none, 4),
             'seconds in saves (last run)': round(saves[k], 3)} for k, v in med.items()]
    return [R.make(figs[0]['id'], [med[a_name] / none], figs[0]['unit'], {'measure': p},
                   command=_suite_command(figs[0]), rows=rows,
                   extra={'sync_ratio': med[s_name] / none})]


def host_feed(figs, quick):
    """Training time of a run whose calls take batches each process read on the host
    (`--config.feed=host`: uint8 rows, decoded on the device), over the same run with the
    training set on the device; bp, the 2x1000 MLP, F-MNIST, interleaved, medians."""
    p = figs[0]['params']
    base = _pod_overrides(p, quick)
    train = {'device': [], 'host': []}
    for _ in range(1 if quick else p['repeats']):
        for feed in train:
            s, _ = _run(config_for('bp', {**base, 'feed': feed}))
            train[feed].append(s['train_seconds'])
    med = {k: statistics.median(v) for k, v in train.items()}
    rows = [{'feed': k, 'train s (median)': round(v, 3), 'vs device': round(v / med['device'], 4)}
            for k, v in med.items()]
    return [R.make(figs[0]['id'], [med['host'] / med['device']], figs[0]['unit'],
                   {'measure': p}, command=_suite_command(figs[0]), rows=rows)]


def steps_per_call(figs, quick):
    """An epoch trained in calls of K steps, as the runner does it (`config.steps_per_call`:
    the epoch's order once, then a call, wait for it, fetch its metrics and add them up; the
    state donated), over the one-program epoch; bp, the 2x1000 MLP, F-MNIST, interleaved
    medians in one process."""
    from neurokit.experiment.epochs import MetricSums
    from neurokit.experiment.placement import fetch
    fig, p = figs[0], figs[0]['params']
    ds = data_lib.load('fashion_mnist')
    n = 2048 if quick else p['examples']
    cfg = config_for('bp', {'model.name': 'mlp', 'model.hidden': tuple(p['hidden']),
                            'batch_size': p['batch']})
    model, rule, opt = experiment.build(cfg, ds)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    steps, k = n // p['batch'], min(p['steps_per_call'], n // p['batch'])
    order_fn = jax.jit(lambda key, e: train.epoch_order(key, e, n, p['batch']))
    order = order_fn(state.key, 0)
    progs = {}
    for size in dict.fromkeys((steps, k, steps % k or k)):
        fn = train.make_epoch(rule, opt, p['batch'], nan_policy='stop',
                              steps=None if size == steps else size)
        extra = () if size == steps else (order,)
        # the state donated, as the runner does: a call reuses its buffers
        progs[size] = jax.jit(fn, donate_argnums=0).lower(state, x, y, 0, 0, *extra).compile()
    fresh = jax.jit(lambda s: jax.tree.map(jnp.copy, s))  # both loops start from a copy

    def one_program():
        s, m = progs[steps](fresh(state), x, y, 0, 0)
        jax.block_until_ready(s)
        m = fetch(m)
        MetricSums().add(m, steps - np.asarray(m.pop('guard').skipped), 0.0)

    def in_calls():  # the epoch's order once, then the calls (the runner's loop)
        s, offset, sums, order = fresh(state), 0, MetricSums(), order_fn(state.key, 0)
        while offset < steps:
            size = min(k, steps - offset)
            s, m = progs[size](s, x, y, 0, offset, *(() if size == steps else (order,)))
            jax.block_until_ready(s)
            m = fetch(m)
            sums.add(m, size - np.asarray(m.pop('guard').skipped), 0.0)
            offset += size

    one_program(), in_calls()
    med = interleaved({'one program': one_program, 'calls': in_calls}, 2 if quick else p['repeats'])
    rows = [{'epoch as': name, 'calls': 1 if name == 'one program' else -(-steps // k),
             's/epoch': round(med[name], 3), 'ms/step': round(1e3 * med[name] / steps, 3)}
            for name in med]
    return [R.make(fig['id'], [med['calls'] / med['one program']], fig['unit'],
                   {'measure': p}, command=_suite_command(fig), rows=rows)]


# --------------------------------------------------------------------------- peers

class MissingPeer(RuntimeError):
    """A peer's virtualenv is absent: a setup step, reported in one line, not a bug."""


def _peer_python(name):
    py = os.path.join(R.REPO, '.venvs', name, 'bin', 'python')
    if not os.path.exists(py):
        # each peer pins its own jax or torch, hence a virtualenv of its own
        raise MissingPeer(f'no {name} virtualenv at {py}; docs/benchmarking.md (Peers) gives '
                          'the commands that make it')
    return py


def _fmnist_npz():
    path = os.path.join(tempfile.gettempdir(), 'nkb_fashion_mnist.npz')
    if not os.path.exists(path):
        ds = data_lib.load('fashion_mnist')
        np.savez(path, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    return path


def _pcx_command(p, batches):
    return [_peer_python('pcx'), os.path.join(PEERS, 'pcx_runner.py'), f'--data={_fmnist_npz()}',
            f"--T={p['T']}", '--hidden=128', '--layers=4', '--batch=128', f'--batches={batches}',
            '--act=gelu']


def _pcx(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def pcx(figs, quick):
    """Samples/s of pc and its bp twin (one compiled scan of the batches) and of PCX 0.6.3
    (its own Python loop of a pxf.jit step, in its venv), interleaved, medians."""
    fig, p = figs[0], figs[0]['params']
    batches, reps = (10, 1) if quick else (p['batches'], p['repeats'])
    ds = data_lib.load('fashion_mnist')
    timers = {r: _epoch_timer(r, (128, 128, 128), 'float32', 128, batches, ds,
                              {'model.activation': 'gelu'})[0] for r in ('pc', 'bp')}
    cmd = _pcx_command(p, batches)
    rates = {'pc': [], 'bp': [], 'pcx': []}
    for _ in range(reps):
        for r, fn in timers.items():
            t0 = time.perf_counter()
            fn()
            rates[r].append(128 * batches / (time.perf_counter() - t0))
        rates['pcx'].append(_pcx(cmd)['samples_per_second'])
    med = {k: statistics.median(v) for k, v in rates.items()}
    return [R.make(fig['id'], [med['pc'] / med['pcx']], 'x',
                   {'measure': {**p, 'batches': batches, 'repeats': reps}},
                   command=_suite_command(fig),
                   extra={'samples_per_second': med, 'bp_over_pc_time': med['bp'] / med['pc'],
                          'pcx_command': ' '.join(cmd[1:])})]


def pcx_accuracy(figs, quick):
    """PCX's test accuracy after `batches` training batches at its tuned activity step."""
    fig, p = figs[0], figs[0]['params']
    cmd = _pcx_command(p, 10 if quick else p['batches'])
    res = _pcx(cmd)
    return [R.make(fig['id'], [100 * res['test_accuracy']], '%', {'measure': p},
                   command=_suite_command(fig),
                   extra={'samples_per_second': res['samples_per_second'], 'jax': res['jax'],
                          'pcx_command': ' '.join(os.path.relpath(c, R.REPO) if c.startswith(R.REPO)
                                                  else c for c in cmd)})]


def biotorch(figs, quick):
    """samples/s of BioTorch (its venv) and neurokit on the same MLP, batch, Adam and data."""
    fig, p = figs[0], figs[0]['params']
    steps, reps = (2, 1) if quick else (p['steps'], p['repeats'])
    hidden, batch = (256,) * 7, 128
    ds = data_lib.load('fashion_mnist')
    path = os.path.join(tempfile.gettempdir(), 'nkb_biotorch.npz')
    np.savez(path, x=ds.x_train[:steps * batch], y=ds.y_train[:steps * batch])
    arg = json.dumps({'data': path, 'hidden': hidden, 'batch': batch, 'steps': steps,
                      'repeats': reps, 'modes': list(p['rules']), 'threads': os.cpu_count()})
    res = subprocess.run([_peer_python('biotorch'), os.path.join(PEERS, 'biotorch_runner.py'), arg],
                         capture_output=True, text=True, check=True)
    theirs = json.loads(res.stdout.strip().splitlines()[-1])
    timers = {r: _epoch_timer(r, hidden, 'float32', batch, steps, ds)[0] for r in p['rules']}
    ours = {r: batch * steps / t for r, t in interleaved(timers, reps).items()}
    rows = [{'rule': r, 'BioTorch samples/s': round(theirs[r]), 'neurokit samples/s': round(ours[r]),
             'neurokit / BioTorch': round(ours[r] / theirs[r], 2)} for r in p['rules']]
    return [R.make(fig['id'], [ours[p['report']] / theirs[p['report']]], 'x',
                   {'measure': {**p, 'steps': steps, 'repeats': reps}},
                   command=_suite_command(fig), rows=rows)]


def fflib(figs, quick):
    """samples/s of neurokit ff (one compiled scan) and fflib's FFNet (its venv, a Python loop),
    timed call by call in turn on the same batches."""
    fig, p = figs[0], figs[0]['params']
    steps, reps = (2, 1) if quick else (p['steps'], p['repeats'])
    ds = data_lib.load('fashion_mnist')
    path = _fmnist_npz()
    proc = subprocess.Popen([_peer_python('fflib'), os.path.join(PEERS, 'fflib_runner.py'),
                             f'--data={path}', '--hidden=1000', '--layers=2', '--batch=128',
                             f'--steps={steps}'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    ask = lambda cmd: (proc.stdin.write(cmd + '\n'), proc.stdin.flush(),
                       json.loads(proc.stdout.readline()))[-1]
    try:
        json.loads(proc.stdout.readline())  # ready
        ask('run')  # warm-up
        timers = {r: _epoch_timer(r, (1000, 1000), 'float32', 128, steps, ds)[0] for r in ('bp', 'ff')}
        times = {'bp': [], 'ff': [], 'fflib': []}
        for _ in range(reps):
            for r, fn in timers.items():
                t0 = time.perf_counter()
                fn()
                times[r].append(time.perf_counter() - t0)
            times['fflib'].append(ask('run')['seconds'])
    finally:
        proc.stdin.write('quit\n')
        proc.stdin.flush()
        proc.wait(timeout=60)
    rate = {k: 128 * steps / statistics.median(v) for k, v in times.items()}
    return [R.make(fig['id'], [rate['ff'] / rate['fflib']], 'x',
                   {'measure': {**p, 'steps': steps, 'repeats': reps}}, command=_suite_command(fig),
                   rows=[{'implementation': k, 'samples/s': round(v)} for k, v in rate.items()])]


def _cli_params(tree, rule, workdir, args, env=None):
    """Runs experiments.train of checkout `tree` on `rule`'s config; the final params'
    leaves from its newest checkpoint (None and the error line when it refused)."""
    import glob
    import orbax.checkpoint as ocp
    proc = subprocess.run([sys.executable, '-m', 'experiments.train',
                           f'--config=experiments/configs/{rule}.py', f'--workdir={workdir}',
                           *args], cwd=tree, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=tree, **(env or {})))
    if proc.returncode:
        return None, proc.returncode, (proc.stderr.strip().splitlines() or [''])[-1]
    newest = max(glob.glob(os.path.join(workdir, 'checkpoints', '*')),
                 key=lambda d: int(os.path.basename(d)))
    state = ocp.PyTreeCheckpointer().restore(os.path.join(newest, 'state'))
    return jax.tree.leaves(state['params'] if 'params' in state else state[0]), 0, ''


def _worst_rel(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               / max(float(np.max(np.abs(np.asarray(x, np.float64)))), 1e-30)
               for x, y in zip(a, b))


def vs_commit(figs, quick):
    """This checkout against `params['commit']` (a git worktree), through the CLI with the
    same command: every rule's final params (2 epochs), and a workdir the old commit
    stopped (SIGTERM after epoch 1, 3 epochs asked) resumed here against the old
    uninterrupted run. Rules in `changed` differ on purpose and are reported, not counted."""
    p = figs[0]['params']
    tmp = tempfile.mkdtemp(prefix='nkb_vs_')
    old = os.path.join(tmp, 'old')
    subprocess.run(['git', 'worktree', 'add', '-q', '--detach', old, p['commit']], cwd=R.REPO,
                   check=True)
    try:
        out = {}
        names = _rules(p['rules'])[:2 if quick else None]
        rows, diffs = [], []
        for rule in names:
            a, *_ = _cli_params(old, rule, os.path.join(tmp, f'a_{rule}'),
                                [*p['args'], '--config.epochs=2'])
            b, *_ = _cli_params(R.REPO, rule, os.path.join(tmp, f'b_{rule}'),
                                [*p['args'], '--config.epochs=2'])
            d = _worst_rel(a, b)
            rows.append({'rule': rule, 'rel. diff': f'{d:.1e}', 'bit-identical':
                         all(np.array_equal(x, y) for x, y in zip(a, b)),
                         'counted': rule not in p['changed']})
            diffs += [d] if rule not in p['changed'] else []
        out['restructure.params_vs_main'] = (diffs, rows)
        rows, diffs = [], []
        for rule in p['resume_rules'][:2 if quick else None]:
            args = [*p['args'], '--config.epochs=3']
            whole, *_ = _cli_params(old, rule, os.path.join(tmp, f'w_{rule}'), args)
            stopped = os.path.join(tmp, f's_{rule}')
            _cli_params(old, rule, stopped, args, {'NEUROKIT_TEST_HOOK': '1:after_checkpoint:term'})
            resumed, code, line = _cli_params(R.REPO, rule, stopped, args)
            if resumed is None:
                rows.append({'rule': rule, 'resumed': f'refused (exit {code}): {line[:160]}'})
                continue
            d = _worst_rel(whole, resumed)
            rows.append({'rule': rule, 'resumed': f'{d:.1e}'})
            diffs.append(d)
        out['restructure.resume_main_checkpoint'] = (diffs, rows)
    finally:
        subprocess.run(['git', 'worktree', 'remove', '--force', old], cwd=R.REPO)
        shutil.rmtree(tmp, ignore_errors=True)
    return [R.make(f['id'], out[f['id']][0], f['unit'], {'measure': p}, command=_suite_command(f),
                   rows=out[f['id']][1]) for f in figs]


def lines(figs, quick):
    """Lines of the files `params['glob']` matches."""
    import glob
    fig = figs[0]
    files = sorted(glob.glob(os.path.join(R.REPO, fig['params']['glob']), recursive=True))
    counts = {os.path.relpath(f, R.REPO): sum(1 for _ in open(f)) for f in files}
    return [R.make(fig['id'], [sum(counts.values())], fig['unit'], {'measure': fig['params']},
                   command=_suite_command(fig),
                   rows=[{'file': f, 'lines': n} for f, n in counts.items()])]


def _steps(model, rule, opt, batches):
    """Params after one jitted step per batch from `init_state(PRNGKey(0))`."""
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for batch in batches:
        state, _ = step(state, batch)
    return state.params['layers']


def _xla_convs(model):
    """The model with its convs computed by XLA's convolution (Flax's algorithm) on CPU too."""
    from neurokit.models import layers as L
    rebuilt = [L.conv(l.name, l.in_shape, l.out_shape[-1], dict(l.spec)['kernel_size'],
                      l.activation, dict(l.spec)['pool'], dict(l.spec)['padding'],
                      init='lecun_normal', impl='xla') if l.kind == 'conv' else l
               for l in model.layers]
    return model._replace(layers=tuple(rebuilt), apply=models.sequential(rebuilt).apply)


def blocks(figs, quick):
    """The MLP and LeNet configs rebuilt from linen modules (`linen_layers.to_linen`, first
    layer native: the feedback rules then draw the same matrices) against the native
    models: every rule's params after 3 steps from the same state; and bp's step time on
    the 2x1000 MLP, Flax twin / native, interleaved medians."""
    from neurokit.models.linen_layers import to_linen
    p = figs[0]['params']
    ds = data_lib.load('fashion_mnist')
    batches = [{'x': jnp.asarray(ds.x_train[i * 64:(i + 1) * 64]),
                'y': jnp.asarray(ds.y_train[i * 64:(i + 1) * 64])} for i in range(3)]
    flat = lambda layers: [leaf for l in layers for leaf in
                           ((l['w'], l['b']) if 'w' in l else
                            (lambda q: (q['kernel'], q['bias']))(*l.values()))]
    rows, worst = [], []
    names = _rules(p['rules']) if any(f['id'] == 'blocks.vs_native' for f in figs) else []
    for rule_name in names[:2 if quick else None]:
        row = {'rule': rule_name}
        for net in p['models']:
            cfg = config_for(rule_name, {'model.name': net, 'batch_size': 64}, quick)
            model, rule, opt = experiment.build(cfg, ds)
            kw = dict(layerwise=cfg.layerwise_updates, **cfg.rule_kwargs.to_dict())
            # CPU: LeNet's native convs are im2col matmuls; measured as they are, and with
            # XLA's convolution (Flax's algorithm), which alone is counted
            variants = {net: model} if net != 'lenet' else {'lenet (im2col)': model,
                                                            'lenet': _xla_convs(model)}
            for label, native in variants.items():
                twin = to_linen(native, keep_first=True)
                try:
                    twin_rule = rules.build(rule_name, twin, **kw)
                except ValueError as err:  # a rule that cannot apply to Flax blocks says why
                    row[label] = f'refused: {err}'
                    continue
                native_rule = rule if native is model else rules.build(rule_name, native, **kw)
                d = _worst_rel(flat(_steps(native, native_rule, opt, batches)),
                               flat(_steps(twin, twin_rule, opt, batches)))
                row[label] = f'{d:.1e}'
                worst += [d] if label != 'lenet (im2col)' else []
        rows.append(row)
    want = {f['id']: f for f in figs}
    out = []
    if 'blocks.vs_native' in want:
        f = want['blocks.vs_native']
        out.append(R.make(f['id'], worst, f['unit'], {'measure': p}, command=_suite_command(f),
                          rows=rows))
    if 'blocks.step_time' not in want:
        return out
    f = want['blocks.step_time']
    cfg = config_for('bp', {'model.name': 'mlp', 'batch_size': p['batch']}, quick)
    model, rule, opt = experiment.build(cfg, ds)
    twin = to_linen(model)
    n = p['batch'] * (3 if quick else p['steps'])
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    timers = {}
    for name, m in (('native', model), ('flax', twin)):
        r = rules.build('bp', m)
        state = train.init_state(jax.random.PRNGKey(0), m, r, opt)
        compiled = jax.jit(train.make_epoch(r, opt, p['batch'])).lower(state, x, y, 0).compile()
        timers[name] = (lambda c, s: lambda: jax.block_until_ready(c(s, x, y, 0)))(compiled, state)
        timers[name]()
    med = interleaved(timers, 2 if quick else p['repeats'])
    out.append(R.make(f['id'], [med['flax'] / med['native']], f['unit'], {'measure': p},
                      command=_suite_command(f),
                      rows=[{'model': k, 'ms/step': round(1e3 * v / (n // p['batch']), 3)}
                            for k, v in med.items()]))
    return out


def _suite_command(fig) -> str:
    return f"python -m experiments.benchmarks.suite --only={fig['id']}"


KINDS = {'train': train_run, 'select': select, 'select_train': select_train,
         'steps_per_call': steps_per_call, 'async_checkpoints': async_checkpoints,
         'host_feed': host_feed, 'speed': speed, 'scan_loop': scan_loop,
         'memory': memory, 'aot_memory': aot_memory, 'gpu_peak': gpu_peak, 'pc_oracle': pc_oracle,
         'fa_oracle': fa_oracle, 'seeds': seeds, 'traces': traces, 'equality': equality,
         'multihost': multihost, 'checkpoint': checkpoint, 'pcx': pcx, 'pcx_accuracy': pcx_accuracy,
         'biotorch': biotorch, 'fflib': fflib, 'vs_commit': vs_commit, 'lines': lines,
         'blocks': blocks}
