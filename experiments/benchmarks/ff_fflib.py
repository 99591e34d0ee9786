"""Forward-forward peer benchmark: neurokit's ff vs fflib 0.3.0 (PyTorch), same network and data.

  python -m experiments.benchmarks.ff_fflib            # 784(+10)-1000-1000, batch 128, F-MNIST
  python -m experiments.benchmarks.ff_fflib --quick    # tiny smoke run (writes /tmp)

fflib runs in its own virtualenv (`--fflib_python`, default .venvs/fflib; see
BUILD_NOTES) as a long-lived child process (experiments/benchmarks/ff_fflib_runner.py)
that trains `--steps` batches each time it is told to; neurokit's ff and bp
(one compiled `lax.scan` over the same `--steps` batches, Adam 1e-3) run in this
process. Each repeat times bp, ff and fflib in turn (interleaved), so load on the
shared machine hits all alike; figures are medians. Both sides see the same
Fashion-MNIST images; the label is one-hot: fflib appends it (794 inputs),
neurokit's ff writes it into the first 10 pixels (its default). fflib's FFNet has
no output layer (prediction by goodness), neurokit's MLP keeps a 1000->10 layer
that ff does not train. Skipped, with a message in results/fflib.md, when the
venv is absent. Writes experiments/benchmarks/results/fflib.{json,md}.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
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

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny smoke run: checks the script, not the numbers.')
_PY = flags.DEFINE_string('fflib_python', '.venvs/fflib/bin/python', 'Python of the fflib venv.')
_STEPS = flags.DEFINE_integer('steps', 40, 'Batches per timed call.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Interleaved repeats (after one warm-up call).')
_HIDDEN = flags.DEFINE_list('hidden', ['1000', '1000'], 'Hidden widths (fflib: equal widths).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Batch size.')

NAME = 'fflib'
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ff_fflib_runner.py')


def _neurokit_call(rule_name, model, x, y, bs):
    """A timer of one compiled pass over (x, y) (x.shape[0] // bs steps), state carried on."""
    rule = registry.build(rule_name, model)
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    epoch = jax.jit(train.make_epoch(rule, opt, bs)).lower(state, x, y, 0).compile()
    box = {'state': state, 'i': 0}

    def call():
        box['i'] += 1
        box['state'], _ = epoch(box['state'], x, y, box['i'])
        jax.block_until_ready(box['state'])
    evaluate = jax.jit(train.make_evaluate(rule, 1000))
    return call, lambda xt, yt: float(evaluate(box['state'].params, box['state'].rule_state, xt, yt))


class _Peer:
    """The fflib child process."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('fflib runner died: ' + self.proc.stderr.read()[-3000:])
        return json.loads(line)

    def ask(self, cmd):
        self.proc.stdin.write(cmd + '\n')
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.proc.stdin.write('quit\n')
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


def measure(quick):
    hidden = (64, 64) if quick else tuple(int(h) for h in _HIDDEN.value)
    steps, repeats, bs = (5, 2, 32) if quick else (_STEPS.value, _REPEATS.value, _BATCH.value)
    if len(set(hidden)) != 1:
        raise app.UsageError('fflib runner takes equal hidden widths')
    ds = data_lib.load('fashion_mnist')
    n, n_test = steps * bs, (1000 if quick else 10000)
    tmp = tempfile.mkdtemp(prefix='nk-fflib-')
    path = os.path.join(tmp, 'data.npz')
    np.savez(path, x_train=ds.x_train[:n], y_train=ds.y_train[:n], x_test=ds.x_test[:n_test],
             y_test=ds.y_test[:n_test])
    cmd = [_PY.value, RUNNER, f'--data={path}', f'--hidden={hidden[0]}', f'--layers={len(hidden)}',
           f'--batch={bs}', f'--steps={steps}']
    model = models.mlp(ds.input_shape, ds.num_classes, hidden)
    x, y = jnp.asarray(ds.x_train[:n]), jnp.asarray(ds.y_train[:n])
    xt, yt = jnp.asarray(ds.x_test[:n_test]), jnp.asarray(ds.y_test[:n_test])
    calls, evals = {}, {}
    for r in ('bp', 'ff'):
        calls[r], evals[r] = _neurokit_call(r, model, x, y, bs)
    peer = _Peer(cmd)
    try:
        calls['fflib'] = lambda: peer.ask('run')['seconds']
        for fn in calls.values():
            fn()  # warm-up (neurokit: compiled already; torch: allocator, threads)
        times = {k: [] for k in calls}
        for _ in range(repeats):
            for k, fn in calls.items():
                t0 = time.perf_counter()
                inner = fn()
                wall = time.perf_counter() - t0
                # fflib: the child's own clock (excludes the pipe round trip)
                times[k].append(inner if k == 'fflib' else wall)
        acc = {k: ev(xt, yt) for k, ev in evals.items()}
        acc['fflib'] = peer.ask('eval')['test_accuracy']
    finally:
        peer.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    sps = {k: n / v for k, v in med.items()}
    return {'network': f'MLP 784-{"-".join(map(str, hidden))} (+10 label inputs in fflib; '
                       f'neurokit keeps a {hidden[-1]}->10 layer that ff does not train)',
            'hidden': list(hidden), 'batch_size': bs, 'steps_per_call': steps, 'repeats': repeats,
            'seconds_per_call': times, 'median_seconds_per_call': med, 'samples_per_second': sps,
            'ff_over_fflib': sps['ff'] / sps['fflib'], 'ff_time_over_bp': med['ff'] / med['bp'],
            'test_accuracy_after_timing': acc, 'test_images': n_test,
            'trained_steps': steps * (repeats + 1),
            'torch': peer.info.get('torch'), 'fflib': peer.info.get('fflib'),
            'torch_threads': peer.info.get('threads'), 'fflib_command': ' '.join(cmd)}


def markdown(res):
    lines = ['## Forward-forward peer: fflib', '',
             f"- Command: `{res['command']}`", f"- Machine: {res['machine']}",
             f"- Date: {res['date']}", f"- Versions: jax {res['jax']}, python {res['python']}"
             + (f", torch {res['torch']}, fflib {res['fflib']}" if res.get('torch') else ''), '']
    if res.get('quick'):
        lines += ['**Smoke run (--quick): tiny sizes, the numbers mean nothing.**', '']
    if not res.get('available'):
        lines += [f"Skipped: {res['skipped']}", '']
        return '\n'.join(lines)
    s = res['samples_per_second']
    a = res['test_accuracy_after_timing']
    lines += [f"{res['network']}; batch {res['batch_size']}; Fashion-MNIST; {res['steps_per_call']} "
              f"batches per timed call, {res['repeats']} interleaved repeats after a warm-up, medians. "
              'neurokit: one compiled `lax.scan` over the batches (Adam 1e-3, ff with its '
              "constructor's defaults); fflib: its `FFNet.run_train_combined` per batch in a Python "
              "loop (per-layer Adam lr 0.02, goodness threshold 20, as in fflib's MNIST example; "
              f"torch with {res['torch_threads']} threads), timed by the child process's own clock.",
              '',
              '| implementation | samples/s | test accuracy after the timed steps |', '|---|---|---|',
              f"| neurokit bp (twin) | {s['bp']:.0f} | {100 * a['bp']:.1f} % |",
              f"| neurokit ff | {s['ff']:.0f} | {100 * a['ff']:.1f} % |",
              f"| fflib ff | {s['fflib']:.0f} | {100 * a['fflib']:.1f} % |", '',
              f"neurokit ff / fflib throughput: **{res['ff_over_fflib']:.2f}×**; neurokit ff / bp "
              f"time: {res['ff_time_over_bp']:.2f}. Accuracies are after only "
              f"{res['trained_steps']} training steps on {res['test_images']} test images, not an "
              'accuracy figure' + (
                  f"; fflib (prediction by its TryAllClasses rule: the label with the highest summed "
                  f"goodness) has not left chance level ({100 * a['fflib']:.1f} %) by then; its own "
                  'MNIST example trains 60 epochs' if a['fflib'] < 0.2 else '') + '. '
              'The two FF variants differ '
              '(fflib: softplus goodness loss per sample around a threshold, unit-norm inputs; '
              "neurokit's default: SymBa loss, rms-normalised inputs), so the ratio compares "
              'implementations of the same network shape and batch, not identical arithmetic.', '']
    return '\n'.join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}')
    quick = _QUICK.value
    res = common.run_facts('ff_fflib', quick)
    stored = common.load(NAME)
    if not os.path.exists(_PY.value) and not quick and stored.get('available'):
        # a missing venv must not replace figures measured with it
        print(f'no fflib virtualenv at {_PY.value}: keeping the figures of {stored.get("date")} '
              f'in results/{NAME}.json (see BUILD_NOTES to install it)')
        return
    if not os.path.exists(_PY.value):
        res.update(available=False, skipped=f'no fflib virtualenv at {_PY.value} (see BUILD_NOTES: '
                   'python -m venv .venvs/fflib; pip install torch==2.13.0 tqdm; '
                   'pip install --no-deps fflib==0.3.0)')
        print(res['skipped'])
    else:
        t0 = time.perf_counter()
        res.update(measure(quick), available=True)
        res['wall_seconds'] = time.perf_counter() - t0
    md = markdown(res)
    common.write(NAME, res, md, quick=quick)
    print(md)


if __name__ == '__main__':
    app.run(main)
