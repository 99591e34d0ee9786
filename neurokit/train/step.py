"""The training step shared by every rule and every path (one device, sharded, pmap, sweeps)."""
from __future__ import annotations

import optax

from neurokit.precision import check_optimizer_state
from neurokit.rules.base import Rule
from neurokit.train.state import (LayerwiseOptState, TrainState, check_layerwise, check_opt_state,
                                  step_key)


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
