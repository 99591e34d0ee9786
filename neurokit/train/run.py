"""`run(config, workdir)`: the whole experiment, from config to summary.json."""
from __future__ import annotations

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from neurokit import config as config_lib
from neurokit import data as data_lib
from neurokit import models
from neurokit.errors import TrainingError
from neurokit.rules import registry as rule_registry
from neurokit.train import loop, optim, workdir as wd
from neurokit.train.state import init_state


def build(config, dataset):
    """Model, rule and optimizer for a validated config and its data set."""
    m = config.model
    model = models.build(m.name, dataset.input_shape, dataset.num_classes, hidden=m.hidden,
                         activation=m.activation, init=m.init, dtype=m.dtype, channels=m.channels,
                         kernel_size=m.kernel_size, dense_widths=m.dense_widths)
    rule = rule_registry.build(config.rule, model, **config.rule_kwargs.to_dict())
    n = _num_train(config, dataset)
    optimizer = optim.build(config.optimizer, n // config.batch_size, config.epochs)
    return model, rule, optimizer


def _num_train(config, dataset):
    n = dataset.x_train.shape[0]
    return min(n, config.train_limit) if config.train_limit else n


def _member_keys(config):
    return jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(config.num_seeds)])


def _scalars(tree):
    """Device metrics -> plain floats (or lists of floats, one per member)."""
    return {k: (np.asarray(v).tolist()) for k, v in tree.items()}


def run(config, workdir: str) -> dict:
    """Trains and evaluates as `config` says, writing metrics into `workdir`.

    Everything that can be checked is checked before anything is written:
    the config, the workdir, then the data files.

    Args:
      config: an `ml_collections.ConfigDict` built from `neurokit.config.base_config()`.
      workdir: output folder; gets `metrics.jsonl` (one line per epoch) and
        `summary.json`.

    Returns:
      The summary dict.

    Raises:
      ConfigError, DataError, WorkdirError: bad input (one-line messages).
      TrainingError: the loss became non-finite.
    """
    t_start = time.perf_counter()
    config_lib.validate(config)
    wd.check(workdir)
    dataset = data_lib.load(config.dataset, config.data_dir)
    config_lib.validate_with_data(config, dataset)
    model, rule, optimizer = build(config, dataset)

    n = _num_train(config, dataset)
    x_train, y_train = jnp.asarray(dataset.x_train[:n]), jnp.asarray(dataset.y_train[:n])
    x_test, y_test = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)
    steps = n // config.batch_size

    members = config.num_seeds
    init = jax.vmap(lambda k: init_state(k, model, rule, optimizer))
    epoch_fn = jax.vmap(loop.make_epoch(rule, optimizer, config.batch_size), (0, None, None, None))
    eval_fn = jax.vmap(loop.make_evaluate(rule, config.eval_batch_size), (0, 0, None, None))
    state = jax.jit(init)(_member_keys(config))

    t0 = time.perf_counter()
    epoch_c = jax.jit(epoch_fn, donate_argnums=0).lower(state, x_train, y_train, 0).compile()
    eval_c = jax.jit(eval_fn).lower(state.params, state.rule_state, x_test, y_test).compile()
    compile_seconds = time.perf_counter() - t0

    os.makedirs(workdir, exist_ok=True)
    metrics_path = os.path.join(workdir, wd.METRICS)
    train_seconds, test_acc = 0.0, None
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        state, metrics = epoch_c(state, x_train, y_train, epoch)
        jax.block_until_ready(state)
        dt = time.perf_counter() - t0
        train_seconds += dt
        metrics = _scalars(metrics)
        loss = np.asarray(metrics['loss'])
        if not np.all(np.isfinite(loss)):
            raise TrainingError(f'non-finite training loss {loss.tolist()} in epoch {epoch + 1}; '
                                'lower --config.optimizer.learning_rate or check the data')
        test_acc = np.asarray(eval_c(state.params, state.rule_state, x_test, y_test))
        record = {'epoch': epoch + 1, 'step': steps * (epoch + 1)}
        record.update({f'train_{k}': _member_value(v, members) for k, v in metrics.items()})
        record['test_accuracy'] = _member_value(test_acc.tolist(), members)
        record['epoch_seconds'] = dt
        wd.append_jsonl(metrics_path, record)

    accs = np.asarray(test_acc, np.float64)
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
        'train_seconds': train_seconds,
        'compile_seconds': compile_seconds,
        'wall_seconds': time.perf_counter() - t_start,
        'samples_per_second': members * steps * config.batch_size * config.epochs / train_seconds,
        'devices': jax.device_count(),
        'platform': jax.devices()[0].platform,
        'config': config.to_dict(),
    }
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
