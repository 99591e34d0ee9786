"""The training state: one plain pytree, checkpointed whole."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neurokit.precision import check_optimizer_state
from neurokit.rules.base import Rule


class TrainState(NamedTuple):
    """Everything a run needs to continue.

    Attributes:
      params: trainable parameters, `{'layers': (...), ...}`.
      opt_state: the optax optimizer's state.
      rule_state: the rule's fixed state (feedback matrices, ...).
      key: the run's base PRNG key; per-step keys are folded in from it.
      step: number of training steps taken (also the position in the data order).
    """
    params: Any
    opt_state: Any
    rule_state: Any
    key: jax.Array
    step: jax.Array


class LayerwiseOptState(NamedTuple):
    """Optimizer state of a run with layerwise updates: one optax state per block of
    `rule.blocks(params)`; `neurokit.train.make_train_step` sees this type and calls
    `rule.layerwise_step` instead of `rule.step` + one optimizer update."""
    blocks: tuple


# Streams folded into the base key, so that shuffling and rule noise never share keys.
_INIT, _STEP, _SHUFFLE = 0, 1, 2


def init_state(key, model, rule: Rule, optimizer: optax.GradientTransformation,
               layerwise: bool = False) -> TrainState:
    """Initialises params, rule params, rule state and optimizer state from one key.

    Args:
      layerwise: keep one optimizer state per block of `rule.blocks` (a
        `LayerwiseOptState`), so that training steps each block as soon as its
        gradient exists (`Rule.layerwise_step`). The parameters are the same
        either way.

    Raises:
      ValueError: `layerwise` for a rule without a layerwise step.
    """
    check_layerwise(rule, layerwise)
    k_model, k_rule_params, k_rule = jax.random.split(jax.random.fold_in(key, _INIT), 3)
    params = rule.init_params(k_rule_params, model.init(k_model))
    rule_state = rule.init(k_rule, params)
    if layerwise:
        opt_state = LayerwiseOptState(tuple(optimizer.init(b) for b in rule.blocks(params)))
    else:
        opt_state = optimizer.init(params)
    if not rule.applies_updates:  # a rule that steps its own weights owns their precision
        check_optimizer_state(params, opt_state)
    # a copy: a donated state (the training loops donate it) must not delete the caller's key
    return TrainState(params, opt_state, rule_state, jnp.copy(key), jnp.zeros((), jnp.int32))


def check_layerwise(rule: Rule, layerwise: bool):
    """ValueError unless `rule` can take layerwise updates (when they are asked for)."""
    if layerwise and (rule.layerwise_step is None or rule.blocks is None):
        raise ValueError('no layerwise step in this rule (only rules whose layers learn from '
                         'local losses, such as mf, have one); set config.layerwise_updates=False '
                         'or init_state(..., layerwise=False)')


def check_opt_state(rule: Rule, optimizer: optax.GradientTransformation, params,
                    opt_state) -> None:
    """ValueError unless `opt_state` has the tree structure `init_state` gives `optimizer`
    for `params` (one state per block of `rule.blocks` for a `LayerwiseOptState`).

    A state made by another optimizer (`init_state(..., optax.sgd(0.1))` stepped with
    `optax.adam`) otherwise fails deep inside optax (`'EmptyState' object has no
    attribute 'mu'`). Only the structure is compared, through `jax.eval_shape`: nothing
    is computed, and a vmapped state (a leading member axis) or one restored from a
    checkpoint passes as it is.

    Example:
      check_opt_state(rule, optimizer, state.params, state.opt_state)  # at trace time
    """
    if isinstance(opt_state, LayerwiseOptState):
        def made(p):
            return LayerwiseOptState(tuple(optimizer.init(b) for b in rule.blocks(p)))
    else:
        made = optimizer.init
    want = jax.eval_shape(made, params)
    if jax.tree.structure(opt_state) == jax.tree.structure(want):
        return
    have, make = _kinds(opt_state), _kinds(want)
    what = (f'was made by another optimizer: it holds {have}, but this optimizer makes {make}'
            if have != make else 'does not fit this optimizer and these params (made for '
            'other params, or by another optimizer)')
    raise ValueError(f'the optimizer state {what}; re-create the state with '
                     'neurokit.train.init_state(key, model, rule, optimizer) using the '
                     'optimizer you train with')


def _kinds(tree, limit: int = 4) -> str:
    """The state types in `tree`, outermost first (`ScaleByAdamState, EmptyState`), for
    messages: optax states are NamedTuples, whose names say which optimizer made them."""
    names = []

    def walk(x):
        if isinstance(x, tuple) and hasattr(x, '_fields'):
            names.append(type(x).__name__)
        if isinstance(x, (tuple, list)):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)

    walk(tree)
    if not names:
        return f'a {type(tree).__name__} of {len(jax.tree.leaves(tree))} arrays'
    more = f', ... ({len(names)} in all)' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def step_key(state: TrainState):
    """The key of the current step: `fold_in(fold_in(key, STEP), step)`."""
    return jax.random.fold_in(jax.random.fold_in(state.key, _STEP), state.step)


def shuffle_key(key, epoch):
    """The key of an epoch's data order."""
    return jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE), epoch)
