"""Forward-forward family benchmark: accuracy, speed vs backprop, every data set.

  python -m experiments.benchmarks.ff [--quick] [--parts=speed,fmnist,datasets,cnn,wide]

Writes experiments/benchmarks/results/ff.json (raw numbers) and ff.md (the
markdown section). Every figure has its backprop twin from the same process.
Hyperparameters were chosen on a validation split of the training data (last
5,000-10,000 training images), never on the test set; figures below are test
accuracies.
"""
from __future__ import annotations

import datetime
import json
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from experiments.benchmarks import common
from neurokit import data as data_lib
from neurokit import models, train
from neurokit.rules import registry

_QUICK = flags.DEFINE_bool('quick', False, 'Smoke run: tiny budgets, nothing like the real figures.')
_PARTS = flags.DEFINE_list('parts', ['speed', 'fmnist', 'datasets', 'cnn', 'wide'],
                           'Which measurements to run.')
_EPOCHS = flags.DEFINE_integer('fmnist_epochs', 5, 'Epochs of the 2x1000 Fashion-MNIST runs.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds of the 2x1000 runs (vmapped in one program).')
_CNN_LIMIT = flags.DEFINE_integer('cnn_limit', 20000, 'Training images of the CNN runs.')
_CNN_EPOCHS = flags.DEFINE_integer('cnn_epochs', 2, 'Epochs of the CNN runs.')
_WIDE_EPOCHS = flags.DEFINE_integer('wide_epochs', 1, 'Epochs of the 4x2000 runs (published: 60).')
_WIDE_LIMIT = flags.DEFINE_integer('wide_limit', 10000, 'Training images of the 4x2000 runs (0: all).')
_WIDE_SEEDS = flags.DEFINE_integer('wide_seeds', 1, 'Seeds of the 4x2000 runs (vmapped).')
_WIDE_RULES = flags.DEFINE_list('wide_rules', ['bp', 'ff'], 'Rules of the 4x2000 runs.')
_SPEED_HIDDEN = flags.DEFINE_list('speed_hidden', ['1000', '1000'], 'Hidden widths of the speed part '
                                   '(2x1000 is stored as "speed", any other as "speed_<widths>").')
_SELECT_LRS = flags.DEFINE_list('wide_select_lrs', ['0.0005', '0.001', '0.002'],
                                 'Learning rates ff picks from on the validation split (--parts=wide_select).')
_HEAD_ROW = flags.DEFINE_bool('head_row', False, 'Also train 2x1000 ff with the one-pass softmax head.')
_MD_ONLY = flags.DEFINE_bool('md_only', False, 'Only rewrite ff.md from the existing ff.json.')
_OUT = flags.DEFINE_string('out', 'experiments/benchmarks/results', 'Results folder.')

TARGET = 0.89


def _today():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')


def _model(ds, spec):
    if spec[0] == 'mlp':
        return models.mlp(ds.input_shape, ds.num_classes, spec[1])
    return models.cnn(ds.input_shape, ds.num_classes, channels=spec[1], dense_widths=spec[2])


def train_eval(rule_name, ds, spec, epochs, *, lr=1e-3, bs=128, seeds=1, limit=0, kw=None,
               schedule='cosine'):
    """Trains `seeds` vmapped members; test accuracy and time after every epoch."""
    model = _model(ds, spec)
    rule = registry.build(rule_name, model, **(kw or {}))
    x, y = ds.x_train, ds.y_train
    if limit:
        x, y = x[:limit], y[:limit]
    x, y, xt, yt = map(jnp.asarray, (x, y, ds.x_test, ds.y_test))
    steps = x.shape[0] // bs
    sched = optax.cosine_decay_schedule(lr, steps * epochs) if schedule == 'cosine' else lr
    opt = optax.adam(sched)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    state = jax.jit(jax.vmap(lambda k: train.init_state(k, model, rule, opt)))(keys)
    epoch = jax.jit(jax.vmap(train.make_epoch(rule, opt, bs), (0, None, None, None)))
    evaluate = jax.jit(jax.vmap(train.make_evaluate(rule, 1000), (0, 0, None, None)))
    t0 = time.perf_counter()
    epoch_c = epoch.lower(state, x, y, 0).compile()
    compile_s = time.perf_counter() - t0
    history, total = [], 0.0
    for e in range(epochs):
        t0 = time.perf_counter()
        state, metrics = epoch_c(state, x, y, e)
        jax.block_until_ready(state)
        dt = time.perf_counter() - t0
        total += dt
        acc = np.asarray(evaluate(state.params, state.rule_state, xt, yt)).tolist()
        history.append({'epoch': e + 1, 'seconds': dt, 'cum_seconds': total, 'test_accuracy': acc,
                        'loss': float(np.mean(metrics['loss']))})
        print(f'  {rule_name} {ds.name} {spec} ep{e + 1} acc={np.mean(acc):.4f} t={dt:.1f}s', flush=True)
    accs = history[-1]['test_accuracy']
    reach = next((h['cum_seconds'] for h in history if np.mean(h['test_accuracy']) >= TARGET), None)
    return {'rule': rule_name, 'dataset': ds.name, 'model': list(map(str, spec)), 'epochs': epochs,
            'batch_size': bs, 'lr': lr, 'schedule': schedule, 'seeds': seeds, 'train_limit': limit,
            'kwargs': kw or {}, 'test_accuracy': accs, 'mean': float(np.mean(accs)),
            'std': float(np.std(accs)), 'train_seconds': total, 'compile_seconds': compile_s,
            'machine': common.machine(), 'date': _today(),
            'seconds_to_89': reach, 'history': history}


def speed(ds, hidden, chunk_steps, repeats, bs=128):
    """Step time of bp, ff and cff on the same network, interleaved; medians."""
    model = models.mlp(ds.input_shape, ds.num_classes, hidden)
    x, y = jnp.asarray(ds.x_train[:chunk_steps * bs]), jnp.asarray(ds.y_train[:chunk_steps * bs])
    fns = {}
    for name in ('bp', 'ff', 'cff'):
        rule = registry.build(name, model)
        opt = optax.adam(1e-3)
        st = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
        ep = jax.jit(train.make_epoch(rule, opt, bs)).lower(st, x, y, 0).compile()
        st, _ = ep(st, x, y, 0)  # warm-up
        jax.block_until_ready(st)
        fns[name] = [ep, st]
    times = {n: [] for n in fns}
    for r in range(repeats):
        for name, (ep, st) in fns.items():
            t0 = time.perf_counter()
            st, _ = ep(st, x, y, r + 1)
            jax.block_until_ready(st)
            times[name].append((time.perf_counter() - t0) / chunk_steps)
            fns[name][1] = st
    med = {n: statistics.median(t) for n, t in times.items()}
    steps_per_epoch = ds.x_train.shape[0] // bs
    return {'hidden': list(hidden), 'batch_size': bs, 'chunk_steps': chunk_steps, 'repeats': repeats,
            'machine': common.machine(), 'date': _today(),
            'step_seconds': times, 'median_step_seconds': med,
            'epoch_seconds_estimate': {n: m * steps_per_epoch for n, m in med.items()},
            'ratio_ff_bp': med['ff'] / med['bp'], 'ratio_cff_bp': med['cff'] / med['bp']}


def main(argv):
    del argv
    if _MD_ONLY.value:
        with open(os.path.join(_OUT.value, 'ff.json')) as f:
            res = json.load(f)
        with open(os.path.join(_OUT.value, 'ff.md'), 'w') as f:
            f.write(markdown(res))
        return
    quick = _QUICK.value
    parts = set(_PARTS.value)
    out_dir = _OUT.value
    if quick and out_dir == _OUT.default:  # a smoke run never replaces the recorded figures
        out_dir = os.path.join(tempfile.gettempdir(), 'nk_ff_quick')
    path = os.path.join(out_dir, 'ff.json')
    out = {}
    if not quick and os.path.exists(path):  # parts run in separate invocations add up
        with open(path) as f:
            out = json.load(f)
    if jax.devices()[0].platform == 'cpu' or 'machine' not in out:
        # the header describes the CPU runs; a GPU part's rows carry their own machine and date
        out.update({'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                    'jax': jax.__version__, 'machine': common.machine()})
    out['quick'] = quick
    fm = data_lib.load('fashion_mnist')
    if quick:
        fm = data_lib.Dataset(fm.name, fm.x_train[:2048], fm.y_train[:2048], fm.x_test[:1000],
                              fm.y_test[:1000], fm.num_classes)

    def save():
        os.makedirs(out_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(out, f, indent=1)
        with open(os.path.join(out_dir, 'ff.md'), 'w') as f:
            f.write(markdown(out))

    if 'speed' in parts:
        hidden = tuple(int(h) for h in _SPEED_HIDDEN.value)
        key = 'speed' if hidden == (1000, 1000) else 'speed_' + 'x'.join(map(str, hidden))
        out[key] = speed(fm, hidden, 4 if quick else 40, 2 if quick else 5)
        save()
    if 'fmnist' in parts:
        ep = 1 if quick else _EPOCHS.value
        out['fmnist_2x1000'] = [train_eval(r, fm, ('mlp', (1000, 1000)), ep, seeds=_SEEDS.value)
                                for r in ('bp', 'ff', 'cff')]
        if _HEAD_ROW.value:
            out['fmnist_2x1000'].append(train_eval('ff', fm, ('mlp', (1000, 1000)), ep, seeds=_SEEDS.value,
                                                   kw={'predict': 'head'}))
        save()
    if 'datasets' in parts:
        res = []
        for name, spec, ep in (('digits', ('mlp', (256, 256)), 30), ('mnist1d', ('mlp', (512, 512)), 40)):
            ds = data_lib.load(name)
            for r in ('bp', 'ff', 'cff'):
                res.append(train_eval(r, ds, spec, 2 if quick else ep, bs=64))
        # MNIST-1D's first 10 values are signal, which the label overwrites: class groups instead.
        res.append(train_eval('ff', data_lib.load('mnist1d'), ('mlp', (512, 512)), 2 if quick else 40,
                              bs=64, kw={'mode': 'class_groups'}))
        out['datasets'] = res
        save()
    if 'cnn' in parts:
        spec = ('cnn', (32, 64), (128,))
        limit = 2048 if quick else _CNN_LIMIT.value  # what fits on 2 shared cores
        out['cnn_fmnist'] = [train_eval(r, fm, spec, 1 if quick else _CNN_EPOCHS.value, limit=limit)
                             for r in ('bp', 'ff')]
        save()
    if 'wide' in parts:
        # The published setting is --wide_epochs=60 --wide_limit=0 --wide_seeds=3
        # --wide_rules=bp,ff,cff (a GPU job: a full 4x2000 FF epoch is ~10 min on 2 cores).
        limit = 2048 if quick else _WIDE_LIMIT.value
        out['fmnist_4x2000'] = []
        for r in _WIDE_RULES.value:  # saved after each rule: a run cut short keeps what finished
            out['fmnist_4x2000'].append(train_eval(
                r, fm, ('mlp', (2000,) * 4), 1 if quick else _WIDE_EPOCHS.value, limit=limit,
                seeds=1 if quick else _WIDE_SEEDS.value))
            save()
    if 'wide_select' in parts:
        wide_select(fm, quick, save_fn=save, out=out)
    save()
    print('wrote', path)


def wide_select(fm, quick, save_fn, out):
    """ff picks its learning rate on a validation split of the training images (the last
    10,000; never the test set) at the 4x2000 budget; then ff and cff train on all 60,000 at
    that rate and are tested. Writes out['wide_select'] and out['fmnist_4x2000_selected'],
    calling `save_fn` after each stage. (`quick`: `fm` is already cut to 2,048 images.)"""
    n_val = 500 if quick else 10000
    x, y = fm.x_train, fm.y_train
    val = data_lib.Dataset(fm.name + '_val', x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:],
                           fm.num_classes)
    epochs = 1 if quick else _WIDE_EPOCHS.value
    seeds = 1 if quick else _WIDE_SEEDS.value
    spec = ('mlp', (2000,) * 4)
    runs = []
    for lr in (float(v) for v in _SELECT_LRS.value):
        r = train_eval('ff', val, spec, epochs, lr=lr, seeds=seeds)
        runs.append({'lr': lr, 'val_accuracy': r['test_accuracy'], 'mean': r['mean'],
                     'std': r['std'], 'train_seconds': r['train_seconds']})
    best = max(runs, key=lambda r: r['mean'])  # ties: the first
    sel = {'epochs': epochs, 'seeds': seeds, 'n_val': n_val, 'runs': runs, 'chosen_lr': best['lr'],
           'machine': common.machine(), 'date': _today()}
    out['wide_select'] = sel
    save_fn()
    out['fmnist_4x2000_selected'] = []
    for rule in ('ff', 'cff'):
        out['fmnist_4x2000_selected'].append(train_eval(
            rule, fm, spec, epochs, lr=best['lr'], seeds=seeds))
        save_fn()


def _t89(r):
    return f"{r['seconds_to_89']:.1f}" if r.get('seconds_to_89') else 'not reached'


def _acc(r):
    return f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} % ({r['seeds']} seed{'s' * (r['seeds'] > 1)})"


def wide_lines(rows):
    """The 4x2000 table (the published setting) and its verdicts."""
    machines = sorted({r.get('machine', '2-core CPU') for r in rows})
    lines = ['### Fashion-MNIST, MLP 4x2000', '',
             f"Machine: {', '.join(machines)} ({', '.join(sorted({r.get('date', '?') for r in rows}))}). "
             'Each rule trained in its own compiled program, seeds vmapped; epoch seconds exclude '
             'compilation and the per-epoch test evaluation.', '',
             '| rule | epochs | train limit | test accuracy | epoch s | s to 89% test |',
             '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['rule']} | {r['epochs']} | {r['train_limit'] or 'all'} | {_acc(r)} | "
                     f"{r['train_seconds'] / r['epochs']:.2f} | {_t89(r)} |")
    by = {r['rule']: r for r in rows}
    full = {n for n, r in by.items() if r['epochs'] >= 60 and not r['train_limit'] and r['seeds'] >= 3}
    lines.append('')
    if 'ff' in full:
        ok = by['ff']['mean'] >= 0.896
        lines.append(f"ff ≥ 89.6 % at the published budget (60 epochs, 3 seeds, all images): "
                     f"**{'PASS' if ok else 'SHORT'}** ({100 * by['ff']['mean']:.2f} %; published FF "
                     '89.63 %, BP 88.88 %, Spyra & Dzwinel).')
    else:
        lines.append('The published budget (60 epochs × 3 seeds on all images: `--parts=wide '
                     '--wide_epochs=60 --wide_limit=0 --wide_seeds=3 --wide_rules=ff,cff,bp`) was '
                     'not run for ff: **SHORT** (not measured at full budget).')
    if {'ff', 'cff'} <= full:
        gap = 100 * (by['cff']['mean'] - by['ff']['mean'])
        lines.append(f"cff beats ff at the same network and budget: "
                     f"**{'PASS' if gap > 0 else 'SHORT'}** (cff − ff = {gap:+.2f} points, seed "
                     f"std {100 * by['ff']['std']:.2f}/{100 * by['cff']['std']:.2f}).")
    if {'ff', 'bp'} <= set(by):
        ratio = (by['ff']['train_seconds'] / by['ff']['epochs']) / (by['bp']['train_seconds'] / by['bp']['epochs'])
        lines.append(f'FF epoch / BP epoch in these runs: {ratio:.2f} (acceptance ≤ 2: '
                     f"**{'PASS' if ratio <= 2 else 'SHORT'}**).")
    return lines + ['']


def markdown(res):
    cmd = 'python -m experiments.benchmarks.ff' + (' --quick' if res['quick'] else '')
    fm = (res.get('fmnist_2x1000') or [{}])[0]
    fm_flags = f"--parts=fmnist --fmnist_epochs={fm.get('epochs', '?')} --seeds={fm.get('seeds', '?')}"
    lines = ['## Forward-forward (ff, cff)', '',
             f"Command: `{cmd}` (the parts were run as `--parts=speed`, `--parts=datasets`, "
             f'`{fm_flags}`, `--parts=cnn --cnn_limit=2048 --cnn_epochs=1`, '
             f"to fit the session). Machine: {res['machine']}. Date: {res['date']}. jax {res['jax']}. "
             'Adam lr 1e-3 with cosine decay, batch 128 (64 on digits/MNIST-1D); ff/cff with the '
             "constructors' defaults (SymBa loss, alpha 40, mean goodness, rms-normalised layer "
             'inputs, label in the first 10 inputs, prediction by goodness summed over the hidden '
             'layers); hyperparameters chosen on a validation split of the training data, not the '
             'test set. Accuracies are test accuracies.', '']
    if res.get('quick'):
        lines += ['**Smoke run (--quick): tiny budgets, the numbers mean nothing.**', '']
    for skey in sorted(k for k in res if k.startswith('speed')):
        s = res[skey]
        e = s['epoch_seconds_estimate']
        verdict = 'PASS' if s['ratio_ff_bp'] <= 2 else 'SHORT'
        lines += [f"### Speed, MLP {'x'.join(map(str, s['hidden']))}, Fashion-MNIST, batch 128", '',
                  f"Interleaved chunks of {s['chunk_steps']} steps, {s['repeats']} repeats, medians. "
                  f"Machine: {s.get('machine', res['machine'])} ({s.get('date', res['date'])}). "
                  'Epoch = 468 steps.', '',
                  '| rule | median step (ms) | epoch estimate (s) | ratio to BP |', '|---|---|---|---|']
        for n in ('bp', 'ff', 'cff'):
            lines.append(f"| {n} | {1e3 * s['median_step_seconds'][n]:.1f} | {e[n]:.1f} | "
                         f"{s['median_step_seconds'][n] / s['median_step_seconds']['bp']:.2f} |")
        lines += ['', f"FF epoch / BP epoch = {s['ratio_ff_bp']:.2f} (acceptance ≤ 2): **{verdict}**. "
                  'Published: FF 574.6 s vs BP 43.1 s (13×) on an A100 for 4x2000 '
                  '(Spyra & Dzwinel).', '']
    if 'fmnist_2x1000' in res:
        rs = {r['rule']: r for r in res['fmnist_2x1000'] if not r['kwargs']}
        lines += ['### Fashion-MNIST, MLP 2x1000', '',
                  '| rule | epochs | test accuracy | train s | s to 89% test |', '|---|---|---|---|---|']
        for n in ('bp', 'ff', 'cff'):
            r = rs[n]
            t89 = f"{r['seconds_to_89']:.0f}" if r['seconds_to_89'] else 'not reached'
            lines.append(f"| {n} | {r['epochs']} | {_acc(r)} | {r['train_seconds']:.0f} | {t89} |")
        for r in res['fmnist_2x1000'][3:]:
            t89 = f"{r['seconds_to_89']:.0f}" if r['seconds_to_89'] else 'not reached'
            kw = ', '.join(f'{k}={v}' for k, v in r['kwargs'].items())
            lines.append(f"| {r['rule']} ({kw}) | {r['epochs']} | {_acc(r)} | {r['train_seconds']:.0f} | {t89} |")
        ff_ok = rs['ff']['mean'] >= 0.896 and rs['ff']['seeds'] >= 3
        lines += ['', f"ff ≥ 89.6% over 3 seeds: **{'PASS' if ff_ok else 'SHORT'}**; "
                  f"cff beats ff at the same network and budget: **{'PASS' if rs['cff']['mean'] > rs['ff']['mean'] else 'SHORT'}** "
                  f"({rs['ff']['seeds']} seed(s): weak evidence, the gap may be within seed noise). "
                  'Time to 89 % test accuracy: "not reached" means not within this budget. '
                  'Published (4x2000, 60 epochs): FF 89.63 %, BP 88.88 % (Spyra & Dzwinel); '
                  'CFF error 11.6 % vs FF 13.2 % (Lorberbom et al., secondary source). '
                  f"Budget here: {rs['ff']['epochs']} epochs × {rs['ff']['seeds']} seed(s) of 2x1000, "
                  'the most that fit beside the other jobs; the acceptance asks 4x2000 at the '
                  'published budget, so the accuracy figure stays open.', '']
    if 'fmnist_4x2000' in res:
        lines += wide_lines(res['fmnist_4x2000'])
    if 'wide_select' in res:
        sel = res['wide_select']
        lines += ['### 4x2000: ff picks its learning rate on a validation split', '',
                  f"ff trained on the first {60000 - sel['n_val']:,} training images and was scored "
                  f"on the last {sel['n_val']:,} (never the test set), {sel['epochs']} epochs, "
                  f"{sel['seeds']} seeds, Adam with cosine decay; machine {sel['machine']} "
                  f"({sel['date']}). Command: `python -m experiments.benchmarks.ff --parts=wide_select "
                  f"--wide_epochs={sel['epochs']} --wide_seeds={sel['seeds']} --wide_limit=0`.", '',
                  '| lr | validation accuracy |', '|---|---|']
        lines += [f"| {r['lr']:g} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} % |" for r in sel['runs']]
        lines += ['', f"Picked: lr {sel['chosen_lr']:g}. Test accuracy at the pick (all 60,000 "
                  'training images):', '']
        rows = res.get('fmnist_4x2000_selected', [])
        lines += ['| rule | lr | test accuracy | epoch s | s to 89% test |', '|---|---|---|---|---|']
        for r in rows:
            lines.append(f"| {r['rule']} | {r['lr']:g} | {_acc(r)} | "
                         f"{r['train_seconds'] / r['epochs']:.2f} | {_t89(r)} |")
        by = {r['rule']: r for r in rows}
        first = {r['rule']: r for r in res.get('fmnist_4x2000', [])}
        if {'ff', 'cff'} <= set(by) and {'ff', 'cff'} <= set(first) and \
                all(first[n]['lr'] == by[n]['lr'] for n in ('ff', 'cff')):
            gaps = [100 * (d['cff']['mean'] - d['ff']['mean']) for d in (first, by)]
            lines += ['', 'The pick is the setting of the 4x2000 table above, so these rows measure '
                      'it a second time (GPU reductions are not deterministic): ff '
                      f"{100 * first['ff']['mean']:.2f} then {100 * by['ff']['mean']:.2f} %; "
                      f'cff − ff {gaps[0]:+.2f} then {gaps[1]:+.2f} points. '
                      + ('cff beats ff in both runs.' if min(gaps) > 0 else
                         'cff does not beat ff in both runs: **SHORT** (the difference is within '
                         'run-to-run noise).')]
        if 'ff' in by:
            lines += ['', f"ff ≥ 89.6 % at its validated learning rate: "
                      f"**{'PASS' if by['ff']['mean'] >= 0.896 else 'SHORT'}**"
                      + (f"; cff beats ff: **{'PASS' if by['cff']['mean'] > by['ff']['mean'] else 'SHORT'}**"
                         if 'cff' in by else '') + '.']
        lines.append('')
    if 'fmnist_4x2000' not in res and not res.get('quick'):
        lines += ['### Fashion-MNIST, MLP 4x2000', '',
                  'Not run: on this shared 2-core machine one 4x2000 FF epoch takes about 10 min '
                  '(estimated from a 2,048-image smoke run), so 60 epochs × 3 seeds (~30 h) do not '
                  'fit. **SHORT** (not measured). The step-time ratio above is the speed figure; '
                  '`--parts=wide` runs one epoch on 10,000 images of bp and ff by default; '
                  '`--wide_epochs=60 --wide_limit=0 --wide_seeds=3 --wide_rules=bp,ff,cff` is '
                  'the published budget.', '']
    for key, title in (('datasets', 'Built-in small data sets'), ('cnn_fmnist', 'CNN (conv FF, class groups), Fashion-MNIST')):
        if key in res:
            lines += [f'### {title}', '', '| data | model | rule | settings | train images | epochs | test accuracy |',
                      '|---|---|---|---|---|---|---|']
            for r in res[key]:
                kw = ', '.join(f'{k}={v}' for k, v in r['kwargs'].items()) or 'defaults'
                lines.append(f"| {r['dataset']} | {' '.join(r['model'])} | {r['rule']} | {kw} | "
                             f"{r['train_limit'] or 'all'} | {r['epochs']} | {_acc(r)} |")
            lines.append('')
            if key == 'datasets':
                best = {}
                for r in res[key]:
                    if r['rule'] != 'bp':
                        best[r['dataset']] = max(best.get(r['dataset'], 0), r['mean'])
                lines += ['Well above chance (10 %; taken as ≥ 3× chance, 30 %) for every data set: '
                          + ', '.join(f"{d} {100 * v:.1f} % **{'PASS' if v >= 0.3 else 'SHORT'}**"
                                      for d, v in best.items())
                          + '. MNIST-1D\'s first 10 values are signal, which the supervised '
                          'label embedding overwrites; the class-group mode needs no embedding. '
                          'Published MNIST-1D MLP: 68 % (Greydanus).', '']
            else:
                ff_r = [r for r in res[key] if r['rule'] == 'ff'][0]
                lines += [f"Conv FF trains the CNN: **{'PASS' if ff_r['mean'] >= 0.3 else 'SHORT'}** "
                          '(every conv and dense hidden layer has its own class-group loss; the '
                          'logits layer is unused).', '']
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    app.run(main)
