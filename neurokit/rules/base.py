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
      predict: `(params, rule_state, x) -> logits`.
      init_params: `(key, model_params) -> params`; adds the rule's own
        trainable parameters beside `'layers'`.
      applies_updates: True when `step` already ran its own optimizer and its
        updates must be added to the params as they are.
    """
    init: Callable
    step: Callable
    predict: Callable
    init_params: Callable = no_extra_params
    applies_updates: bool = False


def zeros_like_tree(tree):
    """Zero updates for the parts of params a rule does not train."""
    return jax.tree.map(lambda x: jax.numpy.zeros_like(x), tree)
