"""The learning-rule interface every rule implements.

A rule is built by a constructor that closes over the model and the rule's
hyperparameters, like an optax `GradientTransformation`::

    rule = neurokit.rules.bp(model)
    params = rule.init_params(key, model.init(key))   # adds rule-owned trainables
    rule_state = rule.init(key, params)               # fixed things: feedback matrices...
    updates, rule_state, metrics = rule.step(params, rule_state, batch, key)
    updates, opt_state = optimizer.update(updates, opt_state, params)
    params = optax.apply_updates(params, updates)
    logits = rule.predict(params, rule_state, x)

`updates` has the tree of `params` and the sign of a gradient (the optimizer
descends it), so any optax optimizer, schedule or `multi_transform` applies to
any rule. A rule that must step the weights inside its own inner loop
(incremental predictive coding) is built with an optax optimizer, keeps that
optimizer's state in its rule state, and sets `applies_updates=True`: its
`updates` are then final parameter increments that the training loop adds
as they are, bypassing the outer optimizer.

Layerwise updates (optional): a rule whose layers learn from local losses can
also provide `blocks` and `layerwise_step`. The training loop then keeps one
optimizer state per block (`neurokit.train.init_state(..., layerwise=True)`)
and the rule applies each block's optimizer step as soon as that block's
gradient exists, inside its one forward pass::

    opt_states = tuple(optimizer.init(b) for b in rule.blocks(params))
    params, rule_state, opt_states, metrics = rule.layerwise_step(
        params, rule_state, opt_states, batch, key, optimizer)

so a block's gradient is dead before the next block's forward runs (with one
update after all gradients, XLA:GPU keeps every layer's gradient alive at
once). For element-wise optimizers (sgd, adam, adamw, rmsprop, their
schedules) this computes the same numbers as `step` + `optimizer.update`; an
optimizer that couples blocks (global-norm clipping) would see one block at a
time.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurokit.checks import check_count, check_range, finite
from neurokit.models.model import check_layer_count
from neurokit.traced import is_traced

# The number checks rules use live in `neurokit.checks` (optim and config share them);
# they are re-exported here, where rule code has always found them.
__all__ = ['Batch', 'EmptyState', 'Metrics', 'Params', 'Rule', 'RuleState', 'check_batch',
           'check_count', 'check_examples', 'check_label_range', 'check_params', 'check_range',
           'check_state',
           'finite', 'no_extra_params', 'zeros_like_tree']

Params = Any
RuleState = Any
Batch = dict  # {'x': inputs, 'y': integer labels}
Metrics = dict


class EmptyState(NamedTuple):
    """Rule state of rules that keep none."""


def no_extra_params(key, params):
    """Default `init_params`: the rule adds no trainable parameters."""
    del key
    return params


class Rule(NamedTuple):
    """A learning rule: pure functions over pytrees.

    Attributes:
      init: `(key, params) -> rule_state`; fixed, non-trained state.
      step: `(params, rule_state, batch, key) -> (updates, rule_state, metrics)`.
        `metrics` is a dict of scalars and must hold 'loss'.
      predict: `(params, rule_state, x) -> logits`; `x` is a batch `(B, *input_shape)`
        (one example: `x[None]`).
      init_params: `(key, model_params) -> params`; adds the rule's own
        trainable parameters beside `'layers'`.
      applies_updates: True when `step` already ran its own optimizer and its
        updates must be added to the params as they are.
      blocks: optional `params -> tuple of pytrees`, the blocks `layerwise_step`
        steps one at a time (together they hold every parameter the rule trains).
      layerwise_step: optional `(params, rule_state, opt_states, batch, key,
        optimizer) -> (params, rule_state, opt_states, metrics)`; `opt_states`
        has one optimizer state per block.
    """
    init: Callable
    step: Callable
    predict: Callable
    init_params: Callable = no_extra_params
    applies_updates: bool = False
    blocks: Callable | None = None
    layerwise_step: Callable | None = None


def zeros_like_tree(tree):
    """Zero updates for the parts of params a rule does not train."""
    return jax.tree.map(lambda x: jax.numpy.zeros_like(x), tree)


def check_examples(x, y):
    """ValueError unless `x` and `y` hold the same number of examples and `y` is a vector
    of integer labels.

    Checked at trace time: a mismatch would otherwise be silent (a gather clamps
    indices past the end of a shorter `y`, and a float label 3.5 is a zero one-hot row).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f'x has {x.shape[0]} examples but y has {y.shape[0]}; pass matching '
                         'arrays')
    if y.ndim != 1:
        raise ValueError(f'y must be integer class labels of shape (N,), got shape {y.shape} '
                         '(one-hot labels: pass argmax(y, -1))')
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f'y must be integer class labels, got dtype {y.dtype}; pass '
                         'y.astype(jnp.int32) if they are whole numbers')


def check_batch(model, batch, params=None) -> dict:
    """`batch` with `x` and `y` as JAX arrays, checked against `model`; every rule's step
    calls it first.

    At trace time: `y` is a vector of integer labels with as many entries as `x` has
    examples (`check_examples`), and each example of `x` holds the model's
    `prod(input_shape)` values. Labels that are concrete (a step called outside `jit`)
    must also lie in [0, num_classes): one outside it is an all-zero one-hot row, a
    zero loss and no learning, without any error. Under `jit` the values cannot be
    inspected; `neurokit.data`'s loaders check every data set's labels when they load it.
    With `params`, also that they hold one entry per model layer (`check_layer_count`).
    """
    if params is not None:
        check_layer_count(model.layers, params)
    x, y = jnp.asarray(batch['x']), jnp.asarray(batch['y'])
    check_examples(x, y)
    want = math.prod(model.input_shape)
    if math.prod(x.shape[1:]) != want:
        raise ValueError(f'x has examples of shape {tuple(x.shape[1:])} but the model takes '
                         f'{tuple(model.input_shape)} ({want} values); pass inputs of shape '
                         f'(N, {", ".join(map(str, model.input_shape))})')
    check_label_range(batch['y'], model.num_classes)
    return {**batch, 'x': x, 'y': y}


def check_label_range(y, num_classes: int) -> None:
    """ValueError if concrete labels `y` fall outside [0, num_classes): such a label is an
    all-zero one-hot row, a zero loss and no error. Traced labels (under `jit`) cannot be
    inspected and pass; one pass over `y` on the host otherwise."""
    if is_traced(y) or not np.size(y):
        return
    labels = np.asarray(y)  # on the host: inside a trace, jnp.min would be traced
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f'labels fall outside [0, {num_classes}) (found {lo}..{hi}); '
                         'pass class indices 0..num_classes-1')


def check_state(state, kind: type, rule: str) -> None:
    """ValueError unless `state` is the `kind` that rule `rule`'s `init` returns."""
    if not isinstance(state, kind):
        raise ValueError(f'{rule}: the rule state is {type(state).__name__}, not {kind.__name__}; '
                         'pass the state this rule made: state = rule.init(key, params)')


def check_params(params, key: str, rule: str) -> None:
    """ValueError unless `params` holds the entry `key` that rule `rule`'s `init_params` adds."""
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f'{rule}: params have no {key!r} (the rule\'s own trainables); build them '
                         'with params = rule.init_params(key, model.init(key))')

