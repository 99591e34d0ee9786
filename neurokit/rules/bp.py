"""Backpropagation: the baseline every rule is compared with."""
from __future__ import annotations

import jax

from neurokit import losses
from neurokit.models import Model, stats_pass
from neurokit.rules.base import EmptyState, Rule, check_batch


def bp(model: Model, loss: str = 'cross_entropy') -> Rule:
    """Backprop as a `Rule`: `step` is the gradient of the loss of `predict`.

    Args:
      model: the network.
      loss: 'cross_entropy' or 'mse' (on one-hot targets).

    Returns:
      A `Rule` with no state (a model's BatchNorm statistics are kept: `update_stats`).

    Example:
      >>> rule = bp(mlp((784,), 10))
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    loss_fn = losses.get(loss)

    def objective(params, x, y):
        logits, _ = model.apply(params, x, train=True)
        return loss_fn(logits, y), logits

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        (value, logits), grads = jax.value_and_grad(objective, has_aux=True)(
            params, batch['x'], batch['y'])
        return grads, state, {'loss': value, 'accuracy': losses.accuracy(logits, batch['y'])}

    def predict(params, state, x):
        del state
        return model.apply(params, x, train=False)[0]

    return Rule(init, step, predict, update_stats=stats_pass(model))
