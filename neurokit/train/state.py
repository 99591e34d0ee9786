"""The training state: one plain pytree, checkpointed whole."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neurokit.precision import check_optimizer_state
from neurokit.rules.base import LayerwiseOptState, OptimizerRule, Rule, with_optimizer

__all__ = ['LayerwiseOptState', 'TrainState', 'check_opt_state', 'init_state', 'shuffle_key',
           'step_key']


class TrainState(NamedTuple):
    """Everything a run needs to continue.

    Attributes:
      params: trainable parameters, `{'layers': (...), ...}`.
      opt_state: the optax optimizer's state (`rule.init_opt_state`'s for an
        `OptimizerRule`: one per block for a layerwise form).
      rule_state: the rule's fixed state (feedback matrices, ...).
      key: the run's base PRNG key; per-step keys are folded in from it.
      step: number of training steps taken (also the position in the data order).
    """
    params: Any
    opt_state: Any
    rule_state: Any
    key: jax.Array
    step: jax.Array


# Streams folded into the base key, so that shuffling and rule noise never share keys.
_INIT, _STEP, _SHUFFLE = 0, 1, 2


def init_state(key, model, rule: Rule | OptimizerRule,
               optimizer: optax.GradientTransformation) -> TrainState:
    """Initialises params, rule params, rule state and optimizer state from one key.

    Args:
      key: the run's key (kept in the state; per-step keys are folded in from it).
      model: the network.
      rule: a `Rule`, or an `OptimizerRule` (whose `init_opt_state` makes the
        optimizer state: one per block for a layerwise form such as
        `mf(model, layerwise=True)`). The parameters are the same either way.
      optimizer: the optax optimizer the state is trained with.

    Returns:
      A `TrainState` at step 0.

    Raises:
      ValueError: float16 parameters with an optimizer that keeps float16 state.
    """
    k_model, k_rule_params, k_rule = jax.random.split(jax.random.fold_in(key, _INIT), 3)
    params = rule.init_params(k_rule_params, model.init(k_model))
    rule_state = rule.init(k_rule, params)
    opt_state = with_optimizer(rule).init_opt_state(optimizer, params)
    check_optimizer_state(params, opt_state)
    # a copy: a donated state (the training loops donate it) must not delete the caller's key
    return TrainState(params, opt_state, rule_state, jnp.copy(key), jnp.zeros((), jnp.int32))


def check_opt_state(rule: Rule | OptimizerRule, optimizer: optax.GradientTransformation, params,
                    opt_state) -> None:
    """ValueError unless `opt_state` has the tree structure `init_state` gives `optimizer`
    and `rule` for `params` (one state per block for a layerwise form).

    A state made by another optimizer (`init_state(..., optax.sgd(0.1))` stepped with
    `optax.adam`) otherwise fails deep inside optax (`'EmptyState' object has no
    attribute 'mu'`). Only the structure is compared, through `jax.eval_shape`: nothing
    is computed, and a vmapped state (a leading member axis) or one restored from a
    checkpoint passes as it is.

    Example:
      check_opt_state(rule, optimizer, state.params, state.opt_state)  # at trace time
    """
    want = jax.eval_shape(lambda p: with_optimizer(rule).init_opt_state(optimizer, p), params)
    if jax.tree.structure(opt_state) == jax.tree.structure(want):
        return
    per_block = isinstance(opt_state, LayerwiseOptState), isinstance(want, LayerwiseOptState)
    if per_block[0] != per_block[1]:
        made, wanted = (('one per block (a layerwise form)', 'one for all parameters')
                        if per_block[0] else
                        ('one for all parameters', 'one per block (a layerwise form)'))
        raise ValueError(f'the optimizer state holds {made}, but this rule steps {wanted}; '
                         'train with the rule the state was made for, or re-create the state '
                         'with neurokit.train.init_state(key, model, rule, optimizer)')
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
