"""`run(config, workdir)`: the whole experiment, from config to summary.json, resumable.

Order of events, chosen so that a run killed at any moment resumes exactly:
  1. validate the config, check the workdir (read-only), load and check the
     data, build model/rule/optimizer: every user error surfaces here, before
     anything is compiled or written;
  2. place data and state on the devices the config names (`parallel`, `mesh`,
     `fsdp`: see `neurokit.experiment.placement`; every visible device on the
     'data' axis by default) and compile; write config.json (first start only;
     with several processes, process 0 writes every file and all of them take
     part in each checkpoint save);
  3. restore the newest checkpoint if there is one and drop metrics lines of
     later epochs (they are recomputed bit-identically);
  4. per epoch: train (one compiled scan that also reports the first
     non-finite step), evaluate, append the metrics line, then save the
     checkpoint. A kill between the two loses only the line, which the
     resumed run writes again.
  5. summary.json, last.

Steps 3-4, SIGTERM/Ctrl-C and failed writes: `neurokit.experiment.epochs`, which sweeps
share.
"""
from __future__ import annotations

import functools
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from neurokit.experiment import config as config_lib
from neurokit import data as data_lib
from neurokit import models, optim
from neurokit.experiment.errors import TrainingError
from neurokit.experiment.placement import Placement, fetch
from neurokit.rules import registry as rule_registry
from neurokit.experiment import epochs, workdir as wd
from neurokit.train import loop
from neurokit.experiment.checkpoint import Checkpointer, checksums
from neurokit.train.state import check_layerwise as check_rule_layerwise, init_state


def build(config, dataset):
    """Model, rule and optimizer for a validated config and its data set."""
    m = config.model
    model = models.build(m.name, dataset.input_shape, dataset.num_classes, hidden=m.hidden,
                         activation=m.activation, init=m.init, dtype=m.dtype, channels=m.channels,
                         kernel_size=m.kernel_size, dense_widths=m.dense_widths)
    rule = rule_registry.build(config.rule, model, **config.rule_kwargs.to_dict())
    check_layerwise(config, rule)
    n = num_train(config, dataset)
    optimizer = optim.build(config.optimizer, n // config.batch_size, config.epochs,
                            config.model.dtype)
    return model, rule, optimizer


def check_layerwise(config, rule):
    """ConfigError when `config.layerwise_updates` asks for a step `rule` does not have."""
    try:
        check_rule_layerwise(rule, config.layerwise_updates)
    except ValueError as e:
        raise config_lib.ConfigError(f'rule {config.rule!r}: {e}') from None


def num_train(config, dataset):
    """Training examples used: all of them, or `config.train_limit`."""
    n = dataset.x_train.shape[0]
    return min(n, config.train_limit) if config.train_limit else n


def _member_keys(config):
    return jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(config.num_seeds)])


def _scalars(tree):
    """Device metrics -> plain floats (or lists of floats, one per member)."""
    return {k: (np.asarray(v).tolist()) for k, v in tree.items()}


# ----------------------------------------------------------------------------- NaN guard


def nonfinite_message(guard, groups, steps, workdir, last_saved, layerwise=False,
                      dtype='float32', own_optimizer=False, who=None, fix=None):
    """The one-line TrainingError text for a guard (`neurokit.train.Guard`) that saw a
    non-finite step: where (step, epoch, batch; the first bad member's), what (loss, which
    layers), what was kept, and the fixes. `who` names the member(s) (default: the seed
    offset when there are several); `fix` replaces the config changes suggested (which
    then do not resume: only nan_policy=skip does)."""
    first_bad = np.atleast_1d(np.asarray(guard['first_bad']))
    member = int(np.argmax(first_bad >= 0))
    step = int(first_bad[member])
    loss_bad = bool(np.atleast_1d(np.asarray(guard['loss_bad']))[member])
    bad = np.asarray(guard['bad_groups']).reshape(len(first_bad), -1)[member]
    what = (['loss'] if loss_bad else []) + (
        [f'parameters of layer {", ".join(g for g, b in zip(groups, bad) if b)}']
        if bad.any() else [])
    if who is None:
        who = f' in member {member} (seed offset {member})' if len(first_bad) > 1 else ''
    kept = (f'the last good checkpoint (epoch {last_saved}) is intact in '
            f'{os.path.join(workdir, "checkpoints")}' if last_saved else 'no checkpoint was saved')
    fp16 = ("float16's range ends at 65504, so first try --config.model.dtype=bfloat16; "
            if dtype == 'float16' else '')
    resumes = 'either change'
    if fix is not None:
        resumes = 'it'
    elif own_optimizer:  # the rule steps its weights itself (ipc): config.optimizer is unused
        fix = 'lower --config.rule_kwargs.weight_lr'
    else:
        fix = ('lower --config.optimizer.learning_rate, clip with --config.optimizer.grad_clip'
               + (' (with --config.layerwise_updates=False)' if layerwise else ''))
    return (f'non-finite {" and ".join(what)} at step {step + 1} (epoch {step // steps + 1}, '
            f'batch {step % steps + 1} of {steps}){who}; {kept}; {fp16}{fix}, or pass '
            f'--config.nan_policy=skip (the same command resumes with {resumes}'
            + (')' if last_saved else ' or starts over)'))


# ----------------------------------------------------------------------------- run


def run(config, workdir: str) -> dict:
    """Trains and evaluates as `config` says, writing metrics and checkpoints into `workdir`.

    Everything that can be checked is checked before anything is written or
    compiled: the config, the workdir, the data files, model/data fit. A
    workdir that holds an unfinished run with the same config is resumed from
    its newest checkpoint; one that holds a finished run is left untouched.

    Args:
      config: an `ml_collections.ConfigDict` built from `neurokit.experiment.config.base_config()`.
      workdir: output folder (see `neurokit.experiment.workdir` for its layout).

    Returns:
      The summary dict (as in summary.json). For a run that had already
      finished, the stored summary with `already_finished=True` added.

    Raises:
      ConfigError, DataError, WorkdirError: bad input (one-line messages).
      TrainingError: non-finite loss or parameters (names the step and layers).
      Preempted: SIGTERM or Ctrl-C arrived; a checkpoint was saved first.

    Example:
      summary = run(get_config(), '/tmp/runs/bp')
    """
    with wd.Lock() as lock:
        return _run(config, workdir, lock)


def _run(config, workdir: str, lock) -> dict:
    """`run`, with the workdir lock to take before the first write."""
    t_start = time.perf_counter()
    config_lib.validate(config)
    status = wd.check(workdir, config)
    if status == wd.FINISHED:
        return {**wd.read_summary(os.path.join(workdir, wd.SUMMARY)), 'already_finished': True}
    if config.sweep:  # a hyperparameter grid as one vmapped program (members over devices)
        from neurokit.experiment.sweep_run import run_sweep
        return run_sweep(config, workdir, status, lock)
    dataset = data_lib.load(config.dataset, config.data_dir)
    config_lib.validate_with_data(config, dataset)
    model, rule, optimizer = build(config, dataset)
    place = Placement.from_config(config)  # ConfigError if the mesh does not fit the devices
    primary = place.primary  # only process 0 writes files (orbax coordinates checkpoints)

    available = num_train(config, dataset)
    if primary:
        for note in place.notes(config, available):
            print(f'note: {note}', file=sys.stderr, flush=True)
    n = place.train_rows(available)
    x_train, y_train = place.put_train(dataset, n)
    x_test, y_test = place.put_test(dataset)
    steps = n // config.batch_size

    members = config.num_seeds
    # lax.map, not vmap: the same numbers (random bits do not depend on batching)
    # at half the compile time of a vmapped init.
    init = lambda keys: jax.lax.map(
        lambda k: init_state(k, model, rule, optimizer, config.layerwise_updates), keys)
    make_epoch = functools.partial(loop.make_epoch, rule, optimizer, config.batch_size,
                                   nan_policy=config.nan_policy)
    eval_fn = jax.vmap(loop.make_evaluate(rule, config.eval_batch_size), (0, 0, None, None))
    state = place.init(init, _member_keys(config))  # host state: what is checkpointed
    groups = loop.param_groups(jax.tree.map(lambda a: a[0], state.params), model)

    t0 = time.perf_counter()
    epoch_c = place.compile_epoch(make_epoch, state, x_train, y_train)
    eval_c = place.compile_eval(eval_fn, state, x_test, y_test)
    checksums(state)  # compiles the checkpoints' checksum program now, with the others
    compile_seconds = time.perf_counter() - t0

    with epochs.writing(os.path.abspath(workdir), 0):
        wd.start_writing(workdir, status, config, lock if primary else None)
        ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, run=True)
    start = epochs.resume(ckpt, state, steps, os.path.join(workdir, wd.METRICS), primary)
    dstate = place.to_devices(start.state)  # what the compiled epoch takes (pmap: replicas)
    poison = epochs.poison_epoch()

    def one_epoch(epoch, state, last_saved):
        nonlocal dstate
        x_in = x_train if poison != epoch + 1 else place.poison(x_train)
        t0 = time.perf_counter()
        dstate, metrics = epoch_c(dstate, x_in, y_train, epoch)
        jax.block_until_ready(dstate)
        dt = time.perf_counter() - t0
        state = place.host_state(dstate)
        metrics = fetch(metrics)
        guard = metrics.pop('guard')._asdict()
        if config.nan_policy == 'stop' and np.any(guard['first_bad'] >= 0):
            raise TrainingError(nonfinite_message(guard, groups, steps, workdir, last_saved,
                                                   config.layerwise_updates, config.model.dtype,
                                                   rule.applies_updates))
        metrics = _scalars(metrics)
        test_acc = fetch(eval_c(state.params, state.rule_state, x_test, y_test))
        record = {'epoch': epoch + 1, 'step': steps * (epoch + 1)}
        record.update({f'train_{k}': _member_value(v, members) for k, v in metrics.items()})
        record['test_accuracy'] = _member_value(test_acc.tolist(), members)
        record['epoch_seconds'] = dt
        return state, record, dt

    done = epochs.train_epochs(config, workdir, ckpt, start, one_epoch, primary)

    accs = np.atleast_1d(np.asarray(done.record['test_accuracy'], np.float64))
    summary = {
        'rule': config.rule,
        'dataset': config.dataset,
        'model': config.model.name,
        'epochs': config.epochs,
        'batch_size': config.batch_size,
        'seed': config.seed,
        'num_seeds': members,
        'test_accuracy': _member_value(accs.tolist(), members),
        'test_accuracy_mean': float(accs.mean()),
        'test_accuracy_std': float(accs.std()),
        'train_seconds': done.train_seconds,
        'compile_seconds': compile_seconds,
        'checkpoint_seconds': done.checkpoint_seconds,
        'loop_seconds': done.loop_seconds,
        'wall_seconds': time.perf_counter() - t_start,
        'resumed_from_epoch': start.epoch,
        'samples_per_second': (members * steps * config.batch_size * config.epochs
                               / max(done.train_seconds, 1e-9)),
        **place.summary(),  # devices (the number used), mesh, parallel, processes
        'platform': jax.devices()[0].platform,
        'config': config.to_dict(),
    }
    if primary:
        with epochs.writing(os.path.join(workdir, wd.SUMMARY), config.epochs):
            wd.write_json(os.path.join(workdir, wd.SUMMARY), _jsonable(summary))
    return summary


def _member_value(v, members):
    """One member: a scalar; several: the list, one per member."""
    return v[0] if members == 1 and isinstance(v, list) else v


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
