"""Checkpoint overhead: saving every epoch vs only at the end, Fashion-MNIST MLP 2x1000.

  python -m experiments.benchmarks.checkpoint [--epochs=3 --repeats=2] [--quick]

Runs `neurokit.experiment.run` with the bp config (784-1000-1000-10, Adam, batch
128) with `checkpoint_every=1` and `checkpoint_every=0` (only the final
checkpoint), interleaved `--repeats` times in one process. Two figures:
  * direct: time spent inside all checkpoint saves of the every-epoch run
    (the final one included), divided by the rest of its training loop
    (train + eval + metrics): the cost of checkpointing every epoch vs never;
  * A/B: loop time of the every-epoch run over that of the final-only run,
    minus 1 (noisier: the machine is shared).
Acceptance (issue #9): overhead <= 10%.
Writes experiments/benchmarks/results/checkpoint.{json,md}.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import tempfile

import jax
from absl import app, flags

from experiments.configs import bp
from neurokit.experiment import run

_EPOCHS = flags.DEFINE_integer('epochs', 3, 'Epochs per run.')
_REPEATS = flags.DEFINE_integer('repeats', 2, 'Interleaved repeats of each variant.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smoke run: 1 epoch on 6000 examples, 1 repeat.')
_OUT = flags.DEFINE_string('out', 'experiments/benchmarks/results', 'Results folder.')

THRESHOLD = 0.10


def measure(epochs, repeats, train_limit=0):
    rows = []
    root = tempfile.mkdtemp(prefix='nk_ckpt_bench_')
    try:
        for r in range(repeats):
            for every in (1, 0):
                config = bp.get_config()
                config.epochs, config.checkpoint_every, config.train_limit = epochs, every, train_limit
                config.tensorboard, config.progress = False, 'off'
                workdir = os.path.join(root, f'r{r}_every{every}')
                s = run(config, workdir)
                size = sum(os.path.getsize(os.path.join(d, f))
                           for d, _, fs in os.walk(os.path.join(workdir, 'checkpoints')) for f in fs)
                rows.append({'repeat': r, 'checkpoint_every': every,
                             'train_seconds': s['train_seconds'],
                             'checkpoint_seconds': s['checkpoint_seconds'],
                             'loop_seconds': s['loop_seconds'],
                             'wall_seconds': s['wall_seconds'],
                             'compile_seconds': s['compile_seconds'],
                             'test_accuracy': s['test_accuracy'],
                             'checkpoint_bytes': size})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def summarize(rows, epochs):
    every = [r for r in rows if r['checkpoint_every'] == 1]
    final = [r for r in rows if r['checkpoint_every'] == 0]
    # direct, conservative: all E saves (the final one included) over the loop without them
    direct = [r['checkpoint_seconds'] / (r['loop_seconds'] - r['checkpoint_seconds'])
              for r in every]
    ab = [a['loop_seconds'] / b['loop_seconds'] - 1 for a, b in zip(every, final)]
    per_save = [r['checkpoint_seconds'] / epochs for r in every]
    return {'direct_overhead_median': statistics.median(direct), 'direct_overhead': direct,
            'ab_overhead_median': statistics.median(ab), 'ab_overhead': ab,
            'seconds_per_save_median': statistics.median(per_save),
            'epoch_seconds_median': statistics.median(r['train_seconds'] / epochs for r in rows),
            'checkpoint_mbytes': every[0]['checkpoint_bytes'] / 2**20 / min(3, epochs)}


def write(out, rows, stats, epochs, repeats, quick):
    os.makedirs(out, exist_ok=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    cmd = ('python -m experiments.benchmarks.checkpoint'
           + (' --quick' if quick else f' --epochs={epochs} --repeats={repeats}'))
    passed = stats['direct_overhead_median'] <= THRESHOLD
    record = {'command': cmd, 'date': date, 'jax': jax.__version__,
              'machine': '2-core CPU (no GPU), shared', 'epochs': epochs, 'repeats': repeats,
              'quick': quick, 'threshold': THRESHOLD, 'pass': passed, 'rows': rows, **stats}
    with open(os.path.join(out, 'checkpoint.json'), 'w') as f:
        json.dump(record, f, indent=2)
    pct = lambda v: f'{100 * v:+.1f}%'
    md = f"""## Checkpoints

Checkpoint overhead of saving every epoch (orbax, synchronous, whole TrainState:
params + Adam state + key + step, {stats['checkpoint_mbytes']:.1f} MiB per checkpoint) on the
Fashion-MNIST MLP 784-1000-1000-10 (bp config, batch 128), {epochs} epochs per run,
{repeats} interleaved repeat(s) of every-epoch vs final-only checkpoints.

- Command: `{cmd}`
- Machine: 2-core CPU (no GPU), shared with other jobs (timings are noisy); date {date}; jax {jax.__version__}
- Training epoch (median): {stats['epoch_seconds_median']:.1f} s; one save (median): {stats['seconds_per_save_median']:.2f} s
- Overhead, direct (time inside all saves / rest of the training loop, median of {len(stats['direct_overhead'])}):
  **{pct(stats['direct_overhead_median'])}** (runs: {', '.join(pct(v) for v in stats['direct_overhead'])})
- Overhead, A/B (loop wall time every-epoch / final-only - 1, median):
  {pct(stats['ab_overhead_median'])} (runs: {', '.join(pct(v) for v in stats['ab_overhead'])}); dominated by machine noise
- Published figure: none (infrastructure); acceptance: <= +10%
- Verdict: **{'PASS' if passed else 'SHORT'}** (direct figure{'; quick smoke run, not the acceptance measurement' if quick else ''})
"""
    with open(os.path.join(out, 'checkpoint.md'), 'w') as f:
        f.write(md)
    print(md)


def main(argv):
    del argv
    epochs, repeats, limit = _EPOCHS.value, _REPEATS.value, 0
    if _QUICK.value:
        epochs, repeats, limit = 2, 1, 6000
    rows = measure(epochs, repeats, limit)
    write(_OUT.value, rows, summarize(rows, epochs), epochs, repeats, _QUICK.value)


if __name__ == '__main__':
    app.run(main)
