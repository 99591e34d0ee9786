"""One command regenerates the benchmark results and BENCHMARKS.md.

  python -m experiments.benchmarks.suite --part=cpu             # < 60 min estimated on 2 cores
  python -m experiments.benchmarks.suite --part=gpu             # one 10-minute GPU device run
  python -m experiments.benchmarks.suite --part=long --only=mf  # the long reproductions, one family
  python -m experiments.benchmarks.suite --part=cpu --dry_run   # print the plan and its estimate

The plan is a list of steps (module, flags, estimated minutes), run one at a
time as subprocesses (`python -m <module> <flags>`), then
`experiments.benchmarks.report` rebuilds BENCHMARKS.md and the plots. Every
family entrypoint merges its parts into its results JSON (core, ff, mf, pc, fa,
parallel's matrix) or rewrites it (checkpoint, memory, fflib), so the cpu part
refreshes the cheap figures while the long accuracy reproductions keep the
figures of their own (separate) commands.

Estimates are read from the times recorded in the results JSONs (train_seconds,
wall and per-step times, scaled to the step's budget) plus a fixed compile
allowance; those were measured on a 2-core CPU shared with up to eight other
jobs, so on a quiet machine they are upper bounds. Steps with nothing recorded
use a stated guess.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable

from absl import app, flags

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo

_PART = flags.DEFINE_enum('part', 'cpu', ['cpu', 'gpu', 'long'], 'Which plan to run.')
_DRY = flags.DEFINE_bool('dry_run', False, 'Print the plan and its summed estimate; run nothing.')
_ONLY = flags.DEFINE_list('only', [], 'Run only the steps of these modules (short names: ff, mf, ...).')
_KEEP_GOING = flags.DEFINE_bool('keep_going', True, 'Run the remaining steps after a failure.')

COMPILE_MIN = 0.3  # allowance per compiled program (CPU compiles took 8-18 s when recorded)
BUDGET_MIN = {'cpu': 60.0, 'gpu': 10.0}


def _json(name):
    path = os.path.join(RESULTS, f'{name}.json')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


@dataclasses.dataclass(frozen=True)
class Step:
    module: str                      # python -m <module>
    flags: tuple                     # its command-line flags
    estimate: Callable[[], tuple]    # -> (minutes, how the estimate was made)
    part: str                        # 'cpu', 'gpu' or 'long'
    note: str = ''
    python: str = ''                 # interpreter ('' = this one), e.g. a venv with extra plugins

    @property
    def name(self):
        return self.module.rsplit('.', 1)[-1]

    @property
    def command(self):
        return ' '.join([self.python or 'python', '-m', self.module, *self.flags])


# ---------------------------------------------------------------- estimates (minutes, basis)

def _est_core_small_speed():
    acc = {r['dataset']: r for r in _json('core').get('accuracy', [])}
    s = sum(acc[d]['train_seconds'] for d in ('digits', 'mnist1d') if d in acc)
    sp = _get(_json('core'), 'speed')
    if sp:  # 2 warm-up epochs + 5 interleaved repeats of (scan epoch, loop epoch), 60000 images
        s += 6 * (60000 / sp['scan_samples_per_second'] + 60000 / sp['loop_samples_per_second'])
    else:
        s += 600
    return s / 60 + 4 * COMPILE_MIN, ('core.json train_seconds (digits, mnist1d) + 6 x (scan + loop) '
                                      'F-MNIST epochs at the recorded samples/s')


def _est_core_full():
    acc = _json('core').get('accuracy', [])
    m, basis = _est_core_small_speed()
    fm = sum(r['train_seconds'] for r in acc if r['dataset'] == 'fashion_mnist') or 2700
    return m + fm / 60, 'core.json train_seconds (all rows) + the speed part'


def _on_cpu(row):
    """Rows measured on a CPU (older rows carry no machine): the estimates are CPU minutes."""
    return 'CPU' in row.get('machine', 'CPU')


def _ff_rows(key, rules=None):
    return [r for r in _json('ff').get(key, []) if (rules is None or r['rule'] in rules)
            and _on_cpu(r)]


def _est_ff_cpu():
    ff = _json('ff')
    s = 0.0
    sp = ff.get('speed')
    s += (6 * 40 * sum(sp['median_step_seconds'].values())) if sp else 120
    for key in ('datasets', 'cnn_fmnist'):
        rows = _ff_rows(key)
        s += sum(r['train_seconds'] + r['compile_seconds'] + 5 for r in rows) if rows else 300
    return s / 60 + 3 * COMPILE_MIN, ('ff.json: (5+1) x 40 steps x median step times; train_seconds + '
                                      'compile_seconds of the datasets and cnn (2,048 images, 1 epoch) '
                                      'rows')


def _est_ff_long():
    rows = _ff_rows('fmnist_2x1000', ('bp', 'ff', 'cff'))
    per_epoch = sum(r['train_seconds'] / r['epochs'] for r in rows) or 150
    wide = _ff_rows('fmnist_4x2000')
    per_image = sum(r['train_seconds'] / (r['epochs'] * (r['train_limit'] or 60000)) for r in wide)
    per_image = per_image * 3 / len(wide) if wide else 0.01  # bp+ff+cff
    return ((per_epoch * 60 * 3 + per_image * 60000 * 60 * 3) / 60,
            'ff.json seconds per epoch (bp+ff+cff) of fmnist_2x1000, and per image of fmnist_4x2000, '
            'x 60 epochs x 3 seeds')


def _est_ff_select():
    per_image = 0.01  # a 4x2000 ff epoch: ~10 min per seed on 2 cores
    return per_image * 60000 * 60 * 3 * 5 / 60, ('4x2000 ff: ~0.01 s per image and seed on 2 cores x '
                                                '60 epochs x 3 seeds x (3 validation + 2 test runs)')


def _est_mf_cpu():
    mf = _json('mf')
    s = 0.0
    sp = mf.get('speed')
    s += 10 * 20 * sum(sp['median_step_seconds'].values()) if sp else 60
    for key in ('accuracy_digits', 'accuracy_mnist1d'):
        s += sum(_get(mf, key, r, 'train_seconds', default=60) for r in ('mf', 'bp'))
    return s / 60 + 6 * COMPILE_MIN, ('mf.json: (9+1) x 20 steps x median step times; train_seconds of '
                                      'the digits and MNIST-1D pairs')


def _est_mf_long():
    mf = _json('mf')
    s = sum(_get(mf, 'accuracy_mlp', r, 'train_seconds', default=2000) * 5
            / _get(mf, 'accuracy_mlp', r, 'num_seeds', default=5) for r in ('mf', 'bp'))
    return s / 60, 'mf.json accuracy_mlp train_seconds scaled to 5 seeds for both rules'


def _est_mf_cnn():
    mf = _json('mf')
    s = sum(_get(mf, 'accuracy_cnn', r, 'train_seconds', default=800) for r in ('mf', 'bp'))
    return s / 60, 'mf.json accuracy_cnn train_seconds of both rules'


def _est_mf_grid(epochs, lrs, wds=(0.0,), tested=False):
    """A `--part=select` call that adds the settings `lrs` x `wds` at `epochs` (both rules):
    its stored run seconds, plus the test pair's when that call changed the picks."""
    mf = _json('mf')
    runs = {(r['rule'], r['learning_rate'], r.get('weight_decay', 0.0)): r['seconds']
            for r in _get(mf, 'select', 'runs', default=[]) if r['epochs'] == epochs}
    s = sum(runs.get((rule, lr, wd), 400 * epochs / 40) for rule in ('mf', 'bp') for lr in lrs
            for wd in wds)
    if tested:
        s += sum(_get(mf, 'accuracy_mlp_selected', r, 'train_seconds', default=700)
                 for r in ('mf', 'bp'))
    return s / 60, 'mf.json select run seconds' + (' + the test pair\'s' if tested else '')


def _est_mf_val(i):
    runs = _get(_json('mf'), 'val', 'runs', default=[])
    if len(runs) > i:
        return runs[i]['seconds'] / 60, 'mf.json val run seconds'
    return 10.0, 'not recorded; guess 10 min'


def _est_pc_cpu():
    pc = _json('pc')
    s = 120.0  # oracle: 16 programs of 500 activity steps (not recorded; guess)
    sp = pc.get('speed')
    if sp:  # 2 repeats of 150 batches of 128 for pc and bp, plus one PCX process (~20 s) each
        n = 150 * 128
        s += 2 * (n / sp['samples_per_second_median']['pc'] + n / sp['samples_per_second_median']['bp'] + 20)
    else:
        s += 120
    for key in ('accuracy_digits', 'accuracy_mnist1d'):
        s += sum(_get(pc, key, r, 'train_seconds', default=30) for r in ('pc', 'bp'))
    return s / 60 + 8 * COMPILE_MIN, ('pc.json: speed at the recorded samples/s (2 repeats, PCX process '
                                      '~20 s each); train_seconds of digits/MNIST-1D; oracle guessed '
                                      'at 2 min')


def _est_pc_long():
    pc = _json('pc')
    a = pc.get('accuracy_mlp128', {})
    s = sum(_get(a, r, 'train_seconds', default=450) * 3 / _get(a, r, 'num_seeds', default=3)
            for r in ('pc', 'bp', 'ipc'))
    s += sum(v['seconds'] for v in _get(pc, 'val', 'runs', default=[]))
    s += 2 * 3 * 20 * 60 + 2 * 3 * 10 * 150  # cnn (13+ min per pc epoch seen) and 2x1000 (guess)
    return s / 60, ('pc.json accuracy_mlp128 train_seconds (ipc scaled to 3 seeds) + val runs; cnn and '
                    'wide (2x1000) guessed from the notes in pc.py (not finished when tried)')


def _est_fa_cpu():
    fa = _json('fa')
    s = 60.0  # oracle (not recorded; guess)
    sp = fa.get('speed')
    s += (2 + 1) * 3 * sum(sp['step_seconds'].values()) if sp else 60
    bt = fa.get('biotorch')
    if bt and bt.get('biotorch_wall_seconds'):  # torch's share scales with (repeats+1) x steps
        done = (bt['repeats'] + 1) * bt['steps_per_call']
        s += bt['biotorch_wall_seconds'] * (2 + 1) * 3 / done
    else:
        s += 300
    return s / 60 + 7 * COMPILE_MIN, ('fa.json: BioTorch wall time scaled to (2+1) x 3 steps; speed step '
                                      'times; oracle guessed at 1 min')


def _est_fa_long(rules=7, epochs=15):
    acc = _get(_json('fa'), 'accuracy', default={})
    per = [r['train_seconds'] / (r['epochs'] * (r['train_limit'] or 60000) * r['seeds'])
           for r in acc.values() if r['model'] == 'lenet' and _on_cpu(r)]
    per_sample = sum(per) / len(per) if per else 0.007
    return rules * per_sample * epochs * 60000 * 3 / 60, (
        f'fa.json accuracy: mean seconds per training image and seed (lenet) x {rules} rules x '
        f'{epochs} epochs x 60,000 x 3 seeds')


def _est_parallel(members, repeats, matrix):
    p = _json('parallel')
    s1 = _get(p, 'seeds', 'seconds_1', default=90)
    s8 = _get(p, 'seeds', 'seconds_8', default=700)
    per_member = (s8 - s1) / 7 if s8 > s1 else s1
    s = repeats * (s1 + s1 + per_member * (members - 1)) + 60
    if matrix:
        s += _get(p, 'equality', 'wall_seconds', default=1200)
    return s / 60, ('parallel.json: 1-seed epoch + per-member increment from the 8-seed epoch'
                    + (' + the recorded equality-matrix wall time' if matrix else ''))


def _est_checkpoint(epochs, repeats):
    c = _json('checkpoint')
    rows = c.get('rows', [])
    if rows:
        wall = sum(r['wall_seconds'] for r in rows) / len(rows)
        per_epoch = c['epoch_seconds_median']
        run = wall - (c['epochs'] - epochs) * per_epoch
    else:
        run = 150
    return 2 * repeats * run / 60, 'checkpoint.json: mean run wall time scaled to the epochs'


def _est_memory():
    m = _json('memory')
    return (m.get('wall_seconds', 420) / 60 + 0.3,
            'memory.json wall_seconds' if m else 'not recorded; guess 7 min')


def _est_fflib():
    f = _json('fflib')
    if f.get('wall_seconds'):
        return f['wall_seconds'] / 60 + 0.2, 'fflib.json wall_seconds'
    return 3.0, 'not recorded; guess 3 min'


def _est_gpu():
    g = _json('gpu')
    if g.get('wall_seconds') and g.get('platform') != 'cpu' and not g.get('quick'):
        return g['wall_seconds'] / 60 + 0.5, 'gpu.json wall_seconds + start-up'
    return 6.0, 'not yet measured on a GPU: 240 s of compiles at most, timing and peak memory'


def _const(minutes, basis):
    return lambda: (minutes, basis)


B = 'experiments.benchmarks.'
PLAN = [
    # ---- cpu: every family's cheap figures, < 60 min estimated on 2 cores
    Step(B + 'core', ('--only=digits,mnist1d,speed',), _est_core_small_speed, 'cpu',
         'core.py merges into core.json: the F-MNIST row of the long step is kept'),
    Step(B + 'ff', ('--parts=speed,datasets,cnn', '--cnn_limit=2048', '--cnn_epochs=1'), _est_ff_cpu,
         'cpu'),
    Step(B + 'mf', ('--part=speed,small,report',), _est_mf_cpu, 'cpu'),
    Step(B + 'pc', ('--part=oracle,speed,small,report', '--repeats=2'), _est_pc_cpu, 'cpu'),
    Step(B + 'fa', ('--part=oracle,speed,biotorch', '--repeats=2', '--speed_steps=3'), _est_fa_cpu,
         'cpu'),
    Step(B + 'parallel', ('--seeds=2', '--repeats=1', '--skip_matrix'),
         lambda: _est_parallel(2, 1, False), 'cpu',
         'with --skip_matrix, parallel.py keeps the stored equality matrix (figure 2) of the long step'),
    Step(B + 'checkpoint', ('--epochs=2', '--repeats=1'), lambda: _est_checkpoint(2, 1), 'cpu'),
    Step(B + 'memory', (), _est_memory, 'cpu'),
    Step(B + 'ff_fflib', (), _est_fflib, 'cpu'),
    Step(B + 'report', (), _const(0.5, 'plots and markdown only'), 'cpu'),
    # ---- gpu: one device run (speed ratios of every rule, TFLOP/s vs matmul peak, peak memory,
    # 32 vmapped seeds, FF at 4x2000)
    Step(B + 'gpu', ('--budget_seconds=240',), _est_gpu, 'gpu',
         'every rule (and mf with layerwise updates) on the 2x1000 fp32 and 8x4096 bf16 MLPs; '
         'MF/BP peak device memory'),
    Step(B + 'gpu_profile', (), _const(1.5, 'guess: 3 compiles of the 8x4096 net and one traced call each'),
         'gpu', 'per-kernel device time of bp, mf and mf+layerwise (why MF is 0.88x BP, issue #5)'),
    Step(B + 'parallel', ('--seeds=32', '--repeats=3', '--skip_matrix'), _const(1.5, 'guess'), 'gpu',
         "the issue's 32 vmapped seeds vs 1 (stored under its own 'gpu:32' key)"),
    Step(B + 'ff', ('--parts=speed', '--speed_hidden=2000,2000,2000,2000'), _const(1.0, 'guess'), 'gpu',
         'FF/CFF vs BP step time on the published 4x2000 network'),
    Step(B + 'report', (), _const(0.5, 'plots and markdown only'), 'gpu'),
    # ---- long reproductions, outside the 60-minute part (one at a time, hours)
    Step(B + 'core', (), _est_core_full, 'long', 'BP on F-MNIST (20 epochs x 3 seeds), digits, MNIST-1D'),
    Step(B + 'ff', ('--parts=fmnist,wide', '--fmnist_epochs=60', '--seeds=3', '--wide_epochs=60',
                    '--wide_limit=0', '--wide_seeds=3', '--wide_rules=ff,cff,bp'), _est_ff_long, 'long',
         'FF/CFF and the BP twin: 2x1000 and the published 4x2000, 60 epochs x 3 seeds each '
         '(the 4x2000 runs: 1.5 min on an H200)'),
    Step(B + 'ff', ('--parts=wide_select', '--wide_epochs=60', '--wide_seeds=3', '--wide_limit=0'),
         _est_ff_select, 'long', 'ff picks its lr on a validation split at 4x2000, then ff and cff '
         'are tested at the pick (2.3 min on an H200)'),
    Step(B + 'mf', ('--part=val', '--epochs=15', '--val_configs=0.001:constant'),
         lambda: _est_mf_val(0), 'long', 'MF tuning on the validation split (as mf.md records)'),
    Step(B + 'mf', ('--part=val', '--epochs=8', '--val_configs=0.001:cosine'),
         lambda: _est_mf_val(1), 'long'),
    Step(B + 'mf', ('--part=accuracy', '--epochs=15', '--seeds=5'), _est_mf_long, 'long',
         'MF and its BP twin at the same settings, 5 seeds each'),
    Step(B + 'mf', ('--part=select', '--epochs=20', '--select_seeds=2', '--seeds=5'),
         lambda: _est_mf_grid(20, (5e-4, 1e-3, 2e-3), tested=True),
         'long', 'each rule picks its own lr (MF also its prediction) on validation, then 5 seeds'),
    Step(B + 'mf', ('--part=select', '--select_lrs=1e-3,2e-3', '--epochs=40', '--select_seeds=2',
                    '--seeds=5'), lambda: _est_mf_grid(40, (1e-3, 2e-3), tested=True),
         'long', 'adds 40-epoch settings to the stored 20-epoch ones; picks over both, then 5 seeds'),
    Step(B + 'mf', ('--part=select', '--select_lrs=5e-4,1e-3', '--epochs=60', '--select_seeds=2',
                    '--seeds=5'), lambda: _est_mf_grid(60, (5e-4, 1e-3)), 'long',
         '60-epoch settings (40 was the edge of the grid for both picks); no pick changed'),
    Step(B + 'mf', ('--part=select', '--select_lrs=5e-4', '--epochs=40', '--select_seeds=2',
                    '--seeds=5'), lambda: _est_mf_grid(40, (5e-4,), tested=True), 'long',
         'lr 5e-4 at 40 epochs (1e-3 was the edge at 40); both picks moved there: tested'),
    Step(B + 'mf', ('--part=select', '--select_lrs=2.5e-4', '--epochs=40', '--select_seeds=2',
                    '--seeds=5'), lambda: _est_mf_grid(40, (2.5e-4,)), 'long',
         'lr 2.5e-4 at 40 epochs (5e-4 was now the edge); no pick changed'),
    Step(B + 'mf', ('--part=select', '--select_lrs=5e-4', '--epochs=40', '--select_wds=0.05,0.2',
                    '--select_seeds=2', '--seeds=5'),
         lambda: _est_mf_grid(40, (5e-4,), (0.05, 0.2)), 'long',
         'AdamW weight decay at the picks, the same for both rules; no pick changed'),
    Step(B + 'mf', ('--part=cnn', '--cnn_model=cnn', '--conv_scores=flatten', '--epochs=8',
                    '--seeds=3'), _est_mf_cnn, 'long', 'CNN conv 32-64 dense 128, MF and BP twin'),
    Step(B + 'mf', ('--part=memory,report',), _const(2.0, 'compiles only'), 'long',
         'the 16-layer memory rows'),
    Step(B + 'gpu_aot', (), _const(1.0, 'compiles only'), 'long',
         'the GPU programs\' memory and kernel counts, compiled without a GPU; needs the '
         'CUDA-plugin venv (BUILD_NOTES "GPU programs without a GPU")', python='/tmp/vcuda/bin/python'),
    Step(B + 'pc', ('--part=val,accuracy,ipc,cnn,wide,report',), _est_pc_long, 'long',
         'pc/ipc 25 epochs x 3 seeds, CNN, 2x1000'),
    Step(B + 'fa', ('--part=accuracy',), _est_fa_long, 'long',
         'LeNet, 7 rules x 15 epochs x 3 seeds on all 60,000 images'),
    Step(B + 'fa', ('--part=accuracy', '--rules=usf', '--epochs=30'), lambda: _est_fa_long(1, 30),
         'long', 'usf on LeNet at twice the budget (its own @30ep row)'),
    Step(B + 'fa', ('--part=select', '--epochs=50', '--seeds=3'), lambda: _est_fa_long(2, 50),
         'long', "dfa's conv_feedback (full vs channel) on a 50k/10k split of the training set"),
    Step(B + 'fa', ('--part=accuracy', '--rules=bp,fa,dfa', '--epochs=50'), lambda: _est_fa_long(3, 50),
         'long', 'LeNet at 50 epochs (its own @50ep rows; about 15 s per rule on an H200)'),
    Step(B + 'parallel', (), lambda: _est_parallel(8, 2, True), 'long',
         '8 seeds vs 1, 2 repeats, and the full equality matrix'),
    Step(B + 'checkpoint', ('--epochs=3', '--repeats=2'), lambda: _est_checkpoint(3, 2), 'long'),
    Step(B + 'report', (), _const(0.5, 'plots and markdown only'), 'long'),
]


def plan(part, only=()):
    steps = [s for s in PLAN if s.part == part]
    if only:
        steps = [s for s in steps if s.name in only or s.name == 'report']
    return steps


def plan_table(part, only=()):
    """(markdown lines, total minutes) of a part's plan."""
    lines = ['| # | command | est. min | estimate from |', '|---|---|---|---|']
    total = 0.0
    for i, s in enumerate(plan(part, only), 1):
        minutes, basis = s.estimate()
        total += minutes
        note = f' — {s.note}' if s.note else ''
        lines.append(f'| {i} | `{s.command}` | {minutes:.1f} | {basis}{note} |')
    lines.append(f'| | **total** | **{total:.1f}** | |')
    return lines, total


def _gpu_name():
    """The GPU's name from nvidia-smi (this process must not import jax: it would take the
    device's memory from the steps it launches)."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ''
    return out.replace('\n', ', ') or 'no GPU found by nvidia-smi'


def record(part, done, wall_seconds, load_before, path=None):
    """Merges this run of `part` (its steps, return codes and minutes) into results/suite.json,
    the source of the measured suite times in BENCHMARKS.md."""
    path = path or os.path.join(RESULTS, 'suite.json')
    runs = {}
    if os.path.exists(path):
        with open(path) as f:
            runs = json.load(f)
    runs[part] = {
        'command': f'python -m experiments.benchmarks.suite --part={part}',
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'machine': f'{os.cpu_count()}-core {platform.machine()} '
                   f'({platform.processor() or "cpu"}), python {platform.python_version()}'
                   + (f', {_gpu_name()}' if part == 'gpu' else ''),
        'load_average_before': load_before,
        'wall_minutes': wall_seconds / 60,
        'budget_minutes': BUDGET_MIN.get(part),
        'steps': [{'command': s.command, 'rc': rc, 'minutes': round(m, 2)} for s, rc, m in done],
        'failed': [s.command for s, rc, _ in done if rc],
    }
    with open(path, 'w') as f:
        json.dump(runs, f, indent=2)
        f.write('\n')
    return runs[part]


def _measured_lines(part):
    r = _json('suite').get(part)
    if not r:
        return ['Not yet run end to end with this recording in place.', '']
    budget = r.get('budget_minutes')
    verdict = ''
    if budget:
        ok = r['wall_minutes'] < budget and not r['failed']
        verdict = f" — {'within' if ok else 'OVER'} the {budget:.0f}-minute budget"
    lines = [f"Measured: `{r['command']}` took **{r['wall_minutes']:.1f} min** wall{verdict} "
             f"({r['machine']}; {r['date']}; 1-minute load {r['load_average_before']} before it "
             f"started; {len(r['steps'])} steps, failed: {', '.join(r['failed']) or 'none'}).", '',
             '| # | command | rc | min |', '|---|---|---|---|']
    lines += [f"| {i} | `{st['command']}` | {st['rc']} | {st['minutes']:.1f} |"
              for i, st in enumerate(r['steps'], 1)]
    return lines + ['']


def markdown():
    """The 'How to regenerate' section of BENCHMARKS.md."""
    out = ['## How to regenerate', '',
           'Every figure below comes from the suite `python -m experiments.benchmarks.suite`; '
           '`--dry_run` prints a plan without running it. Estimates come from the times recorded in '
           'the results JSONs on the shared, loaded 2-core machine: upper bounds on a quiet one.', '']
    for part, title in (('cpu', 'CPU part (`--part=cpu`, acceptance: under 60 minutes on 2 cores)'),
                        ('gpu', 'GPU part (`--part=gpu`, one 10-minute device run)'),
                        ('long', 'Long reproductions (`--part=long [--only=<family>]`, outside the '
                                 '60-minute part; hours on 2 cores)')):
        lines, _ = plan_table(part)
        out += [f'### {title}', ''] + _measured_lines(part) + ['Plan and estimates:', ''] + lines + ['']
    return '\n'.join(out)


def run(steps, keep_going=True):
    """Runs the steps one at a time; returns [(step, returncode, minutes)]."""
    done = []
    for i, s in enumerate(steps, 1):
        print(f'[suite {i}/{len(steps)}] {s.command}', flush=True)
        t0 = time.perf_counter()
        if s.python and not os.path.exists(s.python):
            print(f'[suite] {s.python} does not exist: {s.note}', flush=True)
            rc = 1
        else:
            rc = subprocess.run([s.python or sys.executable, '-m', s.module, *s.flags],
                                cwd=ROOT).returncode
        minutes = (time.perf_counter() - t0) / 60
        done.append((s, rc, minutes))
        print(f'[suite {i}/{len(steps)}] rc={rc} {minutes:.1f} min '
              f'(estimated {s.estimate()[0]:.1f})', flush=True)
        if rc and not keep_going:
            break
    return done


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}')
    part = _PART.value
    steps = plan(part, _ONLY.value)
    lines, total = plan_table(part, _ONLY.value)
    print(f'Plan for --part={part}:')
    print('\n'.join(lines))
    budget = BUDGET_MIN.get(part)
    if budget:
        print(f'Estimated total {total:.1f} min (budget {budget:.0f} min: '
              f'{"within" if total < budget else "OVER"})')
    if _DRY.value:
        return
    load = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    done = run(steps, _KEEP_GOING.value)
    if not _ONLY.value:  # only a whole part's run is its measured time
        record(part, done, time.perf_counter() - t0, load)
        # The report ran as the last step, before this run's time existed: rebuild it.
        subprocess.run([sys.executable, '-m', B + 'report'], cwd=ROOT, check=False)
    failed = [s.command for s, rc, _ in done if rc]
    print(f'suite --part={part}: {len(done)} steps, {sum(m for _, _, m in done):.1f} min'
          + (f'; FAILED: {failed}' if failed else ''))
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    app.run(main)
