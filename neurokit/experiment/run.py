"""`run(config, workdir)`: the whole experiment, from config to summary.json, resumable.

ONE driver for every run: a run trains `num_seeds` seeds of its config as one
vmapped program, and a sweep (`--config.sweep`) is the same program over a grid
of settings times the seeds (`neurokit.experiment.members`): a seed run is a
sweep with an empty grid. Both take the same path through data loading,
building, placing, compiling, the epochs, evaluation and the summary.

Order of events, chosen so that a run killed at any moment resumes exactly:
  1. validate the config, check the workdir (read-only), load the data, split off
     the validation examples, build model, rule and optimizer (each once; a
     sweep's settings are checked as runs would be): every user error surfaces
     here, before anything is compiled or written;
  2. place data and state on the devices the config names (`parallel`, `mesh`,
     `fsdp`; a sweep splits its members instead: see
     `neurokit.experiment.placement`) and compile; write config.json (first start
     only; with several processes, process 0 writes every file and all of them take
     part in each checkpoint save);
  3. restore the newest checkpoint if there is one and drop metrics lines of
     later epochs (they are recomputed bit-identically);
  4. per epoch: train (one compiled scan that also reports the first
     non-finite step), evaluate on the test (and validation) examples, append the
     metrics line, then save the checkpoint. A kill between the two loses only
     the line, which the resumed run writes again.
  5. summary.json, last; a sweep also prints its settings' table on stderr.

Steps 3-4, SIGTERM/Ctrl-C and failed writes: `neurokit.experiment.epochs`.

Times in summary.json: `load_seconds` (reading the data and placing it on the
devices), `compile_seconds` (initialising the state and compiling the epoch,
evaluation and checksum programs), `train_seconds` (the epochs' training alone,
summed over resumes; `epoch_seconds` per metrics line), `checkpoint_seconds`,
`loop_seconds` (the epoch loop: training, evaluation, writes) and `wall_seconds`
(this call, end to end).
"""
from __future__ import annotations

import copy
import functools
import math
import sys
import time

import jax
import numpy as np

from neurokit import data as data_lib
from neurokit.experiment import config as config_lib
from neurokit.experiment import cli, epochs, fs, members as members_lib, parts, workdir as wd
from neurokit.experiment.checkpoint import Checkpointer, checksums
from neurokit.experiment.errors import ConfigError, TrainingError
from neurokit.experiment.parts import build
from neurokit.experiment.placement import Placement, fetch
from neurokit.train import loop
from neurokit.train.state import init_state

# Errors a swept value raises when the rule or optimizer uses it in Python control flow.
_UNTRACEABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                jax.errors.TracerIntegerConversionError, ValueError)


# ----------------------------------------------------------------------------- NaN guard


def nonfinite_message(guard, groups, steps, workdir, last_saved, layerwise=False,
                      dtype='float32', who=None, fix=None):
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
            f'{fs.path(workdir) / "checkpoints"}' if last_saved else 'no checkpoint was saved')
    fp16 = ("float16's range ends at 65504, so first try --config.model.dtype=bfloat16; "
            if dtype == 'float16' else '')
    resumes = 'either change'
    if fix is not None:
        resumes = 'it'
    else:
        fix = ('lower --config.optimizer.learning_rate, clip with --config.optimizer.grad_clip'
               + (' (with --config.layerwise_updates=False)' if layerwise else ''))
    return (f'non-finite {" and ".join(what)} at step {step + 1} (epoch {step // steps + 1}, '
            f'batch {step % steps + 1} of {steps}){who}; {kept}; {fp16}{fix}, or pass '
            f'--config.nan_policy=skip (the same command resumes with {resumes}'
            + (')' if last_saved else ' or starts over)'))


def _sweep_nonfinite(guard, plan, epoch):
    """`who` and `fix` of a sweep's non-finite message: the first bad member's values."""
    bad = [int(i) for i in np.flatnonzero(np.atleast_1d(guard['first_bad']) >= 0)]
    shown = members_lib.label({**plan.values[bad[0]], 'seed': plan.seeds[bad[0]]})
    also = f' (also non-finite in epoch {epoch + 1}: members {bad[1:]})' if bad[1:] else ''
    return (f' in sweep member {bad[0]} ({shown}){also}',
            'lower or drop those values of --config.sweep (with a new --workdir)')


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
    # config.json records every rule hyperparameter, set or defaulted, whether the run
    # came from the CLI (which fills them in already) or from Python; the caller's
    # config is left as it was
    config = config_lib.with_rule_defaults(copy.deepcopy(config))
    config_lib.validate(config)
    status = wd.check(workdir, config)
    if status == wd.FINISHED:
        return {**wd.read_summary(fs.path(workdir) / wd.SUMMARY), 'already_finished': True}
    plan = members_lib.plan_members(config)

    t0 = time.perf_counter()
    feed = config.get('feed', 'device') == 'host'  # each process reads its rows of each batch
    dataset = data_lib.load(config.dataset, config.data_dir, **({'lazy': True} if feed else {}))
    split = parts.split(config, dataset)
    norm_note = None
    if config.get('input_norm', 'none') == 'standard':  # the training rows' statistics
        dataset, (mean, std) = data_lib.standardize(dataset, split.num_train)
        norm_note = (f'inputs standardised: (x - {mean:.4f}) / {std:.4f}, the mean and std '
                     f'of the {split.num_train} training examples')
    load_seconds = time.perf_counter() - t0
    model, rule, optimizer = build(config, dataset, split)
    members_lib.check_settings(config, plan, model)
    place = Placement.from_config(config, len(plan.seeds))
    primary = place.primary  # only process 0 writes files (orbax coordinates checkpoints)
    if primary:
        limit = parts.train_limit_note(config, split)
        for note in ([limit] if limit else []) + ([norm_note] if norm_note else []) + \
                place.notes(config, split.num_train):
            cli.note(note)

    t0 = time.perf_counter()
    if feed:  # nothing of the training inputs is read here; each call reads its rows
        n = split.num_train
        source = data_lib.source_of(dataset.x_train)
        y_host = np.asarray(dataset.y_train[:n])  # the labels: 1 byte per example
        rows = place.batch_rows(config.batch_size)
    else:
        n = place.train_rows(split.num_train)
        x_train, y_train = place.put_train(dataset, n)
    evals = {'test': place.put_eval(dataset.x_test, dataset.y_test, config.eval_batch_size)}
    if split.num_validation:
        evals['validation'] = place.put_eval(*split.validation(dataset), config.eval_batch_size)
    hp = place.put_members(plan.arrays())
    load_seconds += time.perf_counter() - t0
    steps = n // config.batch_size

    # every member's rule and optimizer: the run's own, or rebuilt from its swept values
    build_member = members_lib.member_builder(config, model, rule, optimizer,
                                              split.num_train // config.batch_size)

    def init(keys, hp):
        # lax.map, not vmap: the same numbers (random bits do not depend on batching)
        # at half the compile time of a vmapped init.
        return jax.lax.map(lambda kv: init_state(kv[0], model, *build_member(kv[1])), (keys, hp))

    def make_epoch(steps=None, **hooks):
        def member_epoch(state, hp, x, y, epoch, start, order=None):
            member_rule, member_opt = build_member(hp)
            return loop.make_epoch(member_rule, member_opt, config.batch_size,
                                   nan_policy=config.nan_policy, steps=steps,
                                   **hooks)(state, x, y, epoch, start, order)
        return member_epoch

    # a chunked epoch's data order, computed once per epoch from the members' run keys
    # (a permutation of a large data set costs more than a few steps)
    epoch_orders = jax.jit(jax.vmap(lambda key, e: loop.epoch_order(key, e, n, config.batch_size),
                                    (0, None)))

    def member_eval(state, hp, x, y):
        member_rule, _ = build_member(hp)
        return loop.make_evaluate(member_rule, config.eval_batch_size, place.eval_shards)(
            state.params, state.rule_state, x, y)

    evaluate = jax.vmap(member_eval, (0, 0, None, None))

    t0 = time.perf_counter()
    try:
        state = place.init(init, parts.member_keys(plan.seeds), hp)  # host state: checkpointed
        # one program per epoch, or chunks of K steps (and the epoch's remainder)
        chunk = min(config.steps_per_call or steps, steps)
        sizes = dict.fromkeys((chunk, steps % chunk or chunk))
        if feed:  # K batches per call, read by the processes (`Placement.put_batches`)
            m, b = len(plan.seeds), config.batch_size
            programs = {k: place.compile_epoch(
                make_epoch, state, hp, *place.batches_like(
                    np.empty((m, k, b) + source.input_shape, source.stored_dtype),
                    np.empty((m, k, b), y_host.dtype)), k, decode=source.decode)
                for k in sizes}
        else:
            orders0 = place.put_order(epoch_orders(state.key, 0)) if chunk < steps else None
            programs = {k: place.compile_epoch(make_epoch, state, hp, x_train, y_train,
                                               *((None,) if k == steps else (k, orders0)))
                        for k in sizes}
        eval_c = {k: place.compile_eval(evaluate, state, hp, *xy) for k, xy in evals.items()}
        checksums(state)  # compiles the checkpoints' checksum program now, with the others
    except _UNTRACEABLE as e:
        if not plan.swept:
            raise
        raise _untraceable(config, plan, e) from None
    compile_seconds = time.perf_counter() - t0
    groups = loop.param_groups(jax.tree.map(lambda a: a[0], state.params), model)

    with epochs.writing(fs.path(workdir), 0):
        wd.start_writing(workdir, status, config, lock if primary else None)
        ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, run=True,
                            asynchronous=config.get('async_checkpoints', False))
    start = epochs.resume(ckpt, state, steps, fs.path(workdir) / wd.METRICS, primary)
    dstate = place.to_devices(start.state)  # what the compiled epoch takes (pmap: replicas)
    keys = fetch(state.key)  # the members' run keys (every process's): the data order's seed
    poison = epochs.poison_epoch()
    # one run without a sweep keeps scalars in its records; several members, or a sweep,
    # one value per member
    value = functools.partial(_member_value, single=not plan.swept and len(plan.seeds) == 1)

    def one_epoch(epoch, state, last_saved, offset=0, partial=None, between=None):
        """Trains epoch `epoch` from step `offset` of it (a mid-epoch checkpoint's, with
        its `partial` metric sums) in calls of `chunk` steps; `between(offset, host_state,
        sums)` runs after every call that does not end the epoch (it may save and stop)."""
        nonlocal dstate
        sums = epochs.MetricSums.from_json(partial)
        if feed:
            order = np.asarray(fetch(epoch_orders(keys, epoch)))  # (members, steps, batch)

            def read(start):  # this process's rows of the next call's batches, placed
                idx = order[:, start:start + min(chunk, steps - start), rows]
                return place.put_batches(source.read(idx), y_host[idx], config.batch_size)

            t = time.perf_counter()
            batches = read(offset)
            first_read = time.perf_counter() - t  # counted with the first call
        else:
            first_read = 0.0
            x_in = x_train if poison != epoch + 1 else place.poison(x_train)
            orders = () if chunk == steps else (place.put_order(epoch_orders(keys, epoch)),)
        while offset < steps:
            k = min(chunk, steps - offset)
            t = time.perf_counter()
            if feed:
                dstate, metrics = programs[k](dstate, hp, *batches, epoch, offset)
                if offset + k < steps:  # read the next batches while the devices compute
                    batches = read(offset + k)
            else:
                dstate, metrics = programs[k](dstate, hp, x_in, y_train, epoch, offset,
                                              *(orders if k < steps else ()))
            jax.block_until_ready(dstate)
            call_seconds, first_read = time.perf_counter() - t + first_read, 0.0
            metrics = fetch(metrics)
            guard = metrics.pop('guard')._asdict()
            if config.nan_policy == 'stop' and np.any(guard['first_bad'] >= 0):
                who, fix = _sweep_nonfinite(guard, plan, epoch) if plan.swept else (None, None)
                raise TrainingError(nonfinite_message(guard, groups, steps, workdir, last_saved,
                                                      config.layerwise_updates,
                                                      config.model.dtype, who=who, fix=fix))
            sums.add(metrics, k - np.asarray(guard['skipped']), call_seconds)
            offset += k
            if offset < steps and between is not None:
                between(offset, lambda: place.host_state(dstate), sums)
        state = place.host_state(dstate)
        record = {'epoch': epoch + 1, 'step': steps * (epoch + 1)}
        record.update({f'train_{k}': value(v) for k, v in sums.means().items()})
        for k, xy in evals.items():
            record[f'{k}_accuracy'] = value(fetch(eval_c[k](state, hp, *xy)).tolist())
        record['epoch_seconds'] = sums.seconds
        return state, record, sums.seconds

    done = epochs.train_epochs(config, workdir, ckpt, start, one_epoch, primary, steps)

    summary = _summary(config, plan, done.record, value, split, n)
    summary.update({
        'train_seconds': done.train_seconds,
        'load_seconds': load_seconds,
        'compile_seconds': compile_seconds,
        'checkpoint_seconds': done.checkpoint_seconds,
        'loop_seconds': done.loop_seconds,
        'wall_seconds': time.perf_counter() - t_start,
        'resumed_from_epoch': start.epoch,
        'samples_per_second': (len(plan.seeds) * steps * config.batch_size * config.epochs
                               / max(done.train_seconds, 1e-9)),
        **place.summary(),  # devices (the number used), mesh, parallel, processes
        'platform': jax.devices()[0].platform,
        'config': config.to_dict(),
    })
    if primary:
        with epochs.writing(fs.path(workdir) / wd.SUMMARY, config.epochs):
            wd.write_json(fs.path(workdir) / wd.SUMMARY, _jsonable(summary))
        if plan.swept:
            print(members_lib.table(summary['settings'], summary['best_setting']),
                  file=sys.stderr, flush=True)
            if summary['best_setting'] is None:
                cli.note(members_lib.NO_VALIDATION_NOTE)
    return summary


def _untraceable(config, plan, e) -> ConfigError:
    """The ConfigError for a swept key the rule or optimizer cannot take as a traced value."""
    said = ' '.join(str(e).split())[:300]
    if isinstance(e, ValueError) and 'swept' in said:  # the rule's own words suffice
        return ConfigError(f'config.sweep={config.sweep!r}: {said}')
    why = f' ({said[:200]})' if isinstance(e, ValueError) else ''
    return ConfigError(f'config.sweep={config.sweep!r}: one of {", ".join(plan.names)} is used '
                       'in Python control flow (a count, a shape or an on/off test), so it '
                       f'cannot be swept in one program{why}; run one workdir per value instead')


def _summary(config, plan, record, value, split, n) -> dict:
    """The results part of summary.json, from the last epoch's metrics record.

    Spreads are sample standard deviations over members (ddof=1; 0.0 for one member).
    A sweep adds its members, each setting's mean/std over its seeds, and the best
    setting by mean validation accuracy (None without a validation split).
    """
    out = {
        'rule': config.rule,
        'dataset': config.dataset,
        'model': config.model.name,
        'epochs': config.epochs,
        'batch_size': config.batch_size,
        'seed': config.seed,
        'num_seeds': config.num_seeds,
        'num_members': len(plan.seeds),
        'train_examples': n,
        'validation_examples': split.num_validation,
    }
    if plan.swept:
        out['sweep'] = config.sweep
        out['members'] = [{**v, 'seed': s} for v, s in zip(plan.values, plan.seeds)]
    per_member = {}
    for what in ('test', 'validation'):
        if f'{what}_accuracy' not in record:
            continue
        accs = np.atleast_1d(np.asarray(record[f'{what}_accuracy'], np.float64))
        per_member[what] = accs.tolist()
        mean, std = members_lib.spread(accs)
        out.update({f'{what}_accuracy': value(accs.tolist()), f'{what}_accuracy_mean': mean,
                    f'{what}_accuracy_std': std})
    out['std_ddof'] = members_lib.STD_DDOF
    if plan.swept:
        settings = members_lib.setting_results(plan, per_member['test'],
                                               per_member.get('validation'))
        out['settings'] = settings
        out['best_setting'] = members_lib.best_setting(settings)
    return out


def _member_value(v, single):
    """One member of a run: a scalar; else the list, one per member."""
    return v[0] if single and isinstance(v, list) else v


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
