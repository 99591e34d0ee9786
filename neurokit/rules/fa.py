"""Feedback alignment family: FA, DFA, sign symmetry (uSF, brSF, frSF) and PFA.

All of them keep backprop's forward pass and its local weight gradients
(`dW = x^T delta`), and change only how the error travels to earlier layers:

* FA (Lillicrap et al. 2016): `delta_in = delta @ B^T` with a fixed random
  `B` shaped like `W` (for a conv, a fixed random kernel shaped like the
  forward kernel, used in the transposed convolution).
* uSF / brSF / frSF (Liao et al. 2016, BioTorch's names): `B = sign(W) * M`
  with `M` a constant (uSF), redrawn random magnitudes every batch (brSF) or
  fixed random magnitudes (frSF).
* PFA (Li & Benna 2024): `B` is the product of a learned `R` (in params) and a
  fixed random `B` (in the rule state), through `n_mid = ratio * n_out` units.
* DFA (Nokland 2016): the output error `e` goes straight to every hidden
  layer through its own fixed matrix, `delta_l = (e @ B_l^T) * f'(z_l)`.

FA-like rules are a `jax.custom_vjp` around each layer's `linear` whose
backward pass uses the feedback for the input cotangent and the true local
gradient for the parameters, so `jax.grad` of the ordinary loss is the rule's
update and everything runs under jit, vmap and sharding. DFA cuts the graph
between layers with `stop_gradient` and does one vjp of the whole forward pass
with the projected error as each layer's output cotangent: every layer's vjp
is independent, none waits for the one above.

Feedback for layer `l` (l >= 1) sends the error at layer l's pre-activation to
its input; layer 0 needs none (nobody consumes its input cotangent), so
feedback tuples have one entry per layer *after* the first.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Layer, Model
from neurokit.models.model import call_block, hooked_block, param_dtype, stats_pass
from neurokit.rules.base import EmptyState, Rule, check_batch, check_params, check_state, declare


class FeedbackState(NamedTuple):
    """Fixed feedback of FA (matrices like `W`), frSF (magnitudes) or DFA.

    Attributes:
      feedback: FA/frSF: one array per layer after the first, shaped like that
        layer's weight. DFA: one `(prod(out_shape_l), num_classes)` matrix per
        hidden layer.
    """
    feedback: tuple


class PFAState(NamedTuple):
    """PFA's fixed half of the feedback: one `(n_mid, n_out)` matrix per layer after the first."""
    b: tuple


def with_feedback(state, feedback):
    """Returns `state` with its feedback replaced (e.g. by `W` for the backprop oracle).

    Args:
      state: a `FeedbackState` from `fa(...).init` or `dfa(...).init`.
      feedback: a tuple of arrays shaped like `state.feedback`.

    Returns:
      A new `FeedbackState`.

    Example:
      >>> ws = tuple(p['w'] for p in params['layers'][1:])
      >>> state = with_feedback(rule.init(key, params), ws)  # FA now equals BP
    """
    feedback = tuple(feedback)
    if len(feedback) != len(state.feedback):
        raise ValueError(f'expected {len(state.feedback)} feedback arrays, got {len(feedback)}')
    for i, (old, new) in enumerate(zip(state.feedback, feedback)):
        if old.shape != new.shape:
            raise ValueError(f'feedback {i} must have shape {old.shape}, got {new.shape}')
    return state._replace(feedback=tuple(jnp.asarray(f, old.dtype)
                                         for f, old in zip(feedback, state.feedback)))


def _fan_in(w):
    return int(math.prod(w.shape[:-1]))


def feedback_sites(model) -> tuple:
    """`((block index, Site), ...)`: every linear map whose input cotangent a feedback rule
    replaces, in order. That is every site of every block (a Dense or Conv inside a Flax
    block, neurokit's layers' own map), except the first neurokit layer's, whose input is
    the data: nobody consumes its input cotangent."""
    return tuple((i, site) for i, block in enumerate(model.layers) for site in block.sites
                 if not (i == 0 and isinstance(block, Layer)))


def _site_params(block_params, site):
    """The params dict of `site`'s map alone, inside its block's params."""
    for k in site.path:
        block_params = block_params[k]
    return block_params


def _site_kernels(sites, params):
    return [_site_params(params['layers'][i], site)[site.kernel] for i, site in sites]


def _feedback_linear(fn, kernel):
    """`(q, b, x) -> fn(q, x)` whose vjp sends the error to x through `b` in place of
    `q[kernel]`; the parameter gradient is the true local one."""

    @jax.custom_vjp
    def linear(q, b, x):
        return fn(q, x)

    def fwd(q, b, x):
        return fn(q, x), (q, b, x)

    def bwd(res, g):
        q, b, x = res
        _, vjp_q = jax.vjp(lambda q_: fn(q_, x), q)
        # the map is affine in x, so its vjp at kernel b is the transposed map through b.
        _, vjp_x = jax.vjp(lambda x_: fn({**q, kernel: b}, x_), x)
        return vjp_q(g)[0], jnp.zeros_like(b), vjp_x(g)[0]

    linear.defvjp(fwd, bwd)
    return linear


def _pfa_linear(layer):
    """`(p, r, b, x) -> layer.linear(p, x)`; the error reaches x through `b` then `r`.

    The feedback path is the virtual map `x -> linear_r(x) @ b` (a layer with
    `n_mid` outputs, then a 1x1 map to `n_out`); its vjp gives both the input
    cotangent and `dR = x^T delta_mid`, the local update of the learned `r`.
    """

    def virtual(r, b, x):
        h = layer.linear({'w': r, 'b': jnp.zeros(r.shape[-1], r.dtype)}, x)
        return h @ b

    @jax.custom_vjp
    def linear(p, r, b, x):
        return layer.linear(p, x)

    def fwd(p, r, b, x):
        return layer.linear(p, x), (p, r, b, x)

    def bwd(res, g):
        p, r, b, x = res
        _, vjp_p = jax.vjp(lambda p_: layer.linear(p_, x), p)
        _, vjp_rx = jax.vjp(lambda r_, x_: virtual(r_, b, x_), r, x)
        dr, dx = vjp_rx(g)
        return vjp_p(g)[0], dr, jnp.zeros_like(b), dx

    linear.defvjp(fwd, bwd)
    return linear


def _angle_degrees(a, b):
    """Angle between two pytrees seen as flat vectors (0 when either is zero)."""
    a = jnp.concatenate([x.ravel().astype(jnp.float32) for x in jax.tree.leaves(a)])
    b = jnp.concatenate([x.ravel().astype(jnp.float32) for x in jax.tree.leaves(b)])
    cos = jnp.dot(a, b) / jnp.maximum(jnp.linalg.norm(a) * jnp.linalg.norm(b), 1e-30)
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


def _metrics(model, loss_fn, params, updates, logits, value, batch, alignment_metrics):
    metrics = {'loss': value, 'accuracy': losses.accuracy(logits, batch['y'])}
    if alignment_metrics:
        # One extra ordinary backward pass: the true gradient to compare with.
        true = jax.grad(lambda p: loss_fn(model.apply(p, batch['x'], train=True)[0],
                                          batch['y']))(params)
        metrics['alignment_angle'] = jnp.stack(
            [_angle_degrees(u, t) for u, t in zip(updates['layers'], true['layers'])])
    return metrics


def _predict(model):
    def predict(params, state, x):
        del state
        return model.apply(params, x, train=False)[0]
    return predict


def _feedback_rule(model, make_feedback, init, loss, alignment_metrics, name, state_type):
    """An FA-like rule: `make_feedback(params, state, key)` gives one `B` per feedback site
    (`feedback_sites`); `init` returns a `state_type`."""
    loss_fn = losses.get(loss)
    sites = feedback_sites(model)
    where = {(i, site.name): n for n, (i, site) in enumerate(sites)}

    def objective(params, feedback, x, y):
        for i, (block, p) in enumerate(zip(model.layers, params['layers'])):
            def hook(site, fn, q, h, i=i):
                n = where.get((i, site.name))
                if n is None:
                    return fn(q, h)
                return _feedback_linear(fn, site.kernel)(q, feedback[n], h)
            x = hooked_block(block, p, x, hook, True)
        return loss_fn(x, y), x

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_state(state, state_type, name)
        feedback = jax.lax.stop_gradient(make_feedback(params, state, key))
        (value, logits), updates = jax.value_and_grad(objective, has_aux=True)(
            params, feedback, batch['x'], batch['y'])
        return updates, state, _metrics(model, loss_fn, params, updates, logits, value, batch,
                                        alignment_metrics)

    return Rule(init, step, _predict(model), update_stats=stats_pass(model))


def _normal(key, shape, dtype, std):
    return (jax.random.normal(key, shape, jnp.float32) * std).astype(dtype)


def _random_like_weights(key, sites, params, scale):
    """Fixed random arrays shaped like each feedback site's kernel, std scale/sqrt(fan_in)."""
    ws = _site_kernels(sites, params)
    keys = jax.random.split(key, max(len(ws), 1))
    return tuple(_normal(k, w.shape, w.dtype, scale / math.sqrt(site.fan_in))
                 for k, w, (_, site) in zip(keys, ws, sites))


@declare(toy_learning_rate=3e-3)  # random feedback learns the toy task slower
def fa(model: Model, loss: str = 'cross_entropy', feedback_scale: float = 1.0,
       alignment_metrics: bool = False) -> Rule:
    """Feedback alignment: the error goes back through fixed random `B_l` instead of `W_l`.

    Args:
      model: the network (MLP or CNN; conv layers get random kernels shaped
        like their forward kernels).
      loss: 'cross_entropy' or 'mse'.
      feedback_scale: `B_l ~ N(0, (feedback_scale / sqrt(fan_in_l))^2)`, the
        spread of a LeCun-initialised forward weight.
      alignment_metrics: add 'alignment_angle', the angle in degrees between
        each layer's update and the true gradient (one extra backward pass).

    Returns:
      A `Rule` whose state is a `FeedbackState`, drawn from the key given to
      `init` (checkpointed with it, never trained). `with_feedback` overrides it.

    Example:
      >>> rule = fa(mlp((784,), 10))
      >>> state = rule.init(key, params)
      >>> updates, state, metrics = rule.step(params, state, batch, key)
    """
    check_range('feedback_scale', feedback_scale, lambda v: v > 0, 'a finite number > 0')

    sites = feedback_sites(model)

    def init(key, params):
        return FeedbackState(_random_like_weights(key, sites, params, feedback_scale))

    return _feedback_rule(model, lambda params, state, key: state.feedback, init, loss,
                          alignment_metrics, 'fa', FeedbackState)


def _signs(sites, params):
    return [jnp.sign(w) for w in _site_kernels(sites, params)]


SCALE_BY = ('fan_in', 'xavier')


def usf(model: Model, loss: str = 'cross_entropy', scaled: bool = True,
        alignment_metrics: bool = False, scale_by: str = 'fan_in') -> Rule:
    """Uniform sign-concordant feedback: `B_l = sign(W_l) * c_l`, recomputed every step.

    Args:
      model, loss, alignment_metrics: as in `fa`.
      scaled: True: `c_l` as `scale_by` says; False: `c_l = 1`, the bare definition.
      scale_by: 'fan_in': `c_l = 1/sqrt(fan_in_l)` (the size of a LeCun-initialised
        weight, keeping backward signals the size of backprop's); 'xavier': `c_l =
        sqrt(2 / (fan_in_l + fan_out_l))`, the standard deviation of a Xavier-initialised
        weight, BioTorch's uSF. With the same weights, the two differ by
        `sqrt(2 fan_in / (fan_in + fan_out))` per layer (1.0 where fan_in = fan_out).

    Returns:
      A `Rule` with no state (the feedback follows the current weights).

    Example:
      >>> rule = usf(mlp((784,), 10))
    """

    if scale_by not in SCALE_BY:
        raise ValueError(f'unknown scale_by {scale_by!r}; valid: {", ".join(SCALE_BY)}')
    sites = feedback_sites(model)

    def size(site):
        if not scaled:
            return 1.0
        if scale_by == 'xavier':
            return math.sqrt(2.0 / (site.fan_in + site.fan_out))
        return 1.0 / math.sqrt(site.fan_in)

    def make_feedback(params, state, key):
        del state, key
        return tuple(s * size(site) for s, (_, site) in zip(_signs(sites, params), sites))

    return _feedback_rule(model, make_feedback, lambda key, params: EmptyState(), loss,
                          alignment_metrics, 'usf', EmptyState)


def brsf(model: Model, loss: str = 'cross_entropy', feedback_scale: float = 1.0,
         alignment_metrics: bool = False) -> Rule:
    """Batch-random sign-concordant feedback: `B_l = sign(W_l) * |N|`, magnitudes new every batch.

    The magnitudes `|N(0, (feedback_scale/sqrt(fan_in))^2)|` come from the
    step key, so a step is reproducible from (params, key).

    Args:
      model, loss, feedback_scale, alignment_metrics: as in `fa`.

    Returns:
      A `Rule` with no state.
    """
    check_range('feedback_scale', feedback_scale, lambda v: v > 0, 'a finite number > 0')

    sites = feedback_sites(model)

    def make_feedback(params, state, key):
        del state
        mags = _random_like_weights(key, sites, params, feedback_scale)
        return tuple(s * jnp.abs(m) for s, m in zip(_signs(sites, params), mags))

    return _feedback_rule(model, make_feedback, lambda key, params: EmptyState(), loss,
                          alignment_metrics, 'brsf', EmptyState)


def frsf(model: Model, loss: str = 'cross_entropy', feedback_scale: float = 1.0,
         alignment_metrics: bool = False) -> Rule:
    """Fixed-random-magnitude sign-concordant feedback: `B_l = sign(W_l) * M_l`, `M_l` fixed.

    Args:
      model, loss, feedback_scale, alignment_metrics: as in `fa`.

    Returns:
      A `Rule` whose `FeedbackState` holds the fixed magnitudes `M_l >= 0`.
    """
    check_range('feedback_scale', feedback_scale, lambda v: v > 0, 'a finite number > 0')

    sites = feedback_sites(model)

    def init(key, params):
        return FeedbackState(tuple(jnp.abs(m) for m in _random_like_weights(key, sites, params,
                                                                             feedback_scale)))

    def make_feedback(params, state, key):
        del key
        return tuple(s * m for s, m in zip(_signs(sites, params), state.feedback))

    return _feedback_rule(model, make_feedback, init, loss, alignment_metrics, 'frsf',
                          FeedbackState)


@declare(toy_learning_rate=3e-3)  # random feedback learns the toy task slower
def dfa(model: Model, loss: str = 'cross_entropy', feedback_scale: float = 1.0,
        alignment_metrics: bool = False, conv_feedback: str = 'full') -> Rule:
    """Direct feedback alignment: every hidden layer gets the output error through its own `B_l`.

    Layer l's output cotangent is `e @ B_l^T` (reshaped to the layer's output,
    for a conv its pooled feature maps), where `e = dloss/dlogits`; the vjp of
    the layer's `post` applies `f'(z_l)` (and routes through max-pooling), so
    `delta_l = (e @ B_l^T) * f'(z_l)` as in Nokland (2016). The output layer
    gets `e` itself. With one hidden layer and `B_0 = W_1` this is backprop.

    Args:
      model, loss, alignment_metrics: as in `fa`.
      feedback_scale: `B_l ~ N(0, (feedback_scale / sqrt(num_classes))^2)`.
      conv_feedback: how a conv layer's (pooled) feature maps receive the
        error. 'full': an independent random weight for every position and
        channel, `B_l` of shape `(H*W*C, num_classes)`. 'channel': one random
        weight per channel, shared by every position, `B_l` of shape `(C,
        num_classes)`, so each feature map gets one signal per example that
        the ReLU and max-pool masks then gate by position (the error BioTorch's
        DFA conv layers deliver: a spatially uniform output error sent back
        through a fixed kernel). Dense layers are the same in both modes.

    Returns:
      A `Rule` whose `FeedbackState` holds one `(prod(out_shape_l),
      num_classes)` matrix per hidden layer (`(channels_l, num_classes)` for a
      conv layer under `conv_feedback='channel'`).

    Example:
      >>> rule = dfa(cnn((28, 28, 1), 10))
    """
    check_range('feedback_scale', feedback_scale, lambda v: v > 0, 'a finite number > 0')
    if conv_feedback not in ('full', 'channel'):
        raise ValueError(f"conv_feedback must be 'full' or 'channel', got {conv_feedback!r}")
    loss_fn = losses.get(loss)
    layers = model.layers
    n_out = model.num_classes

    def shared(layer):  # a conv layer whose feedback is one weight per channel
        return conv_feedback == 'channel' and len(layer.out_shape) > 1

    def init(key, params):
        keys = jax.random.split(key, max(len(layers) - 1, 1))
        dtype = param_dtype(params['layers'][0])
        return FeedbackState(tuple(
            _normal(k, (layer.out_shape[-1] if shared(layer) else math.prod(layer.out_shape), n_out),
                    dtype, feedback_scale / math.sqrt(n_out))
            for k, layer in zip(keys, layers[:-1])))

    def project(layer, e, b, out):
        """The output error sent to `layer`'s output `out` (batch first) through `b`."""
        signal = e @ b.T
        if shared(layer):  # (N, C) -> the same value at every position of a channel
            signal = jnp.broadcast_to(signal.reshape((signal.shape[0],) + (1,) * (out.ndim - 2)
                                                     + signal.shape[-1:]), out.shape)
        return signal.reshape(out.shape).astype(out.dtype)

    def forward(layer_params, x):
        outs = []
        for layer, p in zip(layers, layer_params):
            # No gradient crosses layers: each layer's vjp stands alone.
            x = call_block(layer, p, jax.lax.stop_gradient(x), True)
            outs.append(x)
        return tuple(outs)

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_state(state, FeedbackState, 'dfa')
        del key
        outs, vjp_fn = jax.vjp(forward, params['layers'], batch['x'])
        logits = outs[-1]
        value, e = jax.value_and_grad(loss_fn)(logits, batch['y'])
        e = e.astype(logits.dtype)
        cotangents = tuple(project(layer, e, b, o)
                           for layer, b, o in zip(layers, state.feedback, outs[:-1])) + (e,)
        layer_updates, _ = vjp_fn(cotangents)
        updates = dict(params, layers=layer_updates)
        return updates, state, _metrics(model, loss_fn, params, updates, logits, value, batch,
                                        alignment_metrics)

    return Rule(init, step, _predict(model), update_stats=stats_pass(model))


def _xavier_uniform(key, shape, fan_in, fan_out, dtype, gain=1.0):
    lim = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -lim, lim).astype(dtype)


@declare(toy_learning_rate=3e-3)  # random feedback learns the toy task slower
def pfa(model: Model, loss: str = 'cross_entropy', ratio: int = 10,
        alignment_metrics: bool = False) -> Rule:
    """Product feedback alignment: the error goes back through `b_l` (fixed) then `r_l` (learned).

    For layer l >= 1 with weight `W` (n_in, n_out) the feedback is `r @ b`,
    `r` (n_in, n_mid) in `params['pfa_r']`, `b` (n_mid, n_out) in the rule
    state, `n_mid = ratio * n_out`: `delta_mid = delta @ b^T`, `delta_in =
    delta_mid @ r^T`, `dr = x^T delta_mid` (local). For a conv, `r` is a kernel
    like W's with n_mid output channels and `b` a 1x1 map. `r` shares the outer
    optimizer (and its weight decay, which pulls `r @ b` towards `W` since `b^T
    b ~ I`) with the weights. Init as the authors' code: Xavier-uniform `r`,
    Xavier-uniform `b` with gain sqrt((1 + 1/ratio)/2).

    Args:
      model, loss, alignment_metrics: as in `fa`.
      ratio: `n_mid / n_out`.

    Returns:
      A `Rule` with `init_params` adding `'pfa_r'` and a `PFAState`.

    Example:
      >>> rule = pfa(mlp((784,), 10), ratio=10)
      >>> params = rule.init_params(key, model.init(key)); state = rule.init(key, params)
    """
    ratio = check_count('ratio', ratio, 1, 'sets the shape of the feedback weights')
    for block in model.layers:
        if not isinstance(block, Layer):
            raise ValueError(f"pfa cannot apply to block {block.name} ({block.kind}): its learned "
                             "feedback needs neurokit's own dense and conv layers; use fa, usf, "
                             'brsf or frsf on Flax blocks')
    loss_fn = losses.get(loss)
    layers = model.layers
    linears = [layers[0].linear] + [_pfa_linear(layer) for layer in layers[1:]]

    def init_params(key, model_params):
        ws = [p['w'] for p in model_params['layers'][1:]]
        keys = jax.random.split(key, max(len(ws), 1))
        rs = []
        for k, w in zip(keys, ws):
            n_mid = ratio * w.shape[-1]
            receptive = math.prod(w.shape[:-2]) if w.ndim > 2 else 1
            rs.append(_xavier_uniform(k, w.shape[:-1] + (n_mid,), receptive * w.shape[-2],
                                      receptive * n_mid, w.dtype))
        return dict(model_params, pfa_r=tuple(rs))

    def init(key, params):
        ws = [p['w'] for p in params['layers'][1:]]
        keys = jax.random.split(key, max(len(ws), 1))
        gain = math.sqrt((1.0 + 1.0 / ratio) / 2.0)
        return PFAState(tuple(
            _xavier_uniform(k, (ratio * w.shape[-1], w.shape[-1]), ratio * w.shape[-1], w.shape[-1],
                            w.dtype, gain) for k, w in zip(keys, ws)))

    def objective(params, b, x, y):
        for l, (layer, p) in enumerate(zip(layers, params['layers'])):
            z = linears[l](p, x) if l == 0 else linears[l](p, params['pfa_r'][l - 1], b[l - 1], x)
            x = layer.post(z)
        return loss_fn(x, y), x

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        check_state(state, PFAState, 'pfa')
        check_params(params, 'pfa_r', 'pfa')
        del key
        (value, logits), updates = jax.value_and_grad(objective, has_aux=True)(
            params, state.b, batch['x'], batch['y'])
        return updates, state, _metrics(model, loss_fn, params, updates, logits, value, batch,
                                        alignment_metrics)

    return Rule(init, step, _predict(model), init_params=init_params)
