"""Forward-only learning with a modulated second pass: PEPITA and FOTON.

PEPITA (Dellaferrera & Kreiman, ICML 2022) runs the network twice. Pass 1 on `x` gives
the activations `h_l` and the output error `e = softmax(y) - onehot(t)`; pass 2 runs on
the input modulated by a fixed random projection of that error, `x' = x + e F^T`, and
gives `h'_l`. No error travels backwards: each hidden layer learns from its own activity
difference, the output layer from the error.

  hidden l:  dW_l = (h_l - h'_l)^T  p_{l-1} / B       (post-activation difference)
  output:    dW_L = e_o^T p_{L-1} / B

with `p_{l-1}` the layer's input in pass 2 (`x'`, `h'_{l-1}`; the ICML rule,
`variant='modulated'`) or in pass 1 (`x`, `h_{l-1}`, with the first-pass error: the
follow-up's `'forward'` mode; on a one-layer net this is the delta rule `e^T x / B`,
backprop's cross-entropy gradient), and `e_o` the error of the same pass.
`variant='mixed'` is the follow-up's Hebbian form: `dW_l = h_l^T h_{l-1} - h'_l^T
h'_{l-1}` (first layer: `x` and `x'`), output `softmax(y)^T h_{L-1} - onehot^T h'_{L-1}`.
A bias is a weight on a constant input: its update is the mean of the same difference.

FOTON (Caillon et al. 2025) is PEPITA with the feedback set to the network's own
input-output map, `F = (W_L ... W_1)^T` (recomputed every `refresh_every` steps),
`x' = x - e F^T`, presynaptic terms from pass 1, and weights kept orthonormal: after
every optimizer step each weight matrix is projected onto the (semi-)orthogonal ones by
Björck's iteration (`project`; its initial weights too). On a linear network with
orthonormal weights `h_l - h'_l` is then backprop's error at layer l, so the update is
backprop's gradient (tests/rules/test_pepita.py checks it).

Both train dense layers (an MLP); dropout, PEPITA's weight mirroring and the
learning-rate schedules of the papers are the config's or not built.

Cost per step: two forward passes and the outer products (backprop's weight-gradient
matmuls), no backward error matmuls; FOTON adds the product for `F` (L-1 matmuls of the
weights) and the Björck iterations (2 matmuls each per layer).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Model
from neurokit.models.model import require_layers
from neurokit.rules.base import Rule, check_batch, declare

VARIANTS = ('modulated', 'forward', 'mixed')


class PepitaState(NamedTuple):
    """PEPITA's fixed feedback: `(prod(input_shape), num_classes)`."""
    feedback: jax.Array


class FotonState(NamedTuple):
    """FOTON's feedback `(W_L ... W_1)^T` as of its last refresh, and the steps taken."""
    feedback: jax.Array
    count: jax.Array


def _check_dense(model: Model, rule: str) -> None:
    require_layers(model, rule, ('dense',), 'its two forward passes would each move the '
                   'statistics')


def _passes(model, params, x):
    """Each layer's (flattened) input and output: `([inputs], [outputs])`; the last output
    is the logits."""
    inputs, outputs, h = [], [], x
    for layer, p in zip(model.layers, params['layers']):
        inputs.append(h.reshape(h.shape[0], -1))
        h = layer(p, h)
        outputs.append(h)
    return inputs, outputs


def _outer(layer, p, presyn, delta):
    """The layer's parameter update for output-side `delta` and input `presyn`: the vjp of
    its affine map, `{'w': presyn^T delta, 'b': sum(delta)}` (the caller divides by B)."""
    out, vjp = jax.vjp(lambda q: layer.linear(q, presyn), p)
    return vjp(delta.astype(out.dtype))[0]


def _two_passes(model, params, x, y, feedback, sign, variant):
    """`(updates, metrics)`: pass 1 on `x`, its error `e = softmax(y) - onehot`, pass 2 on
    `x + sign * e F^T` (`feedback` F, `(d0, K)`), and the variant's updates."""
    inputs, outputs = _passes(model, params, x)
    n, last = x.shape[0], len(model.layers) - 1
    onehot = jax.nn.one_hot(y, model.num_classes, dtype=outputs[-1].dtype)
    probs = jax.nn.softmax(outputs[-1])
    e = probs - onehot
    x_mod = (x.reshape(n, -1) + sign * (e @ feedback.T.astype(e.dtype))).reshape(x.shape)
    inputs2, outputs2 = _passes(model, params, x_mod)
    probs2 = jax.nn.softmax(outputs2[-1])
    layers = []
    for l, (layer, p) in enumerate(zip(model.layers, params['layers'])):
        if variant == 'mixed':  # Hebbian minus anti-Hebbian
            post, post2 = (probs, onehot) if l == last else (outputs[l], outputs2[l])
            g = jax.tree.map(lambda a, b: (a - b) / n, _outer(layer, p, inputs[l], post),
                             _outer(layer, p, inputs2[l], post2))
        else:
            first = variant == 'forward'
            presyn = inputs[l] if first else inputs2[l]
            if l == last:
                delta = (probs if first else probs2) - onehot
            else:
                delta = outputs[l] - outputs2[l]
            g = jax.tree.map(lambda a: a / n, _outer(layer, p, presyn, delta))
        layers.append(g)
    updates = {**jax.tree.map(jnp.zeros_like, params), 'layers': type(params['layers'])(layers)}
    metrics = {'loss': losses.cross_entropy(outputs[-1], y),
               'accuracy': losses.accuracy(outputs[-1], y)}
    return updates, metrics


def _predict(model):
    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]
    return predict


@declare(layers=('dense',), toy_learning_rate=3e-3)
def pepita(model: Model, feedback_scale: float = 0.05, variant: str = 'modulated') -> Rule:
    """PEPITA (see the module docstring).

    Args:
      model: an MLP (dense layers).
      feedback_scale: `F = feedback_scale * U(-sqrt(6/d0), sqrt(6/d0))`, `d0` the input
        size (the ICML code's 0.05).
      variant: 'modulated' (ICML: pass-2 presynaptic terms and error), 'forward'
        (pass-1 terms and error) or 'mixed' (Hebbian minus anti-Hebbian).

    Returns:
      A `Rule` whose state is the fixed feedback (`PepitaState`).
    """
    check_range('feedback_scale', feedback_scale, lambda v: v > 0, 'a finite number > 0',
                where='pepita')
    if variant not in VARIANTS:
        raise ValueError(f'pepita: variant must be one of {VARIANTS}, got {variant!r}')
    _check_dense(model, 'pepita')
    d0 = math.prod(model.input_shape)

    def init(key, params):
        del params
        bound = math.sqrt(6.0 / d0)
        return PepitaState(feedback_scale * jax.random.uniform(
            key, (d0, model.num_classes), minval=-bound, maxval=bound))

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        updates, metrics = _two_passes(model, params, batch['x'], batch['y'], state.feedback,
                                       1.0, variant)
        return updates, state, metrics

    return Rule(init, step, _predict(model))


def bjorck(w, iterations: int = 20, power_iterations: int = 10):
    """The (semi-)orthogonal matrix nearest `w` (2-D): Björck's first-order iteration
    `W <- W (3/2 I - 1/2 W^T W)` (on the transpose where `w` is wider than tall), after
    scaling `w` by its largest singular value (power iteration), so that the iteration
    converges. Columns orthonormal for a tall `w`, rows for a wide one."""
    tall = w.shape[0] >= w.shape[1]
    a = w if tall else w.T
    v = jnp.ones((a.shape[1],), a.dtype) / math.sqrt(a.shape[1])
    for _ in range(power_iterations):
        v = a.T @ (a @ v)
        v = v / (jnp.linalg.norm(v) + 1e-30)
    sigma = jnp.linalg.norm(a @ v)
    a = a / (sigma + 1e-30)
    eye = jnp.eye(a.shape[1], dtype=a.dtype)
    for _ in range(iterations):
        a = a @ (1.5 * eye - 0.5 * (a.T @ a))
    return a if tall else a.T


@declare(layers=('dense',), toy_learning_rate=3e-3)
def foton(model: Model, refresh_every: int = 1, bjorck_iterations: int = 20,
          project_every: int = 1) -> Rule:
    """FOTON (see the module docstring).

    Args:
      model: an MLP (dense layers).
      refresh_every: recompute the feedback `(W_L ... W_1)^T` every this many steps.
      bjorck_iterations: Björck iterations of the projection (and of the initial weights).
      project_every: orthonormalise after every this many steps (the code's
        `ortho_rate`; the projection costs 2 matmuls per iteration and layer, more than
        the step itself on a CPU).

    Returns:
      A `Rule` with `project` (the orthonormalisation) and a `FotonState`.
    """
    check_count('refresh_every', refresh_every, 1, where='foton')
    check_count('bjorck_iterations', bjorck_iterations, 1, where='foton')
    check_count('project_every', project_every, 1, where='foton')
    _check_dense(model, 'foton')

    def orthonormal(params):
        layers = type(params['layers'])(
            {**p, 'w': bjorck(p['w'].astype(jnp.float32), bjorck_iterations).astype(p['w'].dtype)}
            for p in params['layers'])
        return {**params, 'layers': layers}

    def product(params):
        f = params['layers'][0]['w']
        for p in params['layers'][1:]:
            f = f @ p['w']
        return f  # (d0, K): our kernels are (in, out), so this is (W_L ... W_1)^T

    def init_params(key, model_params):
        del key
        return orthonormal(model_params)

    def init(key, params):
        del key
        return FotonState(product(params), jnp.zeros((), jnp.int32))

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        feedback = jax.lax.cond(state.count % refresh_every == 0, product,
                                lambda _: state.feedback, params)
        updates, metrics = _two_passes(model, params, batch['x'], batch['y'], feedback, -1.0,
                                       'forward')
        return updates, FotonState(feedback, state.count + 1), metrics

    def project(params, state):  # `state.count` counts the steps taken, this one included
        if project_every == 1:
            return orthonormal(params)
        return jax.lax.cond(state.count % project_every == 0, orthonormal, lambda p: p, params)

    return Rule(init, step, _predict(model), init_params=init_params, project=project)
