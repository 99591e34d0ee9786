"""Counter-Current Learning (Kao & Hariharan, NeurIPS 2024): a forward net and a feedback
net that run against each other, each layer trained by its own local loss.

Forward net (the model's layers), each layer's input stop-gradiented:

  a_0 = x,   a_l = f_l(SG(a_{l-1}))   (l = 1..L; a_L are the logits)

Feedback net (the rule's own, `params['feedback']`), the mirror image: one dense map
`V_l` (width of a_l -> width of a_{l-1}, no bias) per model layer, run on all K class
one-hots:

  b_L = I_K,   b_{l-1} = elu(SG(b_l) V_l)   (l = L..2),   b_0 = SG(b_1) V_1

(`b_0` has no activation: the authors' code computes it with `act=False`, the mirror of
the forward net's linear top layer; it sits beside the input x, which elu could not reach
below -1).

Local loss of the pair at layer l = 0..L-1 (the authors' MLP code, `utils/loss.py`): the
B x K similarity `C_l = a_l b_l^T` (rows: examples, columns: classes) is pulled towards
the one-hot labels,

  loss_l = mean((C_l - onehot(y))^2) / d_l * loss_scale * width_scale,

`d_l` the width of a_l, the mean over all B*K entries, `loss_scale = 0.5` and
`width_scale = 256` the code's constants (its `loss_scale_C` and the literal 256). Pair l
trains forward layer l (l >= 1; pair 0's a_0 = x has no parameters) and feedback map
`V_{l+1}` (pair 0 trains V_1). Only the top layer sees a label error: `f_L` is trained by
the cross-entropy of the logits on its stop-gradiented input. No error crosses a layer in
either net: every update is the gradient of one local loss, so the step takes the gradient
of their sum once, the stop-gradients keeping the terms apart.

The paper steps the forward and feedback nets with separate SGD optimizers (lr 1, clip 1
each, momentum 0 in the MLP code); `param_labels` names the model's parameters 'forward'
and the feedback net's 'feedback', so a config gives the feedback net its own settings
(`config.optimizer_groups.feedback`; a group's `grad_clip` is a global norm over that
group alone, as the code's `clip_grad_norm_` per net).

Not built: the CNN form (upsampling feedback convs, normalised rows and the anti-collapse
terms), the paper's warm-up, gradient centralisation and flooding.

Cost per step: one forward pass, the feedback pass on K vectors (not B), and each layer's
local backward (the B x K similarity and its gradient).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_range
from neurokit.models import Model
from neurokit.models.model import require_layers
from neurokit.rules.base import EmptyState, Rule, check_batch, check_params, declare


def _check_dense(model: Model, rule: str) -> None:
    require_layers(model, rule, ('dense',), 'its forward pass runs layer by layer on '
                   'stop-gradiented inputs')


def _widths(model):
    """`(in, out)` width of every model layer (inputs flattened)."""
    return [(math.prod(l.in_shape), math.prod(l.out_shape)) for l in model.layers]


def feedback_pass(feedback, num_classes, dtype):
    """The feedback net on the K class one-hots: `[b_0, ..., b_{L-1}]`, `b_l` of shape
    (K, width of a_l); each map's input is stop-gradiented."""
    b = jnp.eye(num_classes, dtype=dtype)
    out = []
    for i in reversed(range(len(feedback))):
        z = jax.lax.stop_gradient(b) @ feedback[i]['w']
        b = jax.nn.elu(z) if i > 0 else z
        out.append(b)
    return out[::-1]


def pair_loss(a, g, y, scale):
    """The pair loss of forward activations `a` (B x d) and feedback activations `g`
    (K x d): `mean((a g^T - onehot(y))^2) / d * scale`."""
    a = a.reshape(a.shape[0], -1)
    c = (a @ g.T).astype(jnp.float32)
    target = jax.nn.one_hot(y, g.shape[0], dtype=jnp.float32)
    return jnp.mean((c - target) ** 2) / a.shape[1] * scale


@declare(layers=('dense',), toy_learning_rate=1e-2)
def ccl(model: Model, loss_scale: float = 0.5, width_scale: float = 256.0) -> Rule:
    """Counter-Current Learning (see the module docstring).

    Args:
      model: an MLP (dense layers).
      loss_scale: factor of every pair loss (the authors' `loss_scale_C`, 0.5).
      width_scale: the pair loss is divided by the layer's width and multiplied by this
        (the authors' code: `/ A.shape[1] * 256`).

    Returns:
      A `Rule` with no state; `init_params` adds `params['feedback']`, one `{'w': (d_l,
      d_{l-1})}` per model layer (PyTorch's nn.Linear init, as the authors' code), and
      `param_labels` names the model's parameters 'forward', the feedback net's 'feedback'.

    Example:
      >>> rule = ccl(mlp((784,), 10, hidden=(256,) * 5, activation='elu'))
      >>> params = rule.init_params(key, model.init(key))
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    for name, value in (('loss_scale', loss_scale), ('width_scale', width_scale)):
        check_range(name, value, lambda v: v > 0, 'a finite number > 0', where='ccl')
    _check_dense(model, 'ccl')
    widths = _widths(model)
    scale = loss_scale * width_scale

    def init_params(key, model_params):
        dtype = model_params['layers'][0]['w'].dtype
        feedback = []
        for k, (n_in, n_out) in zip(jax.random.split(key, len(widths)), widths):
            bound = 1.0 / math.sqrt(n_out)  # nn.Linear(n_out, n_in): U(-1/sqrt(fan_in), +)
            feedback.append({'w': jax.random.uniform(k, (n_out, n_in), dtype, -bound, bound)})
        return {**model_params, 'feedback': tuple(feedback)}

    def init(key, params):
        del key, params
        return EmptyState()

    def objective(params, x, y):
        """The sum of every layer's local loss; the logits."""
        gs = feedback_pass(params['feedback'], model.num_classes, x.dtype)
        a = x.reshape(x.shape[0], -1)
        total = 0.0
        for l, (layer, p) in enumerate(zip(model.layers, params['layers'])):
            total = total + pair_loss(a, gs[l], y, scale)  # trains layer l-1 and V_{l+1}
            a = layer(p, jax.lax.stop_gradient(a))
        top = losses.cross_entropy(a, y)  # a is the logits
        return total + top, (top, a)

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_params(params, 'feedback', 'ccl')
        del key
        x = batch['x'].astype(params['layers'][0]['w'].dtype)
        grads, (top, logits) = jax.grad(objective, has_aux=True)(params, x, batch['y'])
        return grads, state, {'loss': top, 'accuracy': losses.accuracy(logits, batch['y'])}

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    def param_labels(params):
        return {k: jax.tree.map(lambda _: 'feedback' if k == 'feedback' else 'forward', v)
                for k, v in params.items()}

    return Rule(init, step, predict, init_params=init_params, param_labels=param_labels)
