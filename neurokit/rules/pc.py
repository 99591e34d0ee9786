"""Predictive coding (`pc`) and incremental predictive coding (`ipc`).

A discriminative PC network puts one value node `x_l` after every layer of the
model (`x_0` is the input, `x_L` the output) and scores them with the energy

    E = sum_{l<L} 1/2 ||x_l - f_l(x_{l-1})||^2 + E_out(f_L(x_{L-1}); target)

where `f_l` is the model's whole layer (`post(linear(.))`, so the prediction
is `act(W x + b)`, as in PCX) and `E_out` is Gaussian (`1/2 ||t - mu_L||^2`)
or cross-entropy (`-t . log_softmax(mu_L)`), `t` being the output node: the
one-hot target (hard clamp, beta=1) or a nudged one (PCX's `t = u_L - beta
(u_L - y)`, or the target with `E_out` scaled by beta: see `pc`'s `nudge`).
Energies are summed over the batch, so the activity step is per example and
independent of the batch size (PCX differentiates the batch mean: its activity
step sizes are B times ours); weight gradients are divided by the batch size
(and by beta) so that they are on the scale of backprop's mean-loss gradients.

One training step of `pc`:
  1. a forward pass initialises every hidden node (`x_l = mu_l`); the output
     node is clamped to the target;
  2. T inference steps `x <- x - gamma * dE/dx` (plain or momentum SGD,
     re-initialised every batch) on the hidden nodes, as a `lax.scan` inside
     the compiled step. The first step is special-cased: after the forward
     initialisation every hidden error is exactly zero, so its gradient is the
     output error sent back through the last layer, which the forward pass
     already linearised (no extra matmuls);
  3. the weight gradient `dE/dW` at the relaxed nodes (local: `e_l` times the
     presynaptic activity), returned as `updates` for the outer optimizer.
Cost in matmuls per layer: forward L, each later inference step 2 (prediction
and one vjp), the final weight gradient 2 (prediction and `e_l x_{l-1}^T`):
about (2T + 1) L against backprop's 3 L, i.e. (2T + 1)/3 x BP when
matmul-bound. The first layer is cheaper: it sees only the clamped input, so
its prediction and linearisation are computed once per batch (forward plus one
weight-gradient matmul, 2 against backprop's 2 for an input layer that needs
no input gradient), which matters because it is usually the widest.

`fixed_prediction=True` is the fixed-prediction assumption (Z-IL, Song et al.
2020): predictions and their Jacobians stay at their forward-pass values, so
with `inference_lr=1`, no momentum and T >= L - 1 steps every error `e_l`
becomes backprop's `-dLoss/dx_l` and the weight updates equal backprop's
gradients exactly (Z-IL updates layer l at step l; at a fixed point that is
the same as updating all layers after the last step).

`ipc` (incremental PC, Salvatori et al.) takes a weight step at every one of
the T inference steps, from the same energy gradient as the activity step. Its
inner loop therefore needs the optimizer: `ipc` is an `OptimizerRule` (see
`neurokit.rules.base`), handed the training's optimizer and its state, which it
steps T times per batch (so the optimizer's step count, a schedule's position
and Adam's bias correction advance by T per batch). Each iPC step costs about
3 matmuls per layer (prediction, vjp to the nodes, weight gradient), so T steps
cost about T x BP.

Mixed precision: with parameters narrower than float32 (bfloat16, float16) the matmuls
run in the parameter dtype, while the value nodes, their momentum, the prediction errors
and the energy are float32, and the updates keep the parameter dtype. A prediction error
`x_l - f_l(x_{l-1})` is a small difference of large numbers, which a bfloat16 cast of
`x_{l-1}` or of the matmul's output (8 bits) would cancel; so each prediction is evaluated
as its forward-pass pre-activation (float32) plus the matmul of the node's displacement
since the forward pass, which keeps the displacement's own precision (`_delta_linear`; the
same matmul count). `ipc` also accumulates its weights in float32 within the batch and
adds the weight displacement's term `dW x_{l-1}`: one more matmul per layer and step (about
4 against 3). Float32 parameters take the plain path.

`beta` may be traced (a sweep varies it inside one program); it is then unchecked.

Metrics (per example): 'loss' (cross-entropy of the forward pass, comparable
with bp), 'accuracy', 'energy_start' (after the forward initialisation),
'energy_end' (after inference; for `ipc`, measured at its last step, before that
step's updates, which saves a forward pass), 'energy_decrease', and
'energy_<l>' per layer at the end.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Model
from neurokit.models.model import refuse_stateful
from neurokit.rules.base import EmptyState, OptimizerRule, Rule, check_batch, declare
from neurokit.traced import is_traced

OUTPUT_ENERGIES = ('gaussian', 'cross_entropy')
NUDGES = ('target', 'energy')


_PC_NORM = ("batch statistics inside the energy would couple the examples' value nodes, "
            'and inference never runs the feed-forward pass the statistics describe')


def _sum_sq(e):
    return 0.5 * jnp.sum(jnp.square(e.astype(jnp.float32)))


def _state(x):
    """`x` in the inference state's dtype: float32, or wider if `x` is (mixed precision:
    with bfloat16 parameters the value nodes, their momentum, the errors `x - mu` and the
    energy stay float32, so that the small prediction errors PC relies on do not cancel;
    a layer casts a node to its parameter dtype where it feeds its matmul)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _scaled(g, scale):
    """`g * scale` in `g`'s dtype, multiplied in float32 (a Python-float scale would be
    rounded to bfloat16 first)."""
    return (_state(g) * scale).astype(g.dtype)


def _narrow(p):
    """Whether a layer's parameters are narrower than float32 (bfloat16, float16)."""
    return any(jnp.issubdtype(a.dtype, jnp.floating) and jnp.finfo(a.dtype).bits < 32
               for a in jax.tree.leaves(p))


def _apply(layer, p, h, narrow):
    """The layer's output `post(linear(p, h))` and, for narrow parameters, its pre-activation.

    Narrow parameters: the matmul runs in the parameter dtype, its output and the activation
    are float32 (`_state`); returns `(mu, z)`. Otherwise `(layer(p, h), None)`.
    """
    if not narrow or not hasattr(layer, 'linear'):  # a Flax block: its own precision
        return layer(p, h), None
    z = _state(layer.linear(p, h))
    return layer.post(z), z


def _delta_linear(linear, p, x, zb, xb, moves=True):
    """`linear(p, x)` in float32 for narrow parameters, as the base `zb = linear(p, xb)`
    (float32) plus `J_x (x - xb)`, the matmul applied to the node's displacement from `xb`.

    The prediction error `x_l - mu_l` is a small difference of large numbers: evaluated as
    `linear(p, x)`, the cast of `x` to the parameter dtype and the rounding of the matmul's
    output would cancel it (bfloat16 keeps 8 bits). The displacement keeps its own relative
    precision through the narrow matmul, and the base is computed once. The value equals
    `linear(p, x)` (the layer is affine), so the gradient is `linear`'s own (one vjp:
    `e x^T` and `W^T e`). `moves=False`: `x` is the clamped input (`x == xb`), no matmul.
    """
    @jax.custom_vjp
    def f(p, x, zb, xb):
        if not moves:
            return zb
        return zb + _state(jax.jvp(lambda a: linear(p, a), (xb,), (x - xb,))[1])

    def fwd(p, x, zb, xb):
        return f(p, x, zb, xb), (p, x, zb, xb)

    def bwd(res, g):
        p, x, zb, xb = res
        z, vjp = jax.vjp(linear, p, x)  # its forward matmul is unused (dead code)
        gp, gx = vjp(g.astype(z.dtype))
        return gp, gx, jnp.zeros_like(zb), jnp.zeros_like(xb)

    f.defvjp(fwd, bwd)
    return f(p, x, zb, xb)


class _Net:
    """The energy of a PC network built on `model`: shared by `pc` and `ipc`."""

    def __init__(self, model: Model, output_energy: str, beta: float, nudge: str = 'target'):
        if output_energy not in OUTPUT_ENERGIES:
            raise ValueError(f'unknown output_energy {output_energy!r}; valid: '
                             f'{", ".join(OUTPUT_ENERGIES)}')
        if nudge not in NUDGES:
            raise ValueError(f'unknown nudge {nudge!r}; valid: {", ".join(NUDGES)}')
        # A traced beta (a sweep varies it inside one program) is used as it is, unchecked.
        if not is_traced(beta):
            check_range('beta', beta)
            if beta == 0:
                raise ValueError('beta must be non-zero (1: clamp the output to the target)')
            beta = float(beta)
        self.layers = model.layers
        self.num_classes = model.num_classes
        self.output_energy = output_energy
        self.beta = beta
        self.nudge = nudge

    def target(self, mu_out, y):
        """The output node's value, fixed during inference.

        nudge='target' (PCX): `u - beta (u - y)` with `u` the forward prediction
        (for cross-entropy, `u` is its softmax); nudge='energy': the one-hot
        target itself, the output energy being scaled by beta instead.
        """
        onehot = jax.nn.one_hot(y, self.num_classes, dtype=jnp.float32)
        # A traced beta takes the general formula (which is the one-hot target at beta=1).
        if self.nudge == 'energy' or (not is_traced(self.beta) and self.beta == 1.0):
            return onehot
        u = jax.lax.stop_gradient(mu_out).astype(jnp.float32)
        if self.output_energy == 'cross_entropy':
            u = jax.nn.softmax(u)
        return u - self.beta * (u - onehot)

    def out_energy(self, mu_out, t):
        """Output energy summed over the batch; `t` is the output node (float, (B, C))."""
        mu_out = mu_out.astype(jnp.float32)
        if self.output_energy == 'cross_entropy':
            e = -jnp.sum(t * jax.nn.log_softmax(mu_out))
        else:
            e = 0.5 * jnp.sum(jnp.square(t - mu_out))
        return self.beta * e if self.nudge == 'energy' else e

    def energy(self, params, xs, x0, t, mu1=None, base=None):
        """Total energy and its per-layer parts; `xs` are the hidden nodes x_1..x_{L-1}.

        `mu1`, if given, is the first layer's prediction `f_1(x_0)`: it depends
        only on the clamped input and the weights, so during inference (weights
        fixed) it is computed once per batch instead of once per step. That
        layer is usually the most expensive one (784 inputs against 128 hidden
        units in PCX's MLP; the full-resolution conv in a CNN).

        `base` (from `forward_init`; None when no layer has narrow parameters):
        per layer, None or `(zb, xb)`, the layer's float32 pre-activation `zb` at
        the input `xb`; that layer's prediction is then `_delta_linear`'s.
        """
        ps = params['layers']
        pre = (x0,) + tuple(xs)

        def mu(i, layer, p, h):
            if i == 0 and mu1 is not None:
                return mu1
            if base is None or base[i] is None:
                return layer(p, h)
            return layer.post(_delta_linear(layer.linear, p, h, *base[i], moves=i > 0))

        mus = [mu(i, *a) for i, a in enumerate(zip(self.layers, ps, pre))]
        parts = [_sum_sq(x - mu) for x, mu in zip(xs, mus[:-1])]
        parts.append(self.out_energy(mus[-1], t))
        parts = jnp.stack(parts)
        return jnp.sum(parts), parts

    def forward_init(self, params, x0, y, mu1=None):
        """Forward pass: hidden nodes, output, target and the first inference gradient.

        `mu1`, if given, is the first layer's output (computed by the caller with
        `_apply`). The hidden nodes are float32 whatever the parameter dtype.

        Returns:
          (xs, mu_out, t, e_out_energy, g0, base) where g0 is dE/dxs at the forward
          initialisation: zero except at x_{L-1}, which gets the output error
          through the last layer's vjp; `base` is `energy`'s (None if no layer
          has narrow parameters).
        """
        ps = params['layers']
        narrow = [_narrow(p) for p in ps]
        xs, zs, h = [], [], x0
        for i, (layer, p) in enumerate(zip(self.layers[:-1], ps[:-1])):
            if i == 0 and mu1 is not None:  # its prediction is fixed: no base needed
                h, z = mu1, None
            else:
                h, z = _apply(layer, p, h, narrow[i])
            h = _state(h)
            xs.append(h)
            zs.append(z)
        (mu_out, z_out), vjp_out = jax.vjp(
            lambda a: _apply(self.layers[-1], ps[-1], a, narrow[-1]), h)
        zs.append(z_out)
        t = self.target(mu_out, y)
        e_out, d_mu = jax.value_and_grad(self.out_energy)(mu_out, t)
        g0 = [jnp.zeros_like(x) for x in xs]
        if xs:
            ct = (d_mu.astype(mu_out.dtype), None if z_out is None else jnp.zeros_like(z_out))
            g0[-1] = _state(vjp_out(ct)[0])
        base = None
        if any(narrow):
            base = tuple(None if z is None else (z, h) for z, h in zip(zs, (x0,) + tuple(xs)))
        return tuple(xs), mu_out, t, e_out, tuple(g0), base


def _check_inference(inference_steps, inference_lr, inference_momentum):
    """Checks the inference settings; returns `(steps, lr, momentum)`.

    The step size and momentum may be traced (a sweep, `neurokit.parallel.sweep`, varies
    them inside one program): they are then used as they are, unchecked. The step
    count sets the program's length, so it must be a concrete integer.
    """
    steps = check_count('inference_steps', inference_steps, 0,
                        'sets the length of the inference loop')
    check_range('inference_lr', inference_lr, lambda v: v >= 0, 'a finite number >= 0')
    check_range('inference_momentum', inference_momentum, lambda v: 0 <= v < 1, 'in [0, 1)')
    scalar = lambda v: v if is_traced(v) else float(v)
    return steps, scalar(inference_lr), scalar(inference_momentum)


def _activity_step(xs, vs, gs, lr, momentum):
    """Momentum SGD on the value nodes (momentum 0: plain SGD), as optax.sgd does it."""
    vs = jax.tree.map(lambda v, g: momentum * v + g, vs, gs)
    xs = jax.tree.map(lambda x, v: x - lr * v, xs, vs)
    return xs, vs


def _metrics(net, mu_out, y, e_start, parts_end, batch):
    m = {'loss': losses.cross_entropy(mu_out, y), 'accuracy': losses.accuracy(mu_out, y),
         'energy_start': e_start / batch, 'energy_end': jnp.sum(parts_end) / batch}
    m['energy_decrease'] = m['energy_start'] - m['energy_end']
    for i in range(len(net.layers)):
        m[f'energy_{i}'] = parts_end[i] / batch
    return m


def pc(model: Model, inference_steps: int = 8, inference_lr: float = 0.1,
       inference_momentum: float = 0.0, output_energy: str = 'gaussian', beta: float = 1.0,
       nudge: str = 'target', fixed_prediction: bool = False) -> Rule:
    """Predictive coding: T inference steps on the hidden nodes, then dE/dW.

    Args:
      model: the network (MLP or CNN); every layer's output is a value node.
      inference_steps: T, activity steps per batch (inside the compiled step).
      inference_lr: activity step size gamma.
      inference_momentum: 0 for plain SGD on the activities, else momentum SGD
        (state re-initialised every batch, as in PCX).
      output_energy: 'gaussian' (1/2 ||t - mu_L||^2 on one-hot targets) or
        'cross_entropy'.
      beta: output nudging strength; weight gradients are divided by beta.
        1: hard clamp to the target (both `nudge` modes are then the same).
      nudge: how beta nudges. 'target' (PCX): the output node is fixed at
        `u_L - beta (u_L - y)`, `u_L` the forward prediction (its softmax for
        cross-entropy). 'energy' (equilibrium-propagation style): the output
        node is `y` and the output energy is scaled by beta; with small beta
        and many small steps the updates approach backprop's gradients. (With
        'target' the relaxed network absorbs part of the nudge, so the updates
        stay a fixed fraction away from backprop's as beta -> 0.)
      fixed_prediction: keep predictions and Jacobians at their forward-pass
        values during inference (Z-IL); with `inference_lr=1`, no momentum and
        T >= number of layers - 1 the updates equal backprop's gradients.

    Returns:
      A `Rule` (state: `EmptyState`); `predict` is a plain forward pass.

    Example:
      >>> rule = pc(mlp((784,), 10, (128, 128)), inference_steps=5, inference_lr=0.1)
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    refuse_stateful(model, 'pc', _PC_NORM)
    steps, lr, mom = _check_inference(inference_steps, inference_lr, inference_momentum)
    net = _Net(model, output_energy, beta, nudge)
    grad_x = jax.value_and_grad(net.energy, argnums=1, has_aux=True)
    grad_w = jax.value_and_grad(net.energy, argnums=0, has_aux=True)

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        x0, y = batch['x'], batch['y']
        if fixed_prediction:
            grads, metrics = _fixed_prediction_step(net, params, x0, y, steps, lr, mom)
            return grads, state, metrics
        # The first layer sees only the clamped input: its prediction and its linearisation
        # are fixed for the whole batch, so they are computed once (its weight gradient at the
        # end is one vjp, with no second forward pass through the widest layer).
        mu1, vjp0 = None, None
        if len(net.layers) > 1:
            narrow0 = _narrow(params['layers'][0])
            mu1, vjp0 = jax.vjp(lambda p: _apply(net.layers[0], p, x0, narrow0)[0],
                                params['layers'][0])
        xs, mu_out, t, e_start, g0, base = net.forward_init(params, x0, y, mu1)
        vs = jax.tree.map(jnp.zeros_like, xs)
        if steps > 0:
            xs, vs = _activity_step(xs, vs, g0, lr, mom)

            def body(carry, _):
                xs, vs = carry
                (_, _), gs = grad_x(params, xs, x0, t, mu1, base)
                return _activity_step(xs, vs, gs, lr, mom), None

            (xs, vs), _ = jax.lax.scan(body, (xs, vs), None, length=steps - 1)
        (_, parts), grads = grad_w(params, xs, x0, t, mu1, base)
        if vjp0 is not None:  # E_1 = 1/2 ||x_1 - mu_1||^2, so dE/dmu_1 = mu_1 - x_1
            layers = list(grads['layers'])
            layers[0] = vjp0((mu1 - xs[0]).astype(mu1.dtype))[0]
            grads = {**grads, 'layers': tuple(layers)}
        scale = 1.0 / (x0.shape[0] * net.beta)
        grads = jax.tree.map(lambda g: _scaled(g, scale), grads)
        return grads, state, _metrics(net, mu_out, y, e_start, parts, x0.shape[0])

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    return Rule(init, step, predict)


def _fixed_prediction_step(net, params, x0, y, steps, lr, mom):
    """Z-IL: inference and weight gradients with predictions fixed at the forward pass."""
    ps = params['layers']
    mus, vjps, h = [], [], x0
    for layer, p in zip(net.layers, ps):
        h, vjp = jax.vjp(layer, p, h)
        mus.append(h)
        vjps.append(vjp)
    t = net.target(mus[-1], y)
    e_start, d_mu = jax.value_and_grad(net.out_energy)(mus[-1], t)
    e_out = -d_mu.astype(mus[-1].dtype)  # constant: the prediction it is measured from is fixed

    def grads_x(xs):  # the nodes and errors are float32 (`_state`), the layers' vjps not
        es = [x - mu for x, mu in zip(xs, mus[:-1])] + [e_out]
        # dE/dx_l = e_l - J_{l+1}^T e_{l+1}, Jacobians taken at the forward pass.
        return tuple(es[i] - vjps[i + 1](es[i + 1].astype(mus[i + 1].dtype))[1]
                     for i in range(len(xs)))

    def body(carry, _):
        xs, vs = carry
        return _activity_step(xs, vs, grads_x(xs), lr, mom), None

    xs = tuple(_state(mu) for mu in mus[:-1])
    vs = jax.tree.map(jnp.zeros_like, xs)
    (xs, _), _ = jax.lax.scan(body, (xs, vs), None, length=steps)
    es = [x - mu for x, mu in zip(xs, mus[:-1])] + [e_out]
    scale = 1.0 / (x0.shape[0] * net.beta)
    layer_grads = tuple(jax.tree.map(lambda g: _scaled(g, scale),
                                     vjps[i]((-es[i]).astype(mus[i].dtype))[0])
                        for i in range(len(es)))
    grads = jax.tree.map(jnp.zeros_like, params)
    grads['layers'] = layer_grads
    parts = jnp.stack([_sum_sq(e) for e in es[:-1]] + [e_start])
    return grads, _metrics(net, mus[-1], y, e_start, parts, x0.shape[0])


@declare(pmap_exact=False)  # T optimizer steps on each device's slice
def ipc(model: Model, inference_steps: int = 8, inference_lr: float = 0.1,
        inference_momentum: float = 0.0, output_energy: str = 'gaussian', beta: float = 1.0,
        nudge: str = 'target') -> OptimizerRule:
    """Incremental predictive coding: a weight step at every inference step.

    Each of the T steps computes the energy gradient with respect to the hidden
    nodes and the weights in one pass and moves the nodes (activity step) and the
    weights (one step of the training's optimizer) together. The weight gradient is
    `dE/dW / (B beta)`, on the scale of backprop's mean-loss gradient as in `pc`, so
    with `optax.sgd(lr)` a batch moves the weights by T steps of `-lr dE/dW / (B beta)`,
    each at the nodes and weights of its inference step.

    The optimizer is the one every rule trains with (`config.optimizer`): its learning
    rate is the size of each of the T weight steps, and its step count advances by T
    per batch. A schedule laid out in batches therefore runs T times faster; use a
    constant learning rate, or lay the schedule out over T x the number of batches.

    Args:
      model, inference_steps, inference_lr, inference_momentum, output_energy,
        beta, nudge: as in `pc` (here inference_steps >= 1: the weights move only
        during inference).

    Returns:
      An `OptimizerRule` (state: `EmptyState`; optimizer state: `optimizer.init(params)`).

    Example:
      >>> rule = ipc(model, inference_steps=8, inference_lr=0.8, inference_momentum=0.25)
      >>> opt = optax.adamw(2.7e-4, weight_decay=0.0116)
      >>> opt_state = rule.init_opt_state(opt, params)
      >>> params, rule_state, opt_state, metrics = rule.step(
      ...     params, rule.init(key, params), opt_state, batch, key, opt)
    """
    refuse_stateful(model, 'ipc', _PC_NORM)
    steps, lr, mom = _check_inference(inference_steps, inference_lr, inference_momentum)
    if steps < 1:
        raise ValueError('ipc needs inference_steps >= 1 (weights move only during inference)')
    net = _Net(model, output_energy, beta, nudge)
    grad_both = jax.value_and_grad(net.energy, argnums=(0, 1), has_aux=True)

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, opt_state, batch, key, optimizer):
        batch = check_batch(model, batch, params)
        del key
        x0, y = batch['x'], batch['y']
        xs, mu_out, t, e_start, _, base = net.forward_init(params, x0, y)
        scale = 1.0 / (x0.shape[0] * net.beta)

        # The weights move by T small steps inside the batch: they are accumulated in float32
        # (`_state`; a no-op for float32 parameters), as the value nodes are, so that steps
        # below a bfloat16 parameter's resolution are not rounded away. Each step's energy
        # gradient is taken at those weights cast to the parameter dtype.
        to_param = lambda q: jax.tree.map(lambda a, b: a.astype(b.dtype), q, params)

        def moved(p32):
            """`base` at the weights `p32`: each narrow layer's base pre-activation plus the
            weight displacement's contribution `dW xb + db` (narrow matmul, own precision)."""
            if base is None:
                return None
            out = []
            for layer, b, q32, q in zip(net.layers, base, p32['layers'], params['layers']):
                if b is not None:
                    zb, xb = b
                    dq = jax.tree.map(lambda a, c: (a - _state(c)).astype(c.dtype), q32, q)
                    dz = jax.jvp(lambda r: layer.linear(r, xb), (q,), (dq,))[1]
                    b = (zb + _state(dz), xb)
                out.append(b)
            return tuple(out)

        def body(carry, _):
            p32, opt_state, xs, vs = carry
            p = to_param(p32)
            (_, parts), (gp, gx) = grad_both(p, xs, x0, t, None, moved(p32))
            gp = jax.tree.map(lambda g: _scaled(g, scale), gp)
            upd, opt_state = optimizer.update(gp, opt_state, p)
            p32 = jax.tree.map(lambda a, u: a + u.astype(a.dtype), p32, upd)
            xs, vs = _activity_step(xs, vs, gx, lr, mom)
            return (p32, opt_state, xs, vs), parts

        carry = (jax.tree.map(_state, params), opt_state, xs, jax.tree.map(jnp.zeros_like, xs))
        (p32, opt_state, xs, _), parts = jax.lax.scan(body, carry, None, length=steps)
        # 'energy_end' is the energy measured at the last step (before its updates): another
        # forward pass only for a metric would cost 1/3 of a step.
        metrics = _metrics(net, mu_out, y, e_start, parts[-1], x0.shape[0])
        return to_param(p32), state, opt_state, metrics

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    return OptimizerRule(init, step, predict)
