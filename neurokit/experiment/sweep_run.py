"""`--config.sweep=...`: a hyperparameter sweep from the command line, as one vmapped program.

  python -m experiments.train --config=experiments/configs/bp.py --workdir=/tmp/runs/lr \
      --config.sweep='optimizer.learning_rate=0.0003,0.001,0.003' --config.num_seeds=2

Members are the grid of the swept values times `num_seeds` seeds (`seed`,
`seed + 1`, ...); each member's rule and optimizer are rebuilt inside the
vmapped epoch from its traced values (`neurokit.parallel.sweep.make_sweep`), so
the whole sweep compiles once. metrics.jsonl and summary.json hold per-member
lists, in member order, plus `members` (each member's values and seed) and
`test_accuracy_mean`/`test_accuracy_std` over all members.

A sweep splits its members over the devices (the mesh's `data` axis: by default
as many visible devices as divide the member count, or `--config.mesh=data=N`);
each device trains its members alone, so the numbers are the one-device sweep's
up to float rounding (XLA picks kernels by shape). It resumes like a run
(`neurokit.experiment.epochs`): the whole vmapped state is checkpointed every
`checkpoint_every` epochs, SIGTERM or Ctrl-C saves one and exits 3, and the same
command continues from the newest checkpoint, bit for bit; a finished sweep is
left untouched. A hyperparameter the rule or optimizer uses in Python control
flow (a count, a shape, `if weight_decay:`) cannot be traced; such a key is
a one-line ConfigError that names it.
"""
from __future__ import annotations

import itertools
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from neurokit.experiment import config as config_lib
from neurokit import data as data_lib
from neurokit import optim
from neurokit.experiment.errors import ConfigError, TrainingError
from neurokit.parallel import mesh as mesh_lib
from neurokit.parallel import sweep as sweep_lib
from neurokit.rules import registry as rule_registry
from neurokit.experiment import epochs
from neurokit.experiment import workdir as wd
from neurokit.experiment.checkpoint import Checkpointer, checksums
from neurokit.experiment.run import build as build_run, nonfinite_message, num_train
from neurokit.train import loop


class _Cfg(dict):
    """A dict read like a ConfigDict (`cfg.name`, `cfg.get`), able to hold tracers."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def members(config) -> tuple[list[dict], list[int]]:
    """The grid of `config.sweep` times the seeds: (per-member values, per-member seeds)."""
    axes = config_lib.parse_sweep(config.sweep, config)
    names = list(axes)
    combos = list(itertools.product(*(axes[n] for n in names)))
    values, seeds = [], []
    for combo in combos:
        for i in range(config.num_seeds):
            values.append(dict(zip(names, combo)))
            seeds.append(config.seed + i)
    return values, seeds


def member_devices(config, members: int, num_devices: int, processes: int = 1):
    """How many devices a sweep of `members` members splits them over, and a note (or None)
    when the default mesh leaves devices idle.

    Raises:
      ConfigError: several processes, pmap, fsdp, a stage axis, or a `--config.mesh`
        data size that exceeds the devices or does not divide the members.
    """
    why = ('a sweep splits its members over the devices of one process (each device trains '
           'its members alone)')
    if processes > 1:
        raise ConfigError(f'config.sweep runs in one process, not {processes}: {why}; launch it '
                          'without jax.distributed')
    if config.parallel == 'none':
        return 1, None
    if config.parallel == 'pmap' or config.fsdp:
        flag = '--config.parallel=pmap' if config.parallel == 'pmap' else '--config.fsdp=True'
        raise ConfigError(f'{flag} does not apply to config.sweep: {why}; drop {flag}')
    axes = config_lib.parse_mesh(config.mesh)
    if axes.get(mesh_lib.STAGE, 1) > 1:
        raise ConfigError(f'config.mesh={config.mesh!r}: {why}, so a stage axis does not apply; '
                          "drop 'stage='")
    if mesh_lib.DATA in axes:
        data = axes[mesh_lib.DATA]
        if data > num_devices:
            raise ConfigError(f'config.mesh={config.mesh!r} needs {data} devices but '
                              f'{num_devices} are visible; lower data=')
        if members % data:
            raise ConfigError(f'config.mesh={config.mesh!r}: the sweep\'s {members} members '
                              f'cannot be split evenly over {data} devices; use a data size '
                              f'that divides {members}')
        return data, None
    data = math.gcd(members, num_devices)
    note = None if data == num_devices else (
        f'the sweep\'s {members} members run on {data} of the {num_devices} devices (each '
        f'device takes as many members); a member count that is a multiple of {num_devices} '
        'uses them all')
    return data, note


def _settings(hp: dict) -> str:
    """A member's values for messages: 'optimizer.learning_rate=0.001, seed=0'."""
    return ', '.join(f'{k}={v:g}' for k, v in hp.items())


def _build_fn(config, model, steps_per_epoch):
    base_rule = config.rule_kwargs.to_dict()
    base_opt = config.optimizer.to_dict()

    def build(hp):
        rule_kw = dict(base_rule)
        opt_cfg = _Cfg(base_opt)
        for key, v in hp.items():
            group, _, name = key.partition('.')
            (rule_kw if group == 'rule_kwargs' else opt_cfg)[name] = v
        rule = rule_registry.build(config.rule, model, **rule_kw)
        return rule, optim.build(opt_cfg, steps_per_epoch, config.epochs, config.model.dtype)

    return build


def run_sweep(config, workdir: str, status: str, lock) -> dict:
    """Trains every member of `config.sweep`; writes metrics.jsonl and summary.json.

    `lock` (a `workdir.Lock`) is taken before the first write."""
    t_start = time.perf_counter()
    dataset = data_lib.load(config.dataset, config.data_dir)
    config_lib.validate_with_data(config, dataset)
    # the config's own values build a model and a rule (refused here if the rule cannot
    # make the layerwise step asked for); members rebuild rule and optimizer when traced
    model, rule, _ = build_run(config, dataset)
    n = num_train(config, dataset)
    steps = n // config.batch_size
    values, seeds = members(config)
    own = [k for k in values[0] if k.startswith('optimizer.')]
    if rule.applies_updates and own:
        raise ConfigError(f'config.sweep: rule {config.rule!r} steps its weights with its own '
                          f'optimizer, so {own[0]} has no effect and the members would be the '
                          'same; sweep its rule_kwargs (e.g. rule_kwargs.weight_lr) instead')
    # each setting checked like a run, in member order (the first bad one is reported)
    for combo in dict.fromkeys(tuple(sorted(v.items())) for v in values):
        try:
            member = config_lib.sweep_member(config, dict(combo))
            config_lib.validate(member)
            config_lib.validate_with_data(member, dataset)
        except ConfigError as e:
            raise ConfigError(f'config.sweep member {_settings(dict(combo))}: {e}') from None
    devices, note = member_devices(config, len(values), jax.device_count(), jax.process_count())
    mesh = Mesh(np.asarray(jax.devices()[:devices]), (mesh_lib.DATA,))
    split, whole = NamedSharding(mesh, P(mesh_lib.DATA)), NamedSharding(mesh, P())
    names = sorted(values[0])
    arrays = jax.device_put({k: np.asarray([v[k] for v in values], np.float32) for k in names},
                            split)
    keys = jax.device_put(jnp.stack([jax.random.PRNGKey(s) for s in seeds]), split)
    x, y, x_test, y_test = jax.device_put(
        (dataset.x_train[:n], dataset.y_train[:n], dataset.x_test, dataset.y_test), whole)

    # each member's epoch is a run's guarded epoch: a non-finite loss or parameter stops the
    # sweep naming the member ('stop'), or is skipped in that member only ('skip')
    init, epoch_fn, eval_fn = sweep_lib.make_sweep(model, _build_fn(config, model, steps),
                                                   config.batch_size, config.eval_batch_size,
                                                   config.layerwise_updates, config.nan_policy)
    t0 = time.perf_counter()
    try:
        # every leaf of the state, the metrics and the accuracies has the member axis first
        state = jax.jit(init, out_shardings=split)(keys, arrays)
        epoch_c = jax.jit(epoch_fn, donate_argnums=0, out_shardings=split).lower(
            state, arrays, x, y, 0).compile()
        eval_c = jax.jit(eval_fn, out_shardings=split).lower(state, arrays, x_test,
                                                             y_test).compile()
        poison_c = jax.jit(lambda a: a * jnp.nan, out_shardings=whole)
        checksums(state)  # compiles the checkpoints' checksum program now, with the others
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
            jax.errors.TracerIntegerConversionError, ValueError) as e:
        said = ' '.join(str(e).split())[:300]
        if isinstance(e, ValueError) and 'swept' in said:  # the rule's own words suffice
            raise ConfigError(f'config.sweep={config.sweep!r}: {said}') from None
        why = f' ({said[:200]})' if isinstance(e, ValueError) else ''
        raise ConfigError(f'config.sweep={config.sweep!r}: one of {", ".join(names)} is used in '
                          'Python control flow (a count, a shape or an on/off test), so it cannot '
                          f'be swept in one program{why}; run one workdir per value instead'
                          ) from None
    compile_seconds = time.perf_counter() - t0
    if note:
        print(f'note: {note}', file=sys.stderr, flush=True)

    with epochs.writing(os.path.abspath(workdir), 0):
        wd.start_writing(workdir, status, config, lock)
        ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, run=True)
    start = epochs.resume(ckpt, state, steps, os.path.join(workdir, wd.METRICS))
    poison = epochs.poison_epoch()

    groups = loop.param_groups(jax.tree.map(lambda a: a[0], state.params), model)

    def one_epoch(epoch, state, last_saved):
        x_in = x if poison != epoch + 1 else poison_c(x)
        t = time.perf_counter()
        state, metrics = epoch_c(state, arrays, x_in, y, epoch)
        jax.block_until_ready(state)
        dt = time.perf_counter() - t
        metrics = jax.device_get(metrics)
        guard = metrics.pop('guard')._asdict()
        metrics = {k: np.asarray(v) for k, v in metrics.items()}
        if config.nan_policy == 'stop' and np.any(guard['first_bad'] >= 0):
            # the step and layers named are the first bad member's; the others are listed
            bad = [int(i) for i in np.flatnonzero(guard['first_bad'] >= 0)]
            shown = _settings({**values[bad[0]], 'seed': seeds[bad[0]]})
            also = f' (also non-finite in epoch {epoch + 1}: members {bad[1:]})' if bad[1:] else ''
            who = f' in sweep member {bad[0]} ({shown}){also}'
            raise TrainingError(nonfinite_message(guard, groups, steps, workdir, last_saved,
                                                  config.layerwise_updates, config.model.dtype,
                                                  rule.applies_updates, who=who,
                                                  fix='lower or drop those values of '
                                                  '--config.sweep (with a new --workdir)'))
        acc = np.asarray(eval_c(state, arrays, x_test, y_test), np.float64)
        record = {'epoch': epoch + 1, 'step': steps * (epoch + 1)}
        record.update({f'train_{k}': v.tolist() for k, v in metrics.items()})
        record['test_accuracy'] = acc.tolist()
        record['epoch_seconds'] = dt
        return state, record, dt

    done = epochs.train_epochs(config, workdir, ckpt, start, one_epoch)
    acc = np.asarray(done.record['test_accuracy'], np.float64)
    summary = {
        'rule': config.rule, 'dataset': config.dataset, 'model': config.model.name,
        'epochs': config.epochs, 'batch_size': config.batch_size, 'seed': config.seed,
        'sweep': config.sweep, 'num_members': len(values),
        'members': [{**v, 'seed': s} for v, s in zip(values, seeds)],
        'test_accuracy': acc.tolist(),
        'test_accuracy_mean': float(acc.mean()), 'test_accuracy_std': float(acc.std()),
        'best_member': int(np.argmax(acc)),
        'train_seconds': done.train_seconds, 'compile_seconds': compile_seconds,
        'checkpoint_seconds': done.checkpoint_seconds, 'loop_seconds': done.loop_seconds,
        'wall_seconds': time.perf_counter() - t_start, 'resumed_from_epoch': start.epoch,
        'samples_per_second': len(values) * steps * config.batch_size * config.epochs
        / max(done.train_seconds, 1e-9),
        'devices': devices, 'mesh': {mesh_lib.DATA: devices, mesh_lib.STAGE: 1},
        'parallel': 'none' if config.parallel == 'none' else 'sharded',
        'platform': jax.devices()[0].platform,
        'config': config.to_dict(),
    }
    with epochs.writing(os.path.join(workdir, wd.SUMMARY), config.epochs):
        wd.write_json(os.path.join(workdir, wd.SUMMARY), summary)
    return summary
