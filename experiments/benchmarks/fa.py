"""Feedback-alignment family acceptance figures: oracles, F-MNIST accuracy, speed, BioTorch.

  python -m experiments.benchmarks.fa                       # everything (hours on 2 busy cores)
  python -m experiments.benchmarks.fa --part=oracle,speed,biotorch
  python -m experiments.benchmarks.fa --part=accuracy --rules=bp,fa,dfa,usf --epochs=15
  python -m experiments.benchmarks.fa --quick               # smoke run

Every part merges its numbers into experiments/benchmarks/results/fa.json (so
parts can run in separate processes) and the markdown is rebuilt from the json.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from experiments.benchmarks import common
from neurokit import data as data_lib
from neurokit import experiment, models, train
from neurokit.rules import fa as fa_lib
from neurokit.rules.bp import bp
from neurokit.experiment import workdir as wd

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes: checks the script, not the numbers.')
_PART = flags.DEFINE_list('part', ['oracle', 'speed', 'biotorch', 'accuracy'],
                          'Subset of: oracle, speed, biotorch, accuracy, select.')
_RULES = flags.DEFINE_list('rules', ['bp', 'fa', 'dfa', 'usf', 'brsf', 'frsf', 'pfa'],
                           'Rules for the accuracy part.')
_MODELS = flags.DEFINE_list('models', ['lenet'], "Models for the accuracy part: lenet, mlp (2x1000).")
_EPOCHS = flags.DEFINE_integer('epochs', 15, 'Epochs per accuracy run.')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per accuracy run (vmapped in one program).')
_SCHEDULE = flags.DEFINE_string('schedule', 'cosine', 'LR schedule of the accuracy runs (every rule, '
                                'BP twin included): constant or cosine.')
_TRAIN_LIMIT = flags.DEFINE_integer('train_limit', 0, 'Use only the first N training images (0: all).')
_SPEED_STEPS = flags.DEFINE_integer('speed_steps', 20, 'Steps per timed call in the speed part.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Interleaved repeats in the speed part.')
_OVERRIDES = flags.DEFINE_string('overrides', '', "Accuracy part: 'KEY=VALUE[,KEY=VALUE]' config "
                                 "overrides for every rule of --rules (e.g. a setting picked by "
                                 "--part=select); the result key and command carry them.")
_SELECT_RULE = flags.DEFINE_string('select_rule', 'dfa', 'Rule whose variants --part=select compares.')
_SELECT_GRID = flags.DEFINE_string(
    'select_grid', 'rule_kwargs.conv_feedback=full;rule_kwargs.conv_feedback=channel',
    "Variants for --part=select: ';'-separated override sets 'KEY=VALUE[,KEY=VALUE]'.")
_BIOTORCH_PY = flags.DEFINE_string('biotorch_python', '.venvs/biotorch/bin/python',
                                   'Python of the virtualenv with torch and biotorch.')

NAME = 'fa'
RESULTS_JSON = os.path.join(common.RESULTS, f'{NAME}.json')
# The speed MLP: 8 dense layers (7 hidden of 256), F-MNIST inputs, batch 128.
SPEED_HIDDEN = (256,) * 7
SPEED_BATCH = 128
# Acceptance thresholds (mean test accuracy, LeNet, F-MNIST) and BioTorch's published errors.
THRESHOLDS = {'fa': 0.870, 'dfa': 0.872, 'usf': 0.904}
PUBLISHED = {'bp': 'BioTorch LeNet error 9.2% (acc 90.8%)', 'fa': 'BioTorch 13.06% error (86.94%)',
             'dfa': 'BioTorch 12.81% error (87.19%)', 'usf': 'BioTorch 9.69% error (90.31%)'}
SPEED_LIMITS = {'fa': 1.1, 'dfa': 1.0}


CONFIG_EPOCHS = 15  # the FA-family configs' budget
# Rule settings that change what a conv model computes: always spelled out in a conv row's key
# and command (so a row says what ran even after a config's default changes).
KEYED_KWARGS = {'dfa': ('conv_feedback',)}


def _load():
    if os.path.exists(RESULTS_JSON):
        with open(RESULTS_JSON) as f:
            return json.load(f)
    return {}


def _rel(a, b):
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def oracle(quick):
    """FA with B = W and DFA (1 hidden layer) with B = W_2 against backprop; uSF vs its definition."""
    del quick
    ds = data_lib.load('fashion_mnist')
    key = jax.random.PRNGKey(0)
    batch = {'x': jnp.asarray(ds.x_train[:128]), 'y': jnp.asarray(ds.y_train[:128])}
    out = {}
    for name, model in [('mlp', models.mlp((28, 28, 1), 10, (1000, 1000))),
                        ('lenet', models.build('lenet', (28, 28, 1), 10))]:
        params = model.init(key)
        true, _, _ = bp(model).step(params, None, batch, key)
        rule = fa_lib.fa(model)
        state = fa_lib.with_feedback(rule.init(key, params), [p['w'] for p in params['layers'][1:]])
        out[f'fa_eq_bp_{name}'] = _rel(rule.step(params, state, batch, key)[0], true)
        # uSF: B = sign(W) must give the same updates as FA with that feedback set by hand.
        signs = [jnp.sign(p['w']) for p in params['layers'][1:]]
        usf_u = fa_lib.usf(model, scaled=False).step(params, fa_lib.EmptyState(), batch, key)[0]
        fa_u = rule.step(params, fa_lib.with_feedback(state, signs), batch, key)[0]
        out[f'usf_eq_fa_sign_{name}'] = _rel(usf_u, fa_u)
    model = models.mlp((28, 28, 1), 10, (1000,))
    params = model.init(key)
    true, _, _ = bp(model).step(params, None, batch, key)
    rule = fa_lib.dfa(model)
    state = fa_lib.with_feedback(rule.init(key, params), [params['layers'][1]['w']])
    out['dfa_eq_bp_mlp1'] = _rel(rule.step(params, state, batch, key)[0], true)
    return {k: {'max_rel_diff': v, 'pass': v <= 1e-6} for k, v in out.items()}


def _speed_setup(name, x, y):
    model = models.mlp((28, 28, 1), 10, SPEED_HIDDEN)
    rule = {'bp': bp, 'fa': fa_lib.fa, 'dfa': fa_lib.dfa}[name](model)
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    epoch = jax.jit(train.make_epoch(rule, opt, SPEED_BATCH))
    jax.block_until_ready(epoch(state, x, y, 0))  # compile and warm up

    def call():
        jax.block_until_ready(epoch(state, x, y, 0))
    return call


def speed(quick):
    """Step time of fa and dfa vs their BP twin on the 8-layer MLP, one process, interleaved."""
    ds = data_lib.load('fashion_mnist')
    steps = 3 if quick else _SPEED_STEPS.value
    n = steps * SPEED_BATCH
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    calls = {name: _speed_setup(name, x, y) for name in ('bp', 'fa', 'dfa')}
    med = common.interleaved(calls, 2 if quick else _REPEATS.value)
    step_s = {k: v / steps for k, v in med.items()}
    return {
        'model': f'mlp 784-{"-".join(map(str, SPEED_HIDDEN))}-10 (8 dense layers)',
        'batch_size': SPEED_BATCH, 'steps_per_call': steps,
        'repeats': 2 if quick else _REPEATS.value,
        'step_seconds': step_s,
        'samples_per_second': {k: SPEED_BATCH / v for k, v in step_s.items()},
        'ratio_vs_bp': {k: step_s[k] / step_s['bp'] for k in ('fa', 'dfa')},
        'pass': {k: step_s[k] / step_s['bp'] <= SPEED_LIMITS[k] for k in ('fa', 'dfa')},
    }


# Runs inside the BioTorch virtualenv: same MLP, batch, optimizer and data as `speed`.
_TORCH_SCRIPT = r'''
import json, statistics, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch, torch.nn as nn
from biotorch.module.biomodule import BioModule
args = json.loads(sys.argv[1])
torch.set_num_threads(args['threads'])
torch.manual_seed(0)
d = np.load(args['data'])
x = torch.from_numpy(d['x']).reshape(-1, 784)
y = torch.from_numpy(d['y']).long()
bs, steps = args['batch'], args['steps']

def net():
    layers, n = [], 784
    for h in args['hidden']:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    return nn.Sequential(*layers, nn.Linear(n, 10))

loss_fn = nn.CrossEntropyLoss()
def make(mode):
    m = net() if mode == 'bp' else BioModule(net(), mode=mode, output_dim=10)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    def run():
        for i in range(steps):
            xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
            opt.zero_grad()
            out = m(xb, targets=yb, loss_function=loss_fn) if mode == 'dfa' else m(xb)
            loss_fn(out, yb).backward()
            opt.step()
    run()  # warm-up
    return run

runs = {mode: make(mode) for mode in args['modes']}
times = {mode: [] for mode in runs}
for _ in range(args['repeats']):
    for mode, run in runs.items():
        t0 = time.perf_counter(); run(); times[mode].append(time.perf_counter() - t0)
print(json.dumps({m: bs * steps / statistics.median(t) for m, t in times.items()}))
'''


def _biotorch_version(py):
    try:
        out = subprocess.run([py, '-c', 'import torch, biotorch, importlib.metadata as m; '
                              'print(torch.__version__, m.version("biotorch"))'],
                             capture_output=True, text=True, timeout=300)
        return out.stdout.strip() if out.returncode == 0 else None, out.stderr[-2000:]
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)


def biotorch(quick):
    """Samples/s of BioTorch (fa, dfa, usf, bp) next to ours on the speed MLP, one run."""
    py = _BIOTORCH_PY.value
    version, err = _biotorch_version(py)
    if version is None:
        return {'installed': False, 'error': err}
    steps = 3 if quick else _SPEED_STEPS.value
    repeats = 2 if quick else _REPEATS.value
    ds = data_lib.load('fashion_mnist')
    n = steps * SPEED_BATCH
    tmp = tempfile.mkdtemp(prefix='nk-fa-biotorch-')
    path = os.path.join(tmp, 'data.npz')
    np.savez(path, x=ds.x_train[:n], y=ds.y_train[:n].astype(np.int64))
    args = {'data': path, 'batch': SPEED_BATCH, 'steps': steps, 'repeats': repeats,
            'hidden': list(SPEED_HIDDEN), 'modes': ['bp', 'fa', 'dfa', 'usf'],
            'threads': os.cpu_count()}
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    ours_calls = {name: _speed_setup(name, x, y) for name in ('bp', 'fa', 'dfa')}
    model = models.mlp((28, 28, 1), 10, SPEED_HIDDEN)
    rule, opt = fa_lib.usf(model), optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    usf_epoch = jax.jit(train.make_epoch(rule, opt, SPEED_BATCH))
    jax.block_until_ready(usf_epoch(state, x, y, 0))
    ours_calls['usf'] = lambda: jax.block_until_ready(usf_epoch(state, x, y, 0))
    t0 = time.perf_counter()
    proc = subprocess.run([py, '-c', _TORCH_SCRIPT, json.dumps(args)], capture_output=True,
                          text=True, timeout=3000)
    torch_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {'installed': True, 'version': version, 'error': proc.stderr[-3000:]}
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    med = common.interleaved(ours_calls, repeats)  # measured right after, same process tree
    ours = {k: n / v for k, v in med.items()}
    return {'installed': True, 'version': version, 'model': f'mlp 784-{"-".join(map(str, SPEED_HIDDEN))}-10',
            'batch_size': SPEED_BATCH, 'steps_per_call': steps, 'repeats': repeats,
            'biotorch_samples_per_second': theirs, 'neurokit_samples_per_second': ours,
            'biotorch_wall_seconds': torch_seconds,
            'speedup': {k: ours[k] / theirs[k] for k in ours if k in theirs}}


def _accuracy_config(rule, model_name, epochs, seeds, train_limit):
    import importlib
    config = importlib.import_module(f'experiments.configs.{rule}').get_config()
    config.model.name = model_name
    config.model.hidden = (1000, 1000)
    config.epochs, config.num_seeds, config.train_limit = epochs, seeds, train_limit
    config.optimizer.schedule = _SCHEDULE.value
    config.checkpoint_every = 0  # only the final checkpoint: the figure is the test accuracy
    return config


def _parse(text):
    """`--overrides` or one `--select_grid` entry, parsed; a malformed one ends the run with a
    one-line error (nothing is written)."""
    try:
        return common.parse_overrides(text)
    except ValueError as e:
        sys.exit(f'error: {e} (--overrides and --select_grid take KEY=VALUE[,KEY=VALUE])')


def _configured(rule, model_name, epochs, limit, overrides):
    """The accuracy config of `rule` with `overrides`; an unknown key ends the run with a
    one-line error naming the rule's config file."""
    try:
        return common.apply_overrides(
            _accuracy_config(rule, model_name, epochs, _SEEDS.value, limit), overrides)
    except ValueError as e:
        sys.exit(f'error: {e} in experiments/configs/{rule}.py; fix --overrides or --select_grid')


def _suffix(overrides):
    return ''.join(f'[{k.split(".")[-1]}={v}]' for k, v in overrides.items())


def select(quick, results):
    """Picks among `--select_grid` variants of `--select_rule` on LeNet by the mean final
    accuracy on a validation split of the training set (train[:-10000] / train[-10000:]),
    `--seeds` vmapped seeds per variant, `--epochs` epochs; the test set plays no part."""
    rule, epochs = _SELECT_RULE.value, (1 if quick else _EPOCHS.value)
    ds = data_lib.load('fashion_mnist')
    n_val, n = (500, 2500) if quick else (10000, None)
    x, y = ds.x_train[:n], ds.y_train[:n]
    variants = [_parse(v) for v in _SELECT_GRID.value.split(';') if v.strip()]
    out = {'rule': rule, 'model': 'lenet', 'epochs': epochs, 'seeds': _SEEDS.value,
           'schedule': _SCHEDULE.value, 'split': f'train[:-{n_val}] / train[-{n_val}:] (validation)',
           'runs': [], 'date': time.strftime('%Y-%m-%d'), 'machine': common.machine(),
           'command': 'python -m experiments.benchmarks.fa --part=select '
                      f'--select_rule={rule} --select_grid="{_SELECT_GRID.value}" '
                      f'--epochs={epochs} --seeds={_SEEDS.value}'}
    for over in variants:
        config = _configured(rule, 'lenet', epochs, 0, over)
        t0 = time.perf_counter()
        curve = common.train_curve(config, x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:])
        out['runs'].append({'overrides': over, 'val_accuracy_per_epoch': [statistics.fmean(c)
                                                                          for c in curve],
                            'final_member_val_accuracy': curve[-1],
                            'final_val_accuracy': statistics.fmean(curve[-1]),
                            'seconds': time.perf_counter() - t0})
        print(json.dumps(out['runs'][-1]), flush=True)
    out['chosen'] = max(out['runs'], key=lambda r: r['final_val_accuracy'])['overrides']
    results.setdefault('select', {})[f'lenet/{rule}@{epochs}ep'] = out


def _curve(workdir):
    """Mean test accuracy after each epoch, from the run's metrics.jsonl (for the plots)."""
    rows = wd.read_jsonl(os.path.join(workdir, wd.METRICS))
    return [float(np.mean(r['test_accuracy'])) for r in rows] or None


def _key(model_name, rule, epochs):
    """Result key: a budget other than the configs' 15 epochs gets its own entry, so a longer
    (or shorter) run never replaces the 15-epoch figure."""
    return f'{model_name}/{rule}' + ('' if epochs == CONFIG_EPOCHS else f'@{epochs}ep')


def accuracy(quick, results):
    """Mean test accuracy over seeds for each rule and model; merges into `results`."""
    acc = results.setdefault('accuracy', {})
    epochs = 1 if quick else _EPOCHS.value
    limit = 2000 if quick else _TRAIN_LIMIT.value
    overrides = _parse(_OVERRIDES.value)
    for model_name in _MODELS.value:
        for rule in _RULES.value:
            config = _configured(rule, model_name, epochs, limit, overrides)
            shown = dict(overrides)
            if model_name != 'mlp':
                for k in KEYED_KWARGS.get(rule, ()):
                    shown.setdefault(f'rule_kwargs.{k}', str(config.rule_kwargs[k]))
            workdir = common.fresh_workdir(f'fa-{rule}-{model_name}')
            summary = experiment.run(config, workdir)
            accs = summary['test_accuracy']
            accs = accs if isinstance(accs, list) else [accs]
            flags_str = (f'--config.model.name={model_name} --config.epochs={epochs} '
                         f'--config.num_seeds={_SEEDS.value} '
                         f'--config.optimizer.schedule={_SCHEDULE.value}'
                         + (f' --config.train_limit={limit}' if limit else '')
                         + ''.join(f' --config.{k}={v}' for k, v in shown.items()))
            acc[_key(model_name, rule, epochs) + _suffix(shown)] = {
                'rule': rule, 'model': model_name, 'accuracies': accs,
                'mean': statistics.fmean(accs),
                'std': statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                'epochs': epochs, 'train_limit': limit, 'seeds': _SEEDS.value,
                'schedule': _SCHEDULE.value,
                'per_epoch_test_accuracy': _curve(workdir),
                'train_seconds': summary['train_seconds'],
                'command': f'python -m experiments.train --config=experiments/configs/{rule}.py '
                           f'--workdir=DIR {flags_str}',
                'threshold': THRESHOLDS.get(rule) if model_name == 'lenet' else None,
                'published': PUBLISHED.get(rule) if model_name == 'lenet' else None,
                'date': time.strftime('%Y-%m-%d'), 'quick': quick, 'machine': common.machine(),
            }
            _save(results, ['accuracy'], quick)  # after every run: a long sweep keeps what it finished


def _verdict(ok):
    return 'PASS' if ok else 'SHORT'


def markdown(results):
    lines = ['## Feedback alignment family (fa, dfa, usf, brsf, frsf, pfa)', '',
             '- Machine: 2-core CPU (no GPU), shared with other jobs (timings are noisy), unless a '
             'row\'s command line below names a GPU.',
             f'- jax {jax.__version__}; figures merged from the runs recorded in '
             '`experiments/benchmarks/results/fa.json` (each entry has its date).', '']
    if 'oracle' in results:
        o = results['oracle']
        lines += ['### Oracles (float32, one F-MNIST batch of 128)', '',
                  f'- Command: `{o.get("command", "python -m experiments.benchmarks.fa --part=oracle")}` ({o.get("date", "")})', '',
                  '| check | max relative difference | verdict (≤ 1e-6) |', '|---|---|---|']
        for k, v in o.items():
            if isinstance(v, dict):
                lines.append(f'| {k} | {v["max_rel_diff"]:.2e} | {_verdict(v["pass"])} |')
        lines.append('')
    if 'accuracy' in results:
        lines += ['### Fashion-MNIST test accuracy (Adam 1e-3, batch 128)', '',
                  '| model | rule | epochs | schedule | train images | seeds | mean ± std (%) | '
                  'BP twin (%) | published | threshold | verdict |',
                  '|---|---|---|---|---|---|---|---|---|---|---|']
        acc = results['accuracy']
        for key, r in acc.items():
            twin = acc.get(_key(r['model'], 'bp', r['epochs']))
            twin_s = common.mean_std(twin['accuracies']) if twin else 'n/a'
            thr = r.get('threshold')
            verdict = _verdict(r['mean'] >= thr) if thr else '—'
            runs = [r] + r.get('earlier_runs', [])
            if thr and len(runs) > 1:  # the same command run again (GPU reductions are not
                passed = sum(x['mean'] >= thr for x in runs)  # deterministic): every run counts
                verdict = (_verdict(passed == len(runs)) + f' ({passed} of {len(runs)} runs pass)')
            rule_cell = f'{r["rule"]} {common.setting_of(key)}'.strip()
            lines.append(f'| {r["model"]} | {rule_cell} | {r["epochs"]} | {r.get("schedule", "constant")} | '
                         f'{r["train_limit"] or 60000} | {r["seeds"]} | {common.mean_std(r["accuracies"])} | '
                         f'{twin_s} | {r.get("published") or "—"} | '
                         f'{f"{100 * thr:.1f}" if thr else "—"} | {verdict} |')
        cut = [k for k, r in acc.items() if r['epochs'] < CONFIG_EPOCHS or r['train_limit']]
        if cut:
            lines += ['', f'Cut budgets ({", ".join(cut)}): fewer than the configs\' 15 epochs or '
                      'fewer than 60,000 images (runs made when the CPU was shared by several jobs); '
                      'a SHORT verdict there means the threshold was not reached at that budget.']
        lines += ['', 'The BP twin is the same model, initialisation, data order, optimizer and '
                  'schedule. Defaults were not tuned, except dfa\'s `conv_feedback` (picked on a '
                  'validation split, next section; a row\'s key and command name the setting it ran); '
                  'the schedule is the '
                  'benchmark\'s `--schedule` flag (cosine decay over the run unless a row says otherwise).',
                  '', 'Commands (one per row, DIR a new folder):', '']
        # Rows recorded before the schedule flag ran the configs' constant rate of that time.
        lines += [f'- `{r["command"]}{"" if "schedule" in r else " --config.optimizer.schedule=constant"}` '
                  f'({r["date"]}, {r["train_seconds"]:.0f} s training'
                  f'{"" if "machine" not in r or "CPU" in r["machine"] else " on " + r["machine"]})'
                  + ''.join(f'; another run of the same command ({e["date"]}, {e.get("machine", "CPU")}): '
                            f'{common.mean_std(e["accuracies"])}' for e in r.get('earlier_runs', []))
                  for r in acc.values()]
        lines.append('')
    for key, sel in results.get('select', {}).items():
        lines += [f'### Chosen on validation: {key}', '',
                  f'- Command: `{sel["command"]}` ({sel["date"]}, {sel["machine"]})',
                  f'- Split: {sel["split"]}; {sel["seeds"]} vmapped seeds per variant, '
                  f'{sel["epochs"]} epochs, {sel["schedule"]} schedule; the test set plays no part.', '',
                  '| variant | val accuracy every 10 epochs (%) | final, per seed (%) | final mean (%) | '
                  'chosen |', '|---|---|---|---|---|']
        for r in sel['runs']:
            curve = r['val_accuracy_per_epoch']
            lines.append(f'| {_suffix(r["overrides"])} | '
                         + ' '.join(f'{100 * v:.2f}' for v in curve[9::10]) + ' | '
                         + ' '.join(f'{100 * v:.2f}' for v in r['final_member_val_accuracy'])
                         + f' | {100 * r["final_val_accuracy"]:.2f} | '
                         + ('yes' if r['overrides'] == sel['chosen'] else '') + ' |')
        lines.append('')
    if 'speed' in results:
        s = results['speed']
        lines += ['### Step time vs the BP twin (same process, interleaved repeats, medians)', '',
                  f'- Command: `{s.get("command", "python -m experiments.benchmarks.fa --part=speed --repeats=5")}` ({s.get("date", "")})',
                  f'- Model: {s["model"]}, batch {s["batch_size"]}, Adam; {s["steps_per_call"]} '
                  f'scanned steps per call, {s["repeats"]} repeats.', '',
                  '| rule | ms/step | samples/s | ratio vs BP | limit | verdict |', '|---|---|---|---|---|---|']
        for k in ('bp', 'fa', 'dfa'):
            ratio = s['ratio_vs_bp'].get(k, 1.0)
            lim = SPEED_LIMITS.get(k)
            lines.append(f'| {k} | {1000 * s["step_seconds"][k]:.2f} | {s["samples_per_second"][k]:.0f} | '
                         f'{ratio:.3f} | {lim or "—"} | {_verdict(s["pass"][k]) if lim else "—"} |')
        lines += ['', 'fa and bp do the same arithmetic (fa swaps W for B in the input cotangent), so a '
                  'ratio well below 1 is load noise on the shared machine; dfa skips every input '
                  'cotangent, hence below 1 by design.', '']
    if 'biotorch' in results:
        b = results['biotorch']
        lines += ['### BioTorch on the same MLP, batch and data (CPU, one run)', '',
                  f'- Command: `{b.get("command", "python -m experiments.benchmarks.fa --part=biotorch")}` ({b.get("date", "")})']
        if not b.get('installed') or 'error' in b:
            lines += [f'- BioTorch could not be run: {b.get("error", "")[-500:]}', '']
        else:
            lines += [f'- torch / biotorch: {b["version"]}; model {b["model"]}, batch {b["batch_size"]}, '
                      f'Adam 1e-3, {b["steps_per_call"]} steps per timed call, {b["repeats"]} repeats.', '',
                      '| rule | BioTorch samples/s | neurokit samples/s | neurokit / BioTorch |',
                      '|---|---|---|---|']
            for k, v in b['biotorch_samples_per_second'].items():
                ours = b['neurokit_samples_per_second'].get(k)
                lines.append(f'| {k} | {v:.0f} | {ours:.0f} | {ours / v:.2f}× |' if ours else
                             f'| {k} | {v:.0f} | n/a | n/a |')
            load = b.get('load_average')
            lines += ['', 'BioTorch ran first (its own repeats, torch using every core through OpenMP), '
                      'then ours (interleaved) in the same command. '
                      + (f'1-minute load average when the part started: {load} on '
                         f'{os.cpu_count()} cores.' if load is not None else
                         'Measured in session 1 on a machine loaded by about eight other jobs (load not '
                         'recorded): OpenMP threads starve under load, so that ratio overstates the gap.'),
                      '']
    return '\n'.join(lines)


def _save(results, parts, quick=False):
    """Merges this process's `parts` into the file on disk (other processes may have written it);
    a `quick` smoke run writes under /tmp instead and never touches the recorded figures."""
    disk = {} if quick else _load()
    for part in parts:
        if part in ('accuracy', 'select'):
            disk.setdefault(part, {}).update(results.get(part, {}))
        elif part in results:
            disk[part] = results[part]
    common.write(NAME, disk, markdown(disk), quick=quick)


def main(argv):
    if len(argv) > 1:
        sys.exit(f'error: unexpected arguments {argv[1:]}')
    quick = _QUICK.value
    results = {} if quick else _load()
    today = time.strftime('%Y-%m-%d')
    command = ' '.join(['python -m experiments.benchmarks.fa'] + sys.argv[1:])
    for part in _PART.value:
        load = round(os.getloadavg()[0], 2)  # 1-minute load when the part starts (2 cores here)
        if part == 'oracle':
            results['oracle'] = dict(oracle(quick), date=today, command=command)
        elif part == 'speed':
            results['speed'] = dict(speed(quick), date=today, command=command, load_average=load)
        elif part == 'biotorch':
            measured = biotorch(quick)
            if not measured.get('installed', True) and results.get('biotorch', {}).get(
                    'biotorch_samples_per_second'):
                # a missing venv must not replace figures measured with it
                print(f'biotorch unavailable ({measured.get("error")}): keeping the figures of '
                      f'{results["biotorch"].get("date")} (see BUILD_NOTES to install it)')
            else:
                results['biotorch'] = dict(measured, date=today, command=command,
                                           load_average=load)
        elif part == 'accuracy':
            accuracy(quick, results)
        elif part == 'select':
            select(quick, results)
        else:
            sys.exit(f'error: unknown part {part!r}; valid: oracle, speed, biotorch, accuracy, '
                     'select')
        _save(results, [part], quick)
        print(json.dumps({part: results.get(part)}, default=str)[:2000])


if __name__ == '__main__':
    app.run(main)
