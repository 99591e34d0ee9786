"""Dual propagation (Høier, Staudt & Zach, ICML 2023): dyadic neurons, one forward pass and
one nudged top-down sweep, a local weight rule.

Each unit holds two states, `s+` and `s-`; their mean `s̄` carries the forward signal and
their difference `δ = s+ - s-` the error. With the symmetric weighting (α = 1/2):

  forward:   s+_k = s-_k = a_k = f(W_k s̄_{k-1} + b_k)             (an ordinary pass)
  output:    s±_L = logits ∓ (β/2) g,   g = dℓ/d(logits), ℓ the example's loss  (nudged)
  top-down:  s±_k = f(z_k ± (1/2) W_{k+1}^T δ_{k+1}),   z_k = W_k s̄_{k-1} + b_k
  update:    dW_k = -δ_k s̄_{k-1}^T / (β B),   db_k = -sum(δ_k) / (β B)  (local, Hebbian)

In one sweep from the top, a layer's `s̄_{k-1}` below it is still the forward activation.
`δ_k / β = (f(z + h/2) - f(z - h/2)) / β` with `h = W^T δ_{k+1}` is a central difference of
`f` along backprop's error, so the update approaches backprop's gradient as β → 0, with an
error shrinking like β² (tests/rules/test_dualprop.py checks the rate). Each example is
nudged by its own loss's gradient, so an example's states do not depend on the batch size
and the update is the mean of the examples' (as the Julia MLP code's per-example nudge;
the authors' CNN code nudges by the batch-mean loss's gradient, i.e. β/B in these terms).

`form='vjp'` is the same rule written as backprop with every hidden activation's backward
pass replaced by that central difference (a `jax.custom_vjp` activation: with `dy` the
batch-mean loss's cotangent, `B dy` is the example's, and `dy -> (f(z + βB dy/2) -
f(z - βB dy/2)) / (βB)`), the form the authors' CNN experiments
use; its numbers equal the sweep's (the test checks it). The sweep is the dyadic network
itself; the vjp form is one backprop pass in cost.

Trains dense layers (an MLP); the output layer's activation is the identity (logits).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_range
from neurokit.models import Model
from neurokit.models.layers import activation_fn
from neurokit.models.model import require_layers
from neurokit.rules.base import EmptyState, Rule, check_batch, declare

FORMS = ('sweep', 'vjp')


def _dyadic_activation(f, beta):
    """`f` whose backward pass is the dyadic neuron's central difference along the
    cotangent: `dy -> (f(z + β dy/2) - f(z - β dy/2)) / β`."""

    @jax.custom_vjp
    def act(z):
        return f(z)

    def fwd(z):
        return f(z), z

    def bwd(z, dy):  # dy: the batch-mean loss's cotangent; B dy the example's
        scale = beta * dy.shape[0]
        h = 0.5 * scale * dy
        return ((f(z + h) - f(z - h)) / scale,)

    act.defvjp(fwd, bwd)
    return act


@declare(layers=('dense',))
def dualprop(model: Model, beta: float = 0.1, form: str = 'sweep',
             loss: str = 'cross_entropy') -> Rule:
    """Dual propagation (see the module docstring).

    Args:
      model: an MLP (dense layers, identity output).
      beta: the nudge's strength (> 0); the update tends to backprop's as beta -> 0.
      form: 'sweep' (dyadic states, one top-down sweep) or 'vjp' (backprop with the
        dyadic backward pass of each activation): the same numbers.
      loss: 'cross_entropy' or 'mse' (on one-hot targets), the loss whose gradient nudges
        the output.

    Returns:
      A `Rule` with no state.
    """
    check_range('beta', beta, lambda v: v > 0, 'a finite number > 0', where='dualprop')
    if form not in FORMS:
        raise ValueError(f'dualprop: form must be one of {FORMS}, got {form!r}')
    require_layers(model, 'dualprop', ('dense',), 'its dyadic states are not batch-normalised')
    if model.layers[-1].activation != 'identity':
        raise ValueError('dualprop: the output layer must give logits (activation identity)')
    loss_fn = losses.get(loss)
    acts = [activation_fn(layer.activation) for layer in model.layers]
    dyadic = [_dyadic_activation(f, beta) for f in acts]

    def init(key, params):
        del key, params
        return EmptyState()

    def sweep(params, x, y):
        inputs, pre, h = [], [], x
        for layer, p, f in zip(model.layers, params['layers'], acts):
            inputs.append(h)
            z = layer.linear(p, h)
            pre.append(z)
            h = f(z)
        logits = h
        value, g = jax.value_and_grad(loss_fn)(logits, y)
        scale = beta * x.shape[0]
        delta = -scale * g  # s+_L - s-_L: each example nudged by its own loss's gradient
        updates = [None] * len(model.layers)
        for k in reversed(range(len(model.layers))):
            layer, p = model.layers[k], params['layers'][k]
            out, vjp = jax.vjp(layer.linear, p, inputs[k])
            to_params, to_input = vjp(delta.astype(out.dtype))
            updates[k] = jax.tree.map(lambda u: -u / scale, to_params)
            if k:  # the error reaches layer k-1 through W_k^T: its two states
                half = 0.5 * to_input.reshape(pre[k - 1].shape)
                f = acts[k - 1]
                delta = f(pre[k - 1] + half) - f(pre[k - 1] - half)
        return updates, value, logits

    def objective(params, x, y):
        h = x
        for layer, p, f in zip(model.layers, params['layers'], dyadic):
            h = f(layer.linear(p, h))
        return loss_fn(h, y), h

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        x, y = batch['x'], batch['y']
        if form == 'vjp':
            (value, logits), grads = jax.value_and_grad(objective, has_aux=True)(params, x, y)
        else:
            layers, value, logits = sweep(params, x, y)
            grads = {**jax.tree.map(jnp.zeros_like, params),
                     'layers': type(params['layers'])(layers)}
        return grads, state, {'loss': value, 'accuracy': losses.accuracy(logits, y)}

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    return Rule(init, step, predict)
