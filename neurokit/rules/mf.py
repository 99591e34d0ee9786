"""Mono-Forward (Gong et al., 2025): every layer learns from its own local loss.

Each hidden layer l has a trainable projection `M_l` (d_l x C) that turns its
activations into class scores `g_l = a_l M_l`; the layer's loss is the
cross-entropy of `softmax(g_l)`. `W_l, b_l, M_l` are updated from that loss
only: the layer's input `a_{l-1}` is a constant (`stop_gradient`), so no error
crosses a layer boundary and one forward pass updates every layer.

How the model's output layer fits in: the paper's network is the hidden layers
alone and classifies with the last hidden layer's projection `a_L M_L`. Here
the model's output layer (a dense `d_L -> C` map, weights plus bias) *is* that
projection `M_L`: the last hidden layer and the output layer form one local
block trained by the cross-entropy of the model's logits, with the gradient
reaching the last hidden layer through the output layer only. So the rule adds
projections for the hidden layers before the last one (`params['mf_proj'][l]`
for layers `l = 0 .. L-3` of an L-layer model), every parameter receives the
gradient of exactly one local loss, and `predict` with `prediction='last'` is
plain `model.apply` -- the paper's "prediction from the last layer".

Memory: the step runs the layers in a Python loop and takes each layer's
gradient right after its forward, so inside the one jitted program a layer's
activations are dead as soon as its own update and the next layer's input exist;
XLA's buffer assignment then needs about two layers' activations at a time
instead of all of them (backprop keeps every layer's for its backward pass).
That leaves the gradients: with `step`, the optimizer runs after the whole pass,
and XLA:GPU then keeps every layer's gradient alive until that update (about the
size of the parameters; CPU schedules happen to apply them early). The rule
therefore also has a layerwise form, `mf(model, layerwise=True)`, an
`OptimizerRule` (see `neurokit.rules.base`): its step is handed the optimizer
and one optimizer state per block (hidden layer + its projection; last hidden
layer + output layer), and each block is updated inside the pass before the
next layer's forward may run, so at any time about one layer's activations and
one layer's gradient are alive. For element-wise optimizers the numbers are
those of the plain form + one optimizer update (tested).
See `experiments/benchmarks/mf.py` (CPU) and `experiments/benchmarks/gpu_aot.py`
(the GPU program, compiled without a GPU) for the measured temp memory.

Conv layers: the scores of a conv layer come from its (post-pool) feature map
reduced to one vector per example: global average over the spatial axes
(`conv_scores='mean'`, M_l is channels x C) or the flattened map
(`conv_scores='flatten'`, M_l is H*W*channels x C). The last hidden layer's
projection is the model's output layer, which takes that layer's output as the
model gives it (flattened, for a CNN without dense hidden layers), so
`conv_scores` applies to the conv layers before it.

Metrics: `loss_l` is layer l's own loss (the last one is the model's, also as
`loss`); `accuracy` is that of the model's logits, whatever `prediction` is
(evaluation uses `predict`).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurokit import losses
from neurokit.checks import check_range
from neurokit.models import Model
from neurokit.models.model import call_block, param_dtype, stats_pass
from neurokit.rules.base import (EmptyState, OptimizerRule, Rule, check_batch, check_params,
                                 layerwise_form, zeros_like_tree)

PREDICTIONS = ('last', 'combine')
CONV_SCORES = ('mean', 'flatten')


def _feature_dim(layer, conv_scores):
    """Width of the vector a layer's projection acts on."""
    if len(layer.out_shape) > 1 and conv_scores == 'mean':
        return int(layer.out_shape[-1])
    return int(np.prod(layer.out_shape))


def _features(layer, a, conv_scores):
    """Layer output `a` (B, *out_shape) -> (B, d) vector the projection acts on."""
    if len(layer.out_shape) > 1 and conv_scores == 'mean':
        return jnp.mean(a, axis=tuple(range(1, a.ndim - 1)))
    return a.reshape(a.shape[0], -1)


def _after(a, grads, cpu_only=False):
    """`a`, made to depend on `grads`: the next layer's forward waits for this update.

    Without it XLA's CPU scheduler runs the forward passes of many layers ahead of
    their gradients and keeps all those activations alive (`optimization_barrier`
    is expanded before scheduling on CPU, so it does not help). Adding zero times
    one element of the gradient is a real data dependence XLA keeps (it does not
    fold `x * 0` for floats, since that is wrong for NaN/inf) at the cost of one
    fused elementwise add. XLA:GPU needs it too in `step` (with jax 0.10.2 its
    forwards otherwise run ahead there as well: 4x BP's temp memory at batch 128);
    `cpu_only=True` is for `_wait`, where on the GPU the barrier orders and the add
    would only cost a kernel. The element is zeroed where it is not finite before the
    product, so a NaN or inf in this layer's update does not reach the next layer's
    input: no error crosses a layer boundary, and the NaN guard names the layer that
    failed rather than every layer after it.
    """
    leaf = jax.tree.leaves(grads)[0]

    def add(a, leaf):
        e = leaf.reshape(-1)[0]
        return a + (jnp.where(jnp.isfinite(e), e, 0) * 0).astype(a.dtype)

    if not cpu_only:
        return add(a, leaf)
    return jax.lax.platform_dependent(a, leaf, cpu=add, default=lambda a, leaf: a)


def _wait(a, nxt, tree):
    """`(a, nxt, tree)`, where the next layer's forward (which reads the activation `a`
    and the next layer's parameters `nxt`) waits until `tree` (this layer's updated
    parameters) exists.

    XLA:GPU schedules by `optimization_barrier`; XLA:CPU expands the barrier before
    scheduling, so `_after` adds a data dependence on one element for it. Neither
    alone works on both: on the GPU, `_after` alone lets the compiler compute that
    one element early and still defer the rest of the update (measured with XLA's
    memory analysis of the GPU program, experiments/benchmarks/gpu_aot.py). The
    barrier holds the next layer's parameters rather than the activation: an
    activation passed through a barrier must be written out whole (one more kernel
    per layer on the GPU), while left free XLA computes it inside the next matmul.
    """
    # Only the weights (a layer's parameters are {'w', 'b'}): a bias that comes out of a
    # barrier is no longer fused into the matmul's epilogue (one more kernel per layer).
    held = {k: v for k, v in nxt.items() if k != 'b'}
    held, tree = jax.lax.optimization_barrier((held, tree))
    return _after(a, tree, cpu_only=True), {**nxt, **held}, tree


def mf(model: Model, prediction: str = 'last', conv_scores: str = 'mean',
       loss: str = 'cross_entropy', proj_init_scale: float = 1.0,
       layerwise: bool = False) -> Rule | OptimizerRule:
    """Mono-Forward as a `Rule`.

    Args:
      model: the network (MLP or CNN). Its hidden layers 0..L-3 get a projection
        `M_l`; the last hidden layer's projection is the model's output layer.
      prediction: 'last' (the model's logits, i.e. the last hidden layer's scores)
        or 'combine' (sum over all hidden layers of the log-softmax of their
        scores, FF-style).
      conv_scores: how a conv layer's feature map meets its projection: 'mean'
        (global average pool over space) or 'flatten'.
      loss: local loss on the scores, 'cross_entropy' (the paper) or 'mse'.
      proj_init_scale: projections start as `N(0, scale^2 / d_l)`.
      layerwise: return the layerwise form, an `OptimizerRule` that steps each
        block (hidden layer + projection; last hidden layer + output layer) with
        the optimizer inside the pass, one optimizer state per block
        (a `LayerwiseOptState`): less memory, the same numbers for element-wise
        optimizers.

    Returns:
      A `Rule` (an `OptimizerRule` with `layerwise`) with no state; `init_params`
      adds `params['mf_proj']`, a tuple of `{'m': (d_l, C)}`, one per hidden layer
      but the last.

    Example:
      >>> model = mlp((784,), 10, (1000, 1000))
      >>> rule = mf(model)
      >>> params = rule.init_params(key, model.init(key))
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f'unknown prediction {prediction!r}; valid: {", ".join(PREDICTIONS)}')
    if conv_scores not in CONV_SCORES:
        raise ValueError(f'unknown conv_scores {conv_scores!r}; valid: {", ".join(CONV_SCORES)}')
    check_range('proj_init_scale', proj_init_scale, lambda v: v >= 0, 'a finite number >= 0')
    loss_fn = losses.get(loss)
    layers = tuple(model.layers)
    num_layers = len(layers)
    num_proj = max(num_layers - 2, 0)  # hidden layers that own a projection
    num_classes = model.num_classes

    def init_params(key, model_params):
        keys = jax.random.split(key, max(num_proj, 1))
        proj = []
        for l in range(num_proj):
            d = _feature_dim(layers[l], conv_scores)
            dtype = param_dtype(model_params['layers'][l])
            m = jax.random.normal(keys[l], (d, num_classes), dtype) * (proj_init_scale / math.sqrt(d))
            proj.append({'m': m})
        return {**model_params, 'mf_proj': tuple(proj)}

    def init(key, params):
        del key, params
        return EmptyState()

    def example_losses(scores, y):
        """`loss_fn` of each example alone: (batch,) float32."""
        return jax.vmap(loss_fn)(scores[:, None].astype(jnp.float32), y[:, None])

    def hidden_loss(l, p, m, a_in, y):
        """Layer l's own loss; `a_in` arrives as a constant. Aux: (output, scores)."""
        out = call_block(layers[l], p, a_in, True)
        scores = _features(layers[l], out, conv_scores).astype(m['m'].dtype) @ m['m']
        return loss_fn(scores, y), (out, scores)

    def last_block_loss(ps, a_in, y):
        """Last hidden layer + output layer (its projection), or the output layer alone.
        Aux: the logits."""
        a = a_in
        for layer, p in zip(layers[num_layers - len(ps):], ps):
            a = call_block(layer, p, a, True)
        return loss_fn(a, y), a

    def blocks(params):
        """The blocks a layerwise step updates one at a time: hidden layer l with its
        projection, then the last hidden layer with the output layer."""
        hidden = tuple({'layer': params['layers'][l], 'proj': params['mf_proj'][l]}
                       for l in range(num_proj))
        return hidden + ({'layers': tuple(params['layers'][num_proj:])},)

    def join_blocks(trees):
        """The inverse of `blocks`: per-block trees (params, gradients) -> the entries mf owns."""
        return {'layers': tuple(b['layer'] for b in trees[:-1]) + tuple(trees[-1]['layers']),
                'mf_proj': tuple(b['proj'] for b in trees[:-1])}

    def forward_pass(params, batch, finish):
        """One pass over the layers. `finish(i, block_grads, a_out, nxt)` is called as
        soon as block i's gradient exists, with the activation `a_out` and the parameters
        `nxt` that the next layer's forward reads, and returns them (made to wait for
        whatever must be done first); both are None for the last block."""
        y = batch['y']
        a = batch['x']
        layer_params = list(params['layers'])
        per_example = []  # each layer's loss per example, for the metrics
        # Each layer's gradient is taken as soon as its forward is done, on a
        # stop_gradient'ed input, so nothing of layer l is needed after step l.
        for l in range(num_proj):
            (g_p, g_m), (a_out, s) = jax.grad(
                lambda p, m, x: hidden_loss(l, p, m, x, y), argnums=(0, 1), has_aux=True)(
                    layer_params[l], params['mf_proj'][l], jax.lax.stop_gradient(a))
            a, layer_params[l + 1] = finish(l, {'layer': g_p, 'proj': g_m}, a_out,
                                            layer_params[l + 1])
            per_example.append(example_losses(s, y))
        last = tuple(layer_params[num_proj:])
        g_last, logits = jax.grad(last_block_loss, has_aux=True)(last, jax.lax.stop_gradient(a), y)
        finish(num_proj, {'layers': g_last}, None, None)
        per_example.append(example_losses(logits, y))
        # Every layer's mean loss in one stacked reduction, instead of one reduction
        # to a scalar per layer (on a GPU, three small kernels per layer). The per-example
        # values are computed as each layer goes, so no layer's scores outlive it.
        values = jnp.mean(jnp.stack(per_example), axis=1)
        metrics = {f'loss_{l}': values[l] for l in range(num_proj + 1)}
        metrics['loss'] = values[num_proj]  # the model's own loss, comparable with backprop's
        metrics['accuracy'] = losses.accuracy(logits, y)
        return metrics

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_params(params, 'mf_proj', 'mf')
        del key
        grads = []

        def finish(i, g, a_out, nxt):
            grads.append(g)
            return (None if a_out is None else _after(a_out, g['layer'])), nxt

        metrics = forward_pass(params, batch, finish)
        updates = {k: zeros_like_tree(v) for k, v in params.items()}  # entries mf does not own
        updates.update(join_blocks(grads))
        return updates, state, metrics

    def step_blocks(params, state, opt_states, batch, key, optimizer):
        batch = check_batch(model, batch, params)
        check_params(params, 'mf_proj', 'mf')
        del key
        old = blocks(params)
        new, new_states = [], []

        def finish(i, g, a_out, nxt):
            # The old parameters are released to the update only once the gradient of
            # the block's first layer exists, the last one its backward pass computes:
            # every read of them (the projection's, by the gradient to the layer) is
            # then done and the update can overwrite them in place. Otherwise XLA:GPU
            # updates the projection early and copies the result into place later.
            first = g['layer'] if 'layer' in g else g['layers'][0]
            params_i, _ = jax.lax.optimization_barrier((old[i], first))
            updates, opt_state = optimizer.update(g, opt_states[i], params_i)
            block = optax.apply_updates(params_i, updates)
            new_states.append(opt_state)
            if a_out is not None:
                a_out, nxt, block = _wait(a_out, nxt, block)
            new.append(block)
            return a_out, nxt

        metrics = forward_pass(params, batch, finish)
        params = {**params, **join_blocks(new)}  # entries mf does not own stay as they are
        return params, state, tuple(new_states), metrics

    def predict(params, state, x):
        del state
        if prediction == 'last':
            return model.apply(params, x, train=False)[0]
        total, a = 0.0, x
        for l in range(num_proj):
            a = call_block(layers[l], params['layers'][l], a, False)
            scores = _features(layers[l], a, conv_scores).astype(params['mf_proj'][l]['m'].dtype)
            total = total + jax.nn.log_softmax((scores @ params['mf_proj'][l]['m']).astype(jnp.float32))
        for layer, p in zip(layers[num_proj:], params['layers'][num_proj:]):
            a = call_block(layer, p, a, False)
        return total + jax.nn.log_softmax(a.astype(jnp.float32))

    rule = Rule(init, step, predict, init_params, stats_pass(model))
    return layerwise_form(rule, blocks, step_blocks) if layerwise else rule
