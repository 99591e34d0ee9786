"""Core acceptance figures: backprop accuracy on three data sets, scanned vs Python-loop epochs.

  python -m experiments.benchmarks.core            # full (about 15 min on 2 cores)
  python -m experiments.benchmarks.core --quick    # smoke run (1 epoch)

Writes experiments/benchmarks/results/core.{json,md}.
"""
from __future__ import annotations

import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from experiments.benchmarks import common
from experiments.configs import bp as bp_config
from neurokit import data as data_lib
from neurokit import experiment, train

_QUICK = flags.DEFINE_bool('quick', False, 'One epoch per figure: checks the script, not the numbers.')
_ONLY = flags.DEFINE_list('only', [], 'Subset of: fashion_mnist, digits, mnist1d, speed.')

# (dataset, overrides, threshold, published)
ACCURACY = {
    'fashion_mnist': ({'epochs': 20, 'num_seeds': 3}, 0.89, 'tuned 2x1000 BP MLP 89.13%'),
    'digits': ({'epochs': 30, 'num_seeds': 3, 'batch_size': 64}, 0.97, 'no standard MLP figure'),
    'mnist1d': ({'epochs': 60, 'num_seeds': 3, 'batch_size': 100, 'model.hidden': (100, 100),
                 'optimizer.learning_rate': 1e-2, 'optimizer.weight_decay': 0.0},
                0.62, 'MLP 68% (Greydanus 2020)'),
}


def _config(dataset, overrides):
    config = bp_config.get_config()
    config.dataset = dataset
    config.update_from_flattened_dict(overrides)
    return config


def accuracy(dataset, quick):
    overrides, threshold, published = ACCURACY[dataset]
    overrides = dict(overrides, **({'epochs': 1} if quick else {}))
    config = _config(dataset, overrides)
    summary = experiment.run(config, common.fresh_workdir(f'bp-{dataset}'))
    accs = summary['test_accuracy']
    accs = accs if isinstance(accs, list) else [accs]
    flag_str = ' '.join(f'--config.{k}={v}'.replace(' ', '') for k, v in overrides.items())
    return {
        'dataset': dataset, 'accuracies': accs, 'mean': statistics.fmean(accs),
        'threshold': threshold, 'published': published, 'epochs': config.epochs,
        'model': f'mlp {tuple(config.model.hidden)}', 'train_seconds': summary['train_seconds'],
        'command': f'python -m experiments.train --config=experiments/configs/bp.py '
                   f'--workdir=DIR --config.dataset={dataset} {flag_str}',
        'pass': statistics.fmean(accs) >= threshold,
    }


def scan_vs_loop(quick):
    """Samples/s of one F-MNIST epoch: scanned epoch vs the same jitted step from Python."""
    config = bp_config.get_config()
    ds = data_lib.load('fashion_mnist')
    model, rule, optimizer = experiment.build(config, ds)
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    bs = config.batch_size
    state0 = train.init_state(jax.random.PRNGKey(0), model, rule, optimizer)
    epoch = jax.jit(train.make_epoch(rule, optimizer, bs))
    step = jax.jit(train.make_train_step(rule, optimizer))
    order = np.asarray(train.epoch_order(state0.key, 0, x.shape[0], bs))

    def run_scan():
        s, _ = epoch(state0, x, y, 0)
        jax.block_until_ready(s)

    def run_loop():
        s = state0
        for idx in order:  # the batch gather happens on device, as in the scan
            s, _ = step(s, {'x': x[idx], 'y': y[idx]})
        jax.block_until_ready(s)

    run_scan(), run_loop()  # compile both
    times = common.interleaved({'scan': run_scan, 'loop': run_loop}, 1 if quick else 5)
    n = order.size
    return {'scan_samples_per_second': n / times['scan'], 'loop_samples_per_second': n / times['loop'],
            'ratio_scan_over_loop': times['loop'] / times['scan'],
            'pass': times['scan'] <= times['loop'], 'repeats': 1 if quick else 5}


def _markdown(results, command):
    lines = ['## Core: backprop baseline and the compiled epoch', '', common.header(command)]
    if 'accuracy' in results:
        lines += ['| data set | model | epochs | seeds | test accuracy % (mean ± std) | threshold | published | verdict |',
                  '|---|---|---|---|---|---|---|---|']
        for r in results['accuracy']:
            lines.append(f"| {r['dataset']} | {r['model']} | {r['epochs']} | {len(r['accuracies'])} | "
                         f"{common.mean_std(r['accuracies'])} | ≥ {100 * r['threshold']:.0f} | "
                         f"{r['published']} | {'PASS' if r['pass'] else 'SHORT'} |")
        lines += ['', 'Each row: Adam 1e-3 (MNIST-1D: 1e-2), batch 128 (digits 64, MNIST-1D 100); '
                  'seeds trained as one vmapped program. Row commands:', '']
        lines += [f"- `{r['command']}`" for r in results['accuracy']]
        lines.append('')
    if 'speed' in results:
        s = results['speed']
        lines += ['Scanned epoch vs the same jitted step driven from a Python loop (Fashion-MNIST, '
                  f"MLP 784-1000-1000-10, batch 128, median of {s['repeats']} interleaved epochs):", '',
                  '| driver | samples/s |', '|---|---|',
                  f"| `lax.scan` epoch | {s['scan_samples_per_second']:.0f} |",
                  f"| Python loop of jitted steps | {s['loop_samples_per_second']:.0f} |", '',
                  f"Ratio scan/loop throughput: **{s['ratio_scan_over_loop']:.3f}×** "
                  f"({'PASS' if s['pass'] else 'SHORT'}: the scanned epoch must be at least as fast).", '']
    return '\n'.join(lines)


def main(argv):
    del argv
    only = set(_ONLY.value) or {'fashion_mnist', 'digits', 'mnist1d', 'speed'}
    # Parts not re-run keep their stored figures (a partial run must not drop a row).
    results = {} if _QUICK.value else common.load('core')
    acc = [accuracy(d, _QUICK.value) for d in ('fashion_mnist', 'digits', 'mnist1d') if d in only]
    if acc:
        kept = [r for r in results.get('accuracy', []) if r['dataset'] not in only]
        order = ('fashion_mnist', 'digits', 'mnist1d')
        results['accuracy'] = sorted(kept + acc, key=lambda r: order.index(r['dataset']))
    if 'speed' in only:
        results['speed'] = scan_vs_loop(_QUICK.value)
    command = 'python -m experiments.benchmarks.core' + ' '.join([''] + sys.argv[1:])
    if not _QUICK.value:
        common.write('core', results, _markdown(results, command))
    print(_markdown(results, command))


if __name__ == '__main__':
    app.run(main)
