"""Runs through the real CLI on 8 fake CPU devices: sharded, 1-device and pmap agree.

One process with `XLA_FLAGS=--xla_force_host_platform_device_count=8` (set
before JAX starts its backend: this module run as a command of the test process's command
server, tests/cli_runner.py, which has imported JAX already) parses each command line with
`experiments/train.py`'s flags and runs it with the CLI's `run_main` (in-process, so JAX
starts once): bp and mf on a tiny MLP on digits, 2 epochs, with the default mesh (every
device on 'data'),
`--config.mesh=data=1` (one of the 8 devices) and `--config.parallel=pmap`,
plus 2 vmapped seeds, and a 4-member sweep split over 4 devices against one device;
the pmap run and the split sweep train in calls of 3 steps (`steps_per_call`).
Expected, from what the modes mean (the same program, only the cross-device sums
reassociated, or XLA's kernels picked for other shapes): the final parameters of each
checkpoint and the per-epoch train loss and test accuracy agree to 1e-5;
summary.json says how many devices each run used; no run compiles anything
in its second epoch (a `jax.monitoring` compile counter); and NaN inputs in
epoch 2 of an 8-device run stop it with the guard's message.
"""
import json
import os
import sys

import numpy as np

TOL = 1e-5
EPOCHS = 2
COMMON = ['--config.dataset=digits', '--config.train_limit=512', f'--config.epochs={EPOCHS}',
          '--config.model.hidden=(32,)', '--config.batch_size=64',
          '--config.optimizer.learning_rate=0.01', '--config.tensorboard=False',
          '--config.progress=off', '--config.checkpoint_every=0']
SEEDS = ['--config.num_seeds=2']
SWEEP = ['--config.sweep=optimizer.learning_rate=0.003,0.01', '--config.num_seeds=2']
RUNS = {  # name: (rule, extra flags, devices expected, parallel mode expected)
    'bp_8': ('bp', SEEDS, 8, 'sharded'),                          # default mesh: all devices
    'bp_1': ('bp', SEEDS + ['--config.mesh=data=1'], 1, 'sharded'),
    # pmap and the split sweep in calls of 3 steps (8 per epoch: 3, 3, 2), against
    # one-program epochs
    'bp_pmap': ('bp', SEEDS + ['--config.parallel=pmap', '--config.steps_per_call=3'], 8, 'pmap'),
    'mf_8': ('mf', [], 8, 'sharded'),
    'mf_1': ('mf', ['--config.parallel=none'], 1, 'none'),
    # 2 learning rates x 2 seeds: 4 members, split over gcd(4, 8) = 4 devices by default
    'sweep_4': ('bp', SWEEP + ['--config.steps_per_call=3'], 4, 'sharded'),
    'sweep_1': ('bp', SWEEP + ['--config.parallel=none'], 1, 'none'),
}
NAN_RUN = ('bp_nan_8', SEEDS)  # bp_8 with NaN inputs in epoch 2 (the run's test hook)


def _drive(commands):
    """Runs each `{name: [argv, env]}` of the JSON text `commands` as experiments.train
    would, in this process and on its devices; prints `RESULT {name: status}`. Run as
    this module's `__main__` (see `_run_all`)."""
    import importlib
    import time

    import jax
    from absl import flags
    from ml_collections import config_flags

    from neurokit.experiment.checkpoint import Checkpointer
    from neurokit.experiment.cli import run_main
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, *a, **k: compiles.append(event)
        if event.endswith('backend_compile_duration') else None)
    epochs_lib = importlib.import_module('neurokit.experiment.epochs')
    hook, mark = epochs_lib.fault_hook, {}

    def counting_hook(phase, epoch):  # compiles from the start of epoch 2 to the end of the run
        if (phase, epoch) in (('before_epoch', 2), ('after_metrics', EPOCHS)):
            mark[phase] = len(compiles)
        return hook(phase, epoch)

    epochs_lib.fault_hook = counting_hook
    out = {}
    for name, (argv, env) in json.loads(commands).items():
        os.environ.pop('NEUROKIT_TEST_POISON_EPOCH', None)
        os.environ.update(env)
        # experiments/train.py's flags, on fresh FlagValues per command line (absl
        # defines the --config.KEY overrides when it parses), then its run_main.
        fv = flags.FlagValues()
        cfg = config_flags.DEFINE_config_file('config', None, '', flag_values=fv,
                                              lock_config=True, sys_argv=['train'] + argv)
        flags.DEFINE_string('workdir', None, '', flag_values=fv)
        fv(['train'] + argv)
        mark.clear()
        t0 = time.perf_counter()
        try:
            run_main(cfg.value, fv.workdir)
            code = 0
        except SystemExit as e:
            code = e.code
        later = mark.get('after_metrics', -1) - mark.get('before_epoch', 0)
        out[name] = {'exit': code, 'later_compiles': later, 'seconds': time.perf_counter() - t0}
        if code == 0:  # the final parameters, read back in this process (same devices)
            ckpt = Checkpointer(fv.workdir, create=False)
            params = ckpt.restore(ckpt.latest())[0]['params']
            ckpt.close()
            np.savez(os.path.join(fv.workdir, 'params.npz'),
                     *[np.asarray(a) for a in jax.tree.leaves(params)])
    print('RESULT ' + json.dumps(out))


def _run_all(cli, tmp):
    """Every run of RUNS and NAN_RUN in one command of `cli` (this module as `__main__`) on
    8 devices: `(tmp, {name: status}, stderr)`. The NaN run's programs are bp_8's, which
    the server's compilation cache holds by then."""
    argvs = {name: ([f'--config=experiments/configs/{rule}.py', f'--workdir={tmp / name}',
                     *COMMON, *extra], {}) for name, (rule, extra, _, _) in RUNS.items()}
    argvs[NAN_RUN[0]] = (['--config=experiments/configs/bp.py', f'--workdir={tmp / NAN_RUN[0]}',
                          *COMMON, *NAN_RUN[1]], {'NEUROKIT_TEST_POISON_EPOCH': '2'})
    # XLA reads its flags when the command starts its backend
    r = cli.run('tests.parallel.test_run_devices', [json.dumps(argvs)],
                {'XLA_FLAGS': os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')][-1]
    status = json.loads(line[len('RESULT '):])
    for name, s in status.items():
        if name != NAN_RUN[0]:
            assert s['exit'] == 0, (name, s, r.stderr[-3000:])
    return tmp, status, r.stderr


def _load(tmp, name):
    folder = str(tmp / name)
    summary = json.load(open(os.path.join(folder, 'summary.json')))
    metrics = [json.loads(l) for l in open(os.path.join(folder, 'metrics.jsonl'))]
    params = np.load(os.path.join(folder, 'params.npz'))
    return summary, metrics, [params[f'arr_{i}'] for i in range(len(params.files))]


def _assert_same_run(tmp, a, b):
    sa, ma, pa = _load(tmp, a)
    sb, mb, pb = _load(tmp, b)
    assert len(pa) == len(pb) > 0
    for u, v in zip(pa, pb):
        np.testing.assert_allclose(u, v, atol=TOL, rtol=0, err_msg=f'{a} vs {b}')
    for la, lb in zip(ma, mb):
        np.testing.assert_allclose(la['train_loss'], lb['train_loss'], atol=TOL, rtol=0)
        np.testing.assert_allclose(la['test_accuracy'], lb['test_accuracy'], atol=TOL, rtol=0)
    assert len(ma) == len(mb) == EPOCHS


# One test, not one per check: pytest-xdist's default distribution would run a
# module fixture (the 8-device subprocess) once per worker that gets a test.
def test_cli_runs_on_8_devices(cli, tmp_path):
    tmp, status, stderr = _run_all(cli, tmp_path)
    for name, (_, _, devices, mode) in RUNS.items():
        summary, _, _ = _load(tmp, name)
        assert (summary['devices'], summary['parallel']) == (devices, mode), name
        assert summary['mesh']['data'] * summary['mesh']['stage'] == devices, name
        assert status[name]['later_compiles'] == 0, f'{name} compiled after its first epoch'

    # The same numbers on 8 devices, on 1 of them, with pmap, and without a mesh.
    for a, b in (('bp_8', 'bp_1'), ('bp_pmap', 'bp_8'), ('mf_8', 'mf_1'), ('sweep_4', 'sweep_1')):
        _assert_same_run(tmp, a, b)
    assert 'the sweep\'s 4 members run on 4 of the 8 devices' in stderr

    # num_seeds members stay distinct (the member axis is not split) and learn.
    summary, _, params = _load(tmp, 'bp_8')
    assert len(summary['test_accuracy']) == 2 and min(summary['test_accuracy']) > 0.5
    assert params[0].shape[0] == 2 and not np.allclose(params[0][0], params[0][1])

    # The NaN guard inside the sharded scan names the first bad step; nothing after it is kept.
    assert status[NAN_RUN[0]]['exit'] == 2
    errors = [l for l in stderr.splitlines() if l.startswith('error: non-finite')]
    assert errors and 'at step 9 (epoch 2, batch 1 of 8)' in errors[0], errors
    lines = open(os.path.join(tmp / NAN_RUN[0], 'metrics.jsonl')).read().splitlines()
    assert len(lines) == 1 and not os.path.exists(tmp / NAN_RUN[0] / 'summary.json')


if __name__ == '__main__':
    _drive(sys.argv[1])
