"""`run(config, workdir)`: the whole experiment, from config to summary.json, resumable.

Order of events, chosen so that a run killed at any moment resumes exactly:
  1. validate the config, check the workdir (read-only), load and check the
     data, build model/rule/optimizer: every user error surfaces here, before
     anything is compiled or written;
  2. place data and state on the devices the config names (`parallel`, `mesh`,
     `fsdp`: see `neurokit.parallel.placement`; every visible device on the
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

Steps 3-4, SIGTERM/Ctrl-C and failed writes: `neurokit.train.epochs`, which sweeps
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

from neurokit import config as config_lib
from neurokit import data as data_lib
from neurokit import models, optim
from neurokit.errors import TrainingError
from neurokit.parallel.placement import Placement, fetch
from neurokit.rules import registry as rule_registry
from neurokit.train import epochs, loop, workdir as wd
from neurokit.train.checkpoint import Checkpointer, checksums
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


def param_groups(params, model):
    """Names of the groups whose finiteness the guard reports, in order.

    Each entry of `params['layers']` is one group named after its model layer;
    every other top-level entry (rule-owned parameters) is one group.
    """
    names = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = _group_name(path, model)
        if name not in names:
            names.append(name)
    return names


def _group_name(path, model):
    first = getattr(path[0], 'key', None)
    if first == 'layers' and len(path) > 1 and hasattr(path[1], 'idx'):
        i = path[1].idx
        return model.layers[i].name if i < len(model.layers) else f'layers[{i}]'
    return jax.tree_util.keystr(path[:1])


def _finite_by_group(params, model):
    groups = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        groups.setdefault(_group_name(path, model), []).append(jnp.all(jnp.isfinite(leaf)))
    return jnp.stack([jnp.all(jnp.stack(v)) for v in groups.values()])


def make_guarded_epoch(rule, optimizer, batch_size: int, model, nan_policy: str = 'stop',
                       constrain=None, reduce=None, local_order=None):
    """`loop.make_epoch` plus a finiteness guard, still one `lax.scan` with no host round trips.

    Every step checks the loss and the new parameters of each group
    (`param_groups`); non-finite updates show up as non-finite parameters.

    Args:
      rule, optimizer, batch_size: as for `loop.make_epoch`.
      model: names the parameter groups.
      nan_policy: 'stop' (the caller stops at the end of the epoch; the state
        returned is then garbage and must not be saved) or 'skip' (a bad step
        leaves params, optimizer and rule state as they were; the step counter
        and data position still advance).
      constrain: optional `batch -> batch` applied to each gathered batch (the
        sharded path's `parallel.mesh.batch_constraint(mesh)`).
      reduce: optional hook between rule and optimizer (`loop.make_train_step`;
        the pmap path's cross-device mean). The guard sees the reduced step.
      local_order: optional `(order, batch_size) -> order` picking this
        device's part of every batch (the pmap path's `parallel.pmap.device_slice`).

    Returns:
      `(state, x, y, epoch) -> (state, mean metrics, guard)`; guard has
      `first_bad` (global 0-based step of the first bad step, -1 if none),
      `loss_bad` and `bad_groups` (bool per group) at that step, and `skipped`
      (number of bad steps).
    """
    train_step = loop.make_train_step(rule, optimizer, reduce=reduce)

    def epoch_fn(state, x, y, epoch):
        loop.check_examples(x, y)
        order = loop.epoch_order(state.key, epoch, x.shape[0], batch_size)
        if local_order is not None:
            order = local_order(order, batch_size)
        n_groups = len(param_groups(state.params, model))

        def body(carry, idx):
            s, first_bad, loss_bad, bad_groups, skipped = carry
            batch = {'x': x[idx], 'y': y[idx]}
            new, metrics = train_step(s, constrain(batch) if constrain is not None else batch)
            loss_ok = jnp.all(jnp.isfinite(metrics['loss']))
            groups_ok = _finite_by_group(new.params, model)
            ok = loss_ok & jnp.all(groups_ok)
            first = (first_bad < 0) & ~ok
            first_bad = jnp.where(first, s.step, first_bad)
            loss_bad = jnp.where(first, ~loss_ok, loss_bad)
            bad_groups = jnp.where(first, ~groups_ok, bad_groups)
            if nan_policy == 'skip':
                new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, s)
                new = new._replace(step=s.step + 1)
            return (new, first_bad, loss_bad, bad_groups, skipped + (~ok)), (metrics, ok)

        init = (state, jnp.int32(-1), jnp.bool_(False), jnp.zeros((n_groups,), bool),
                jnp.int32(0))
        (state, first_bad, loss_bad, bad_groups, skipped), (metrics, ok) = jax.lax.scan(
            body, init, order)
        if nan_policy == 'skip':  # average over the steps that were taken (NaN: none was)
            n_ok = jnp.sum(ok.astype(jnp.float32))
            metrics = jax.tree.map(
                lambda m: jnp.where(n_ok > 0, jnp.sum(jnp.where(_bcast(ok, m), m, 0), 0)
                                    / jnp.maximum(n_ok, 1.0), jnp.nan), metrics)
            metrics['skipped_steps'] = skipped
        else:
            metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        guard = {'first_bad': first_bad, 'loss_bad': loss_bad, 'bad_groups': bad_groups,
                 'skipped': skipped}
        return state, metrics, guard

    return epoch_fn


def _bcast(ok, m):
    return ok.reshape(ok.shape + (1,) * (m.ndim - 1))


def nonfinite_message(guard, groups, steps, workdir, last_saved, layerwise=False,
                      dtype='float32', own_optimizer=False, who=None, fix=None):
    """The one-line TrainingError text for a guard (`make_guarded_epoch`) that saw a
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
      config: an `ml_collections.ConfigDict` built from `neurokit.config.base_config()`.
      workdir: output folder (see `neurokit.train.workdir` for its layout).

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
        from neurokit.train.sweep_run import run_sweep
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
    make_epoch = functools.partial(make_guarded_epoch, rule, optimizer, config.batch_size, model,
                                   config.nan_policy)
    eval_fn = jax.vmap(loop.make_evaluate(rule, config.eval_batch_size), (0, 0, None, None))
    state = place.init(init, _member_keys(config))  # host state: what is checkpointed
    groups = param_groups(jax.tree.map(lambda a: a[0], state.params), model)

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
        dstate, metrics, guard = epoch_c(dstate, x_in, y_train, epoch)
        jax.block_until_ready(dstate)
        dt = time.perf_counter() - t0
        state = place.host_state(dstate)
        metrics, guard = fetch(metrics), fetch(guard)
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
