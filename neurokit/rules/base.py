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

from typing import Any, Callable, NamedTuple

import jax

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
