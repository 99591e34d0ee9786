"""Compiled training: one step, one scanned epoch, one compiled evaluation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurokit.precision import check_optimizer_state
from neurokit.rules.base import Rule, check_examples, check_label_range
from neurokit.traced import is_traced
from neurokit.train.state import (LayerwiseOptState, TrainState, check_layerwise, check_opt_state,
                                  shuffle_key, step_key)


def make_train_step(rule: Rule, optimizer: optax.GradientTransformation, reduce=None):
    """`(state, batch) -> (state, metrics)`: the step shared by every rule.

    Args:
      rule, optimizer: what to step with.
      reduce: optional `(updates, rule_state, metrics) -> same`, applied between the
        rule and the optimizer (the pmap path averages across devices here).

    A state whose `opt_state` is a `LayerwiseOptState` (`init_state(...,
    layerwise=True)`) is stepped by `rule.layerwise_step`: each block's optimizer
    update is applied inside the rule's forward pass.

    Raises (at trace time):
      ValueError: the state's optimizer state was made by another optimizer
        (`state.check_opt_state`), or float16 parameters with float16 optimizer state.
    """

    def train_step(state: TrainState, batch):
        layerwise = isinstance(state.opt_state, LayerwiseOptState)
        if layerwise:
            check_layerwise(rule, True)
        if layerwise or not rule.applies_updates:  # the optimizer steps this state
            check_opt_state(rule, optimizer, state.params, state.opt_state)  # at trace time
        if not rule.applies_updates:
            check_optimizer_state(state.params, state.opt_state)
        if layerwise:
            if reduce is not None:
                raise ValueError('layerwise updates apply each block inside the step, so there is '
                                 'no point to average updates across devices (pmap); use '
                                 "parallel='sharded' or layerwise_updates=False")
            params, rule_state, blocks, metrics = rule.layerwise_step(
                state.params, state.rule_state, state.opt_state.blocks, batch, step_key(state),
                optimizer)
            return TrainState(params, LayerwiseOptState(tuple(blocks)), rule_state, state.key,
                              state.step + 1), metrics
        updates, rule_state, metrics = rule.step(state.params, state.rule_state, batch,
                                                 step_key(state))
        if reduce is not None:
            updates, rule_state, metrics = reduce((updates, rule_state, metrics))
        if rule.applies_updates:
            params, opt_state = optax.apply_updates(state.params, updates), state.opt_state
        else:
            updates, opt_state = optimizer.update(updates, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, rule_state, state.key, state.step + 1), metrics

    return train_step


def check_batch_size(batch_size):
    """ValueError unless `batch_size` is an integer >= 1."""
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')


def epoch_order(key, epoch, num_examples, batch_size):
    """Batch indices of one epoch: a permutation cut into full batches.

    Returns:
      int32 array (steps, batch_size); the last partial batch is dropped.

    Raises:
      ValueError: `batch_size` is not an integer in [1, num_examples] (a larger batch
        would silently run no step at all).
    """
    check_batch_size(batch_size)
    if batch_size > num_examples:
        raise ValueError(f'batch_size={batch_size} exceeds the {num_examples} examples, so an '
                         'epoch would run no step; lower it')
    steps = num_examples // batch_size
    perm = jax.random.permutation(shuffle_key(key, epoch), num_examples)
    return perm[:steps * batch_size].reshape(steps, batch_size)


def check_labels(rule: Rule, params, rule_state, x, y) -> None:
    """`rules.base.check_label_range` for a whole data set, the class count read from
    `rule.predict`'s logits (`jax.eval_shape`: nothing is computed). Traced labels (under
    `jit`) cannot be inspected and are left alone."""
    if is_traced(y) or np.size(y) == 0 or rule.predict is None:
        return
    num_classes = jax.eval_shape(rule.predict, params, rule_state, x[:1]).shape[-1]
    check_label_range(y, num_classes)


def make_epoch(rule: Rule, optimizer, batch_size: int):
    """`(state, x, y, epoch) -> (state, mean metrics)`: one epoch as one `lax.scan`.

    The data set stays on the device; each step gathers its batch by index.

    Raises:
      ValueError: `x` and `y` do not match (`rules.check_examples`), or, when they are
        concrete (called outside `jit`), a label lies outside [0, num_classes)
        (`check_labels`); under `jit` the labels cannot be inspected.
    """
    check_batch_size(batch_size)
    train_step = make_train_step(rule, optimizer)

    def epoch_fn(state: TrainState, x, y, epoch):
        x, y = jnp.asarray(x), jnp.asarray(y)  # numpy arrays cannot be indexed by a traced order
        check_examples(x, y)
        check_labels(rule, state.params, state.rule_state, x, y)
        order = epoch_order(state.key, epoch, x.shape[0], batch_size)

        def body(s, idx):
            return train_step(s, {'x': x[idx], 'y': y[idx]})

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return epoch_fn


def make_evaluate(rule: Rule, batch_size: int):
    """`(params, rule_state, x, y) -> accuracy`, compiled as one scan over batches.

    Raises:
      ValueError: as `make_epoch` (concrete labels outside [0, num_classes) would count
        as wrong without an error), or no examples.
    """
    check_batch_size(batch_size)

    def evaluate(params, rule_state, x, y):
        x, y = jnp.asarray(x), jnp.asarray(y)
        check_examples(x, y)
        check_labels(rule, params, rule_state, x, y)
        n = x.shape[0]
        if n == 0:
            raise ValueError('no examples to evaluate')
        bs = min(batch_size, n)
        nb = -(-n // bs)
        pad = nb * bs - n
        xp = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        yp = jnp.pad(y, (0, pad), constant_values=-1)  # padded rows never count as correct

        def body(correct, i):
            xb = jax.lax.dynamic_slice_in_dim(xp, i * bs, bs)
            yb = jax.lax.dynamic_slice_in_dim(yp, i * bs, bs)
            pred = jnp.argmax(rule.predict(params, rule_state, xb), -1)
            return correct + jnp.sum(pred == yb, dtype=jnp.int32), None

        correct, _ = jax.lax.scan(body, jnp.zeros((), jnp.int32), jnp.arange(nb))
        return correct / n

    return evaluate
