"""The training step shared by every rule and every path (one device, sharded, pmap, sweeps)."""
from __future__ import annotations

import optax

from neurokit.models.model import with_stats
from neurokit.precision import check_optimizer_state
from neurokit.rules.base import OptimizerRule, Rule, with_optimizer
from neurokit.train.state import TrainState, check_opt_state, step_key


def make_train_step(rule: Rule | OptimizerRule, optimizer: optax.GradientTransformation,
                    reduce=None):
    """`(state, batch) -> (state, metrics)`: the step shared by every rule.

    A `Rule` is adapted to an `OptimizerRule` (`with_optimizer`: `rule.step`, then
    `optimizer.update` and `optax.apply_updates`); an `OptimizerRule` (ipc, a
    layerwise form) steps the optimizer inside its own pass. A rule with
    `update_stats` (a model with BatchNorm) then gets the statistics of a training-mode
    forward pass of the batch through the pre-step params in its new params, and a rule
    with `project` has it applied to the parameters after the optimizer's step.

    Args:
      rule, optimizer: what to step with; the state must come from
        `init_state(key, model, rule, optimizer)` (or have its structure).
      reduce: optional tree -> tree function (the pmap path averages across devices
        with it): applied between a `Rule` and the optimizer, or after the step of
        an `OptimizerRule` (see `with_optimizer`).

    Returns:
      The step function (not jitted).

    Raises (at trace time):
      ValueError: the state's optimizer state was made by another optimizer or for
        another form of the rule (`state.check_opt_state`), or float16 parameters
        with float16 optimizer state.
    """
    stepper = with_optimizer(rule, reduce)
    update_stats = getattr(rule, 'update_stats', None)
    project = getattr(rule, 'project', None)

    def train_step(state: TrainState, batch):
        check_opt_state(rule, optimizer, state.params, state.opt_state)  # at trace time
        check_optimizer_state(state.params, state.opt_state)
        params, rule_state, opt_state, metrics = stepper.step(
            state.params, state.rule_state, state.opt_state, batch, step_key(state), optimizer)
        if project is not None:  # e.g. orthonormalised weights, after every optimizer step
            params = project(params, rule_state)
        if update_stats is not None:  # BatchNorm statistics: the pre-step params' on the batch
            stats = update_stats(state.params, batch['x'])
            params = with_stats(params, reduce(stats) if reduce is not None else stats)
        return TrainState(params, opt_state, rule_state, state.key, state.step + 1), metrics

    return train_step
