"""Forward gradient with local losses (Ren et al., ICLR 2023; Fournier et al., ICML 2023).

No error travels backwards through the network. Every hidden layer l has its own linear
classifier head `(H_l, c_l)` (`params['heads'][l]`; a conv layer's output is globally
average-pooled first) and its own loss, the cross-entropy of that head on the layer's
output computed from its stop-gradient'ed input (Ren et al.'s `modular_loss`):

  z_l = linear(theta_l, SG(a_{l-1})),  a_l = post(z_l),
  L_l(theta_l) = (1/B) sum_n CE(pool(a_l)_n H_l + c_l, y_n).

The gradient of L_l with respect to theta_l is not computed; it is estimated by forward
mode (`jax.jvp`), averaged over `num_tangents` (M) independent draws:

* `perturb='weight'` (FG-W): v ~ N(0, I) in theta_l's space,
    g_hat = (1/M) sum_m (dL_l/dtheta_l . v_m) v_m,
  the directional derivative `dL_l/dtheta_l . v` being one jvp of the batch loss.
* `perturb='activity'` (FG-A, the default; Ren et al.'s `forward_grad_activations`):
  u ~ N(0, I) at the pre-activation z_l, drawn per example; one jvp of the per-example
  losses l_n gives each example's own directional derivative g_n = dl_n/dz_n . u_n, and
    g_hat_z[n] = (1/M) sum_m g_{n,m} u_{n,m} * mask_n / B,   mask = (act'(z) != 0),
  an unbiased estimate of dL_l/dz_l; the parameter estimate is the vjp of the ONE linear
  map z_l = linear(theta_l, x) at g_hat_z (for a dense layer `x^T g_hat_z` and
  `sum_n g_hat_z[n]`). The mask is Ren et al.'s `relu'(z)`: where act'(z) = 0 the exact
  gradient is 0, so dropping the noise there keeps the estimate unbiased and lowers its
  variance (for ReLU by the fraction of inactive units).

Both are unbiased: for v ~ N(0, I), E[(g . v) v] = E[v v^T] g = g. Their error falls as
1/sqrt(M): for FG-W, E|g_hat - g|^2 = (d + 1)|g|^2 / M with d the layer's parameter count.

The heads get their exact gradient on stop-gradient'ed features and the model's last layer
its exact cross-entropy gradient on its stop-gradient'ed input (cheap local reverse mode
through one linear map, as Ren et al. do). `local_gradients(model, params, batch)` is the
exact gradient of every local loss: what the estimates approximate.

Trains dense and conv layers (neurokit's own: the estimator needs the layer's linear map
and pre-activation). Models with BatchNorm statistics and Flax blocks are refused.

Cost per step: one forward pass, plus for each hidden layer M jvps of its local loss
(FG-A: through the activation, pooling and head only; FG-W: through the layer too), one
vjp of one linear map (FG-A) and the heads' and last layer's small gradients.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_count
from neurokit.models import Model
from neurokit.models.layers import activation_fn
from neurokit.models.model import param_dtype, require_layers
from neurokit.rules.base import (EmptyState, Rule, check_batch, check_params, declare,
                                 zeros_like_tree)

PERTURBS = ('activity', 'weight')


def _check_layers(model: Model) -> None:
    require_layers(model, 'fg', ('dense', 'conv'), 'its per-example forward gradients take '
                   'examples as independent')


def _features(layer, a):
    """A layer's output as the vector its head reads: (B, C) global average over space
    for a conv layer, (B, d) for a dense one."""
    if len(layer.out_shape) > 1:
        return jnp.mean(a, axis=tuple(range(1, a.ndim - 1)))
    return a.reshape(a.shape[0], -1)


def _example_losses(logits, y):
    """Cross-entropy of each example alone, (B,) float32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.sum(jax.nn.one_hot(y, logp.shape[-1], dtype=jnp.float32) * logp, axis=-1)


def _head(head, feats):
    return feats.astype(head['w'].dtype) @ head['w'] + head['b']


def _local_loss(layer, p, head, x, y):
    """Layer l's local loss L_l(theta_l) on input `x` (already stop-gradient'ed)."""
    return jnp.mean(_example_losses(_head(head, _features(layer, layer(p, x))), y))


def weight_estimate(layer, p, head, x, y, v):
    """FG-W: `(1/M) sum_m jvp(L_l, theta, v_m) v_m`.

    Args:
      layer, p: the hidden layer and its params theta.
      head: its head `{'w': (d, K), 'b': (K,)}`.
      x: the layer's (stop-gradient'ed) input; y: labels.
      v: tangents, the tree of `p` with a leading axis of M draws.

    Returns:
      The estimate, the tree of `p` (float32 where the arithmetic is).
    """
    def directional(vm):
        return jax.jvp(lambda q: _local_loss(layer, q, head, x, y), (p,), (vm,))[1]

    g = jax.vmap(directional)(v)  # (M,): dL/dtheta . v_m
    m = g.shape[0]
    return jax.tree.map(lambda t: jnp.tensordot(g, t.astype(g.dtype), axes=1) / m, v)


def activity_estimate(layer, p, head, x, y, u):
    """FG-A: the vjp of `z = linear(theta, x)` at `(1/M) sum_m g_m u_m * mask / B`, with
    `g_m[n] = dl_n/dz_n . u_m[n]` each example's own directional derivative.

    Args:
      layer, p, head, x, y: as in `weight_estimate`.
      u: tangents at the pre-activation, `(M, B, *z.shape[1:])`.

    Returns:
      The estimate, the tree of `p`.
    """
    z, linear_vjp = jax.vjp(lambda q: layer.linear(q, x), p)

    def example_losses(zz):
        return _example_losses(_head(head, _features(layer, layer.post(zz))), y)

    g = jax.vmap(lambda um: jax.jvp(example_losses, (z,), (um,))[1])(u)  # (M, B)
    g = g.reshape(g.shape + (1,) * (z.ndim - 1))
    # act'(z) = 0 where the exact gradient is 0: no noise there (Ren et al.'s relu'(z))
    act = activation_fn(layer.activation)
    slope = jax.jvp(act, (z,), (jnp.ones_like(z),))[1]
    gz = jnp.mean(g * u.astype(g.dtype), axis=0) * (slope != 0) / z.shape[0]
    return linear_vjp(gz.astype(z.dtype))[0]


def _exact(layer, p, head, x, y):
    return jax.grad(_local_loss, argnums=1)(layer, p, head, x, y)


def _pass(model, params, batch, hidden_update):
    """One forward pass; every hidden layer's update comes from `hidden_update(l, layer, p,
    head, x, y)` (x its stop-gradient'ed input), heads and the last layer get their exact
    gradients. Returns `(updates, metrics)`."""
    x, y = batch['x'], batch['y']
    layers, a = model.layers, x
    layer_updates, head_updates, metrics = [], [], {}
    for l, (layer, p, head) in enumerate(zip(layers[:-1], params['layers'], params['heads'])):
        a_in = jax.lax.stop_gradient(a)
        layer_updates.append(hidden_update(l, layer, p, head, a_in, y))
        a = layer(p, a_in)
        feats = jax.lax.stop_gradient(_features(layer, a))
        value, g_head = jax.value_and_grad(
            lambda h: jnp.mean(_example_losses(_head(h, feats), y)))(head)
        head_updates.append(g_head)
        metrics[f'loss_{l}'] = value

    def top(q, a_in):
        logits = layers[-1](q, a_in)
        return losses.cross_entropy(logits, y), logits

    (value, logits), g_last = jax.value_and_grad(top, has_aux=True)(
        params['layers'][-1], jax.lax.stop_gradient(a))
    layer_updates.append(g_last)
    metrics['loss'] = value
    metrics['accuracy'] = losses.accuracy(logits, y)
    updates = {k: zeros_like_tree(v) for k, v in params.items()}  # entries fg does not own
    updates['layers'] = type(params['layers'])(layer_updates)
    updates['heads'] = tuple(head_updates)
    updates = jax.tree.map(lambda u, q: u.astype(q.dtype), updates, params)
    return updates, metrics


def local_gradients(model: Model, params, batch):
    """The exact gradient of every local loss: each hidden layer's and head's of its own
    L_l, the last layer's of the model's cross-entropy, each on its stop-gradient'ed input.
    What fg's estimates approximate (their mean over many tangents converges to it).

    Args:
      model: the network; params: with `params['heads']` (`fg(model).init_params`);
      batch: `{'x', 'y'}`.

    Returns:
      The tree of `params`.

    Example:
      >>> exact = local_gradients(model, params, batch)
    """
    _check_layers(model)
    batch = check_batch(model, batch, params)
    check_params(params, 'heads', 'fg')
    return _pass(model, params, batch,
                 lambda l, layer, p, head, x, y: _exact(layer, p, head, x, y))[0]


@declare(layers=('dense', 'conv'), toy_learning_rate=3e-3,
         pmap_exact=False)  # FG-A draws its noise per example: a slice draws other noise
def fg(model: Model, perturb: str = 'activity', num_tangents: int = 1) -> Rule:
    """Forward gradient with local losses (see the module docstring).

    Args:
      model: an MLP or a CNN (neurokit's dense and conv layers).
      perturb: 'activity' (FG-A: tangents at each hidden pre-activation, per example)
        or 'weight' (FG-W: tangents in each hidden layer's parameter space).
      num_tangents: M, the independent tangents averaged per step (the error of the
        estimate falls as 1/sqrt(M); Ren et al.'s `num_passes`, 1 in their configs).

    Returns:
      A `Rule` with no state; `init_params` adds `params['heads']`, one `{'w': (d_l, K),
      'b': (K,)}` per hidden layer (d_l its width, or its channels for a conv layer).
      `param_labels` names the groups 'hidden', 'heads' and 'last' (Ren et al. give the
      heads and the last layer their own learning rates).

    Example:
      >>> rule = fg(mlp((784,), 10, (1000, 1000)), perturb='weight', num_tangents=4)
      >>> params = rule.init_params(key, model.init(key))
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    if perturb not in PERTURBS:
        raise ValueError(f'fg: perturb must be one of {PERTURBS}, got {perturb!r}')
    num_tangents = check_count('num_tangents', num_tangents, 1, where='fg')
    _check_layers(model)
    hidden = model.layers[:-1]
    num_classes = model.num_classes

    def init_params(key, model_params):
        keys = jax.random.split(key, max(len(hidden), 1))
        heads = []
        for l, layer in enumerate(hidden):
            d = int(layer.out_shape[-1]) if len(layer.out_shape) > 1 else math.prod(layer.out_shape)
            dtype = param_dtype(model_params['layers'][l])
            heads.append({'w': jax.random.normal(keys[l], (d, num_classes), dtype) / math.sqrt(d),
                          'b': jnp.zeros((num_classes,), dtype)})
        return {**model_params, 'heads': tuple(heads)}

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_params(params, 'heads', 'fg')

        def estimate(l, layer, p, head, x, y):
            k = jax.random.fold_in(key, l)
            if perturb == 'weight':
                leaves, tree = jax.tree.flatten(p)
                ks = jax.random.split(k, len(leaves))
                v = tree.unflatten([jax.random.normal(kk, (num_tangents,) + t.shape, t.dtype)
                                    for kk, t in zip(ks, leaves)])
                return weight_estimate(layer, p, head, x, y, v)
            z = jax.eval_shape(layer.linear, p, x)
            u = jax.random.normal(k, (num_tangents,) + z.shape, z.dtype)
            return activity_estimate(layer, p, head, x, y, u)

        updates, metrics = _pass(model, params, batch, estimate)
        return updates, state, metrics

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    def param_labels(params):
        labels = {k: jax.tree.map(lambda _: 'other', v) for k, v in params.items()}
        last = len(params['layers']) - 1
        labels['layers'] = type(params['layers'])(
            jax.tree.map(lambda _, l=l: 'last' if l == last else 'hidden', p)
            for l, p in enumerate(params['layers']))
        labels['heads'] = jax.tree.map(lambda _: 'heads', params['heads'])
        return labels

    return Rule(init, step, predict, init_params, param_labels=param_labels)
