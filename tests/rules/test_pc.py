"""Predictive coding: oracles against backprop and raw-JAX energies, and ipc's weight steps."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.precision import in_float32
from neurokit.rules.base import OptimizerRule
from neurokit.rules.bp import bp
from neurokit.rules.pc import ipc, pc

KEY = jax.random.PRNGKey(0)


def _setup(model=None, n=16):
    model = model or models.mlp((8, 8, 1), 10, (24, 20, 16), 'tanh')
    params = model.init(KEY)
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    batch = {'x': jax.random.uniform(kx, (n, 8, 8, 1)),
             'y': jax.random.randint(ky, (n,), 0, 10)}
    return model, params, batch


def _rel_err(a, b):
    num = sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    return float(jnp.sqrt(num / sum(jnp.sum(y ** 2) for y in jax.tree.leaves(b))))


def _step(rule, params, batch):
    return jax.jit(rule.step)(params, rule.init(KEY, params), batch, KEY)


# One case per output energy; the cross-entropy case runs on the cnn, so the conv layers'
# path is checked too (the output energy's code is the same for either model).
@pytest.mark.parametrize('energy,loss,kind', [('gaussian', 'mse', 'mlp'),
                                              ('cross_entropy', 'cross_entropy', 'cnn')])
def test_fixed_prediction_equals_backprop(energy, loss, kind):
    # Z-IL (Song et al. 2020): fixed predictions, T = number of layers, step 1 -> BP exactly.
    model = (models.mlp((8, 8, 1), 10, (24, 20, 16), 'gelu') if kind == 'mlp' else
             models.cnn((8, 8, 1), 10, (4,), dense_widths=(12,), activation='tanh'))
    model, params, batch = _setup(model)
    rule = pc(model, inference_steps=len(model.layers), inference_lr=1.0, output_energy=energy,
              fixed_prediction=True)
    g_pc = _step(rule, params, batch)[0]
    g_bp = jax.grad(lambda p: {'mse': _mse, 'cross_entropy': _ce}[loss](model, p, batch))(params)
    assert _rel_err(g_pc, g_bp) <= 1e-5


def _mse(model, p, batch):
    out = model.apply(p, batch['x'])[0]
    return 0.5 * jnp.mean(jnp.sum((out - jax.nn.one_hot(batch['y'], 10)) ** 2, -1))


def _ce(model, p, batch):
    out = model.apply(p, batch['x'])[0]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, batch['y']))


def test_fixed_prediction_needs_enough_steps():
    # With fewer than L-1 steps the error has not reached the first layer: its update is zero.
    model, params, batch = _setup()
    g = _step(pc(model, inference_steps=1, inference_lr=1.0, fixed_prediction=True),
              params, batch)[0]
    assert float(jnp.abs(g['layers'][0]['w']).max()) == 0.0
    assert float(jnp.abs(g['layers'][-2]['w']).max()) > 0.0


@pytest.mark.parametrize('energy', ['gaussian', 'cross_entropy'])
def test_weak_nudging_approaches_backprop(energy):
    # Equilibrium with the output energy scaled by beta: updates/beta -> BP's gradient as beta -> 0.
    model, params, batch = _setup()
    loss = _mse if energy == 'gaussian' else _ce
    g_bp = jax.grad(lambda p: loss(model, p, batch))(params)
    # Both betas in one compiled program: beta may be traced (test_beta_can_be_traced).
    rule = lambda beta: pc(model, inference_steps=120, inference_lr=0.25, output_energy=energy,
                           beta=beta, nudge='energy')
    betas = (0.1, 0.01)
    g = jax.jit(jax.vmap(lambda b: rule(b).step(params, rule(b).init(KEY, params), batch,
                                                  KEY)[0]))(jnp.asarray(betas))
    errs = [_rel_err(jax.tree.map(lambda a: a[i], g), g_bp) for i in range(len(betas))]
    # The error is O(beta): a tenfold smaller beta cuts it by well over half.
    assert errs[1] < 0.4 * errs[0]
    assert errs[1] < 0.06


def test_no_inference_trains_only_the_output_layer():
    # T = 0: every hidden error is zero at the forward initialisation, the output layer gets
    # BP's gradient (for the Gaussian energy: mse).
    model, params, batch = _setup()
    g = _step(pc(model, inference_steps=0), params, batch)[0]
    g_bp = jax.grad(lambda p: _mse(model, p, batch))(params)
    for i in range(len(model.layers) - 1):
        assert float(jnp.abs(g['layers'][i]['w']).max()) == 0.0
    np.testing.assert_allclose(g['layers'][-1]['w'], g_bp['layers'][-1]['w'], rtol=1e-5, atol=1e-7)


def _raw_energy(model, params, xs, x0, y):
    """The energy written out by hand: Gaussian at every node, one-hot target at the output."""
    pre = [x0] + list(xs)
    e = 0.0
    for i, layer in enumerate(model.layers):
        mu = layer(params['layers'][i], pre[i])
        target = xs[i] if i < len(xs) else jax.nn.one_hot(y, 10)
        e += 0.5 * jnp.sum((target - mu) ** 2)
    return e


def test_inference_is_gradient_descent_on_the_energy():
    # Two SGD steps on the hidden nodes from the forward pass, and dE/dW / B at the end, by hand.
    model, params, batch = _setup()
    lr, x0, y = 0.2, batch['x'], batch['y']
    _, acts = model.apply(params, x0)
    xs = list(acts[:-1])
    for _ in range(2):
        g = jax.grad(lambda xs_: _raw_energy(model, params, xs_, x0, y))(xs)
        xs = [x - lr * gi for x, gi in zip(xs, g)]
    g_ref = jax.grad(lambda p: _raw_energy(model, p, xs, x0, y))(params)
    g_ref = jax.tree.map(lambda a: a / x0.shape[0], g_ref)
    g_pc, _, metrics = _step(pc(model, inference_steps=2, inference_lr=lr), params, batch)
    assert _rel_err(g_pc, g_ref) < 1e-5
    e_end = float(_raw_energy(model, params, xs, x0, y)) / x0.shape[0]
    np.testing.assert_allclose(float(metrics['energy_end']), e_end, rtol=1e-5)
    assert float(metrics['energy_start']) > float(metrics['energy_end'])
    parts = sum(float(metrics[f'energy_{i}']) for i in range(len(model.layers)))
    np.testing.assert_allclose(parts, e_end, rtol=1e-5)


def test_momentum_matches_optax_sgd():
    # inference_momentum follows optax.sgd(lr, momentum): v = m v + g; x -= lr v.
    model, params, batch = _setup()
    lr, m, x0, y = 0.1, 0.5, batch['x'], batch['y']
    xs = list(model.apply(params, x0)[1][:-1])
    opt = optax.sgd(lr, momentum=m)
    st = opt.init(xs)
    for _ in range(3):
        g = jax.grad(lambda xs_: _raw_energy(model, params, xs_, x0, y))(xs)
        u, st = opt.update(g, st)
        xs = optax.apply_updates(xs, u)
    g_ref = jax.tree.map(lambda a: a / x0.shape[0],
                         jax.grad(lambda p: _raw_energy(model, p, xs, x0, y))(params))
    g_pc = _step(pc(model, inference_steps=3, inference_lr=lr, inference_momentum=m),
                 params, batch)[0]
    assert _rel_err(g_pc, g_ref) < 1e-5


def test_pcx_target_nudge_sets_output_node():
    # PCX: output node u - beta (u - y), weight gradients divided by beta. With T=0 only the
    # output layer learns, from e_L = beta (y - u): the update equals the beta=1 update.
    model, params, batch = _setup()
    g1 = _step(pc(model, inference_steps=0, beta=1.0), params, batch)[0]
    g2 = _step(pc(model, inference_steps=0, beta=0.3, nudge='target'), params, batch)[0]
    assert _rel_err(g2, g1) < 1e-5


def _ipc_step(rule, opt, params, batch):
    """One ipc step with the optimizer `opt` from a fresh optimizer state."""
    step = jax.jit(rule.step, static_argnums=5)
    return step(params, rule.init(KEY, params), rule.init_opt_state(opt, params), batch, KEY, opt)


def test_ipc_takes_T_steps_of_the_training_optimizer():
    # ipc with optax.sgd(lr): every inference step moves the weights by -lr * dE/dW / B, from
    # the same energy gradient (taken at the current nodes and weights) as the activity step.
    model, params, batch = _setup()
    lr_w, lr_x, T, x0, y = 0.05, 0.1, 3, batch['x'], batch['y']
    rule = ipc(model, inference_steps=T, inference_lr=lr_x)
    assert isinstance(rule, OptimizerRule)
    p, xs = params, list(model.apply(params, x0)[1][:-1])
    for _ in range(T):
        gp, gx = jax.grad(lambda p_, xs_: _raw_energy(model, p_, xs_, x0, y), (0, 1))(p, xs)
        p = jax.tree.map(lambda a, g: a - lr_w * g / x0.shape[0], p, gp)
        xs = [x - lr_x * g for x, g in zip(xs, gx)]
    opt = optax.sgd(lr_w)
    new, _, opt_state, _ = _ipc_step(rule, opt, params, batch)
    moved = jax.tree.map(lambda a, b: a - b, new, params)
    assert _rel_err(moved, jax.tree.map(lambda a, b: a - b, p, params)) < 1e-4
    assert jax.tree.structure(opt_state) == jax.tree.structure(opt.init(params))


def test_ipc_steps_the_optimizer_T_times_per_batch():
    # The optimizer's own step count (Adam's bias correction, a schedule's position) counts
    # weight steps: T per batch, carried from one batch to the next in the train state.
    model, _, batch = _setup()
    rule, opt = ipc(model, inference_steps=4), optax.adam(1e-3)
    state = train.init_state(KEY, model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for _ in range(2):
        state, _ = step(state, batch)
    counts = [int(c) for c in jax.tree.leaves(state.opt_state) if jnp.ndim(c) == 0]
    assert counts and all(c == 8 for c in counts)


def test_bad_settings_raise():
    model = _setup()[0]
    with pytest.raises(ValueError, match='output_energy'):
        pc(model, output_energy='poisson')
    with pytest.raises(ValueError, match='beta'):
        pc(model, beta=0.0)
    with pytest.raises(ValueError, match='nudge'):
        pc(model, nudge='sideways')
    with pytest.raises(ValueError, match='inference_steps'):
        ipc(model, inference_steps=0)


def test_bp_twin_shape_matches():
    # The updates of pc and bp have the same tree (the outer optimizer treats them alike).
    # Tree structure only: traced abstractly (eval_shape), not compiled.
    model, params, batch = _setup()
    rule = pc(model)
    g_pc = jax.eval_shape(rule.step, params, rule.init(KEY, params), batch, KEY)[0]
    g_bp = jax.eval_shape(bp(model).step, params, None, batch, KEY)[0]
    assert jax.tree.structure(g_pc) == jax.tree.structure(g_bp)


def test_fixed_prediction_returns_updates_state_metrics():
    model, params, batch = _setup()
    rule = pc(model, inference_steps=3, inference_lr=1.0, fixed_prediction=True)
    _, state, metrics = _step(rule, params, batch)
    assert state == rule.init(KEY, params)
    assert 'loss' in metrics and 'energy_end' in metrics


# Mixed precision. Reference: the float32 rule on the bfloat16-rounded parameters. The contract
# is that bfloat16 parameters cost PC no more precision than they cost backprop: bf16 matmuls
# round every activation and gradient to 8 bits, which moves BP's gradient by ~2^-8 relative
# (measured below on the same net and batch, ~0.003); the rule's update map is just as well
# conditioned (perturbing the float32 parameters by 2^-9 moves its updates by ~0.005), so a
# correct mixed-precision rule lands within a small multiple of BP's error. 5x leaves room for
# T=40 steps of rounding while failing the float32-state-less rule, whose errors reached
# 0.16-0.65 here (the prediction errors `x - mu` cancelled in bfloat16).

@functools.lru_cache(maxsize=None)
def _bf16_setup():
    # Cached: the nets, the batch and BP's bfloat16 error are the same for every case.
    model32 = models.mlp((8, 8, 1), 10, (64, 64, 64), 'tanh')
    model16 = models.mlp((8, 8, 1), 10, (64, 64, 64), 'tanh', dtype=jnp.bfloat16)
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), model32.init(KEY))
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p16)
    batch = _setup(n=32)[2]
    g32 = jax.grad(lambda p: _mse(model32, p, batch))(p32)
    g16 = jax.grad(lambda p: _mse(model16, p, batch))(p16)
    bp_err = max(_rel_err(a, b) for a, b in zip(g16['layers'], g32['layers']))
    assert 0 < bp_err < 0.02
    return model32, model16, p32, p16, batch, 5 * bp_err


def _check_bf16(make, kw):
    model32, model16, p32, p16, batch, bound = _bf16_setup()
    u32 = _step(make(model32, **kw), p32, batch)[0]
    u16 = _step(make(model16, **kw), p16, batch)[0]
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(u16))
    errs = [_rel_err(jax.tree.map(lambda a: a.astype(jnp.float32), a), b)
            for a, b in zip(u16['layers'], u32['layers'])]
    assert max(errs) < bound, (errs, bound)


# pc's defaults (beta=1, nudge='target') take the code path of the nudge='target' case.
@pytest.mark.parametrize('kw', [dict(beta=0.1, nudge='energy', inference_steps=40, inference_lr=0.2),
                                dict(beta=0.1, nudge='target', inference_steps=40, inference_lr=0.2),
                                dict(fixed_prediction=True, inference_steps=4, inference_lr=1.0)])
def test_pc_bfloat16_updates_match_float32(kw):
    _check_bf16(pc, kw)


def _summing_sgd(lr):
    """optax.sgd(lr) whose state is the sum of its updates in float32: ipc's total weight
    displacement of a batch, before the parameters' rounding to their dtype hides it."""
    def init(params):
        return jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), params)

    def update(grads, total, params=None):
        del params
        updates = jax.tree.map(lambda g: -lr * g, grads)
        return updates, jax.tree.map(lambda t, u: t + u.astype(jnp.float32), total, updates)

    return optax.GradientTransformation(init, update)


# ipc with SGD: AdamW normalises each coordinate's gradient, so coordinates whose gradient
# is near zero get O(lr) steps of arbitrary sign and the update map itself is ill-conditioned
# (2^-9 parameter noise moves float32 ipc-adamw updates by ~10%); SGD's is as well
# conditioned as pc's. ipc's defaults (beta=1, nudge='target') take this case's code path.
@pytest.mark.parametrize('kw', [dict(beta=0.1, nudge='target', inference_steps=40, inference_lr=0.2,
                                     sgd_lr=0.01)])
def test_ipc_bfloat16_weight_steps_match_float32(kw):
    kw = dict(kw)
    opt = _summing_sgd(kw.pop('sgd_lr'))
    model32, model16, p32, p16, batch, bound = _bf16_setup()
    new16, _, moved16, _ = _ipc_step(ipc(model16, **kw), opt, p16, batch)
    _, _, moved32, _ = _ipc_step(ipc(model32, **kw), opt, p32, batch)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(new16))
    errs = [_rel_err(a, b) for a, b in zip(moved16['layers'], moved32['layers'])]
    assert max(errs) < bound, (errs, bound)


@pytest.mark.parametrize('make,kw', [(pc, dict(nudge='target')), (pc, dict(nudge='energy')),
                                     (pc, dict(fixed_prediction=True)), (ipc, {})])
def test_beta_can_be_traced(make, kw):
    # A sweep varies beta inside one program: the rule is built from a traced beta.
    model, params, batch = _setup()
    opt = optax.sgd(0.05)

    def updates(beta):
        rule = make(model, beta=beta, **kw)
        if isinstance(rule, OptimizerRule):  # ipc: the weights after its steps
            return rule.step(params, rule.init(KEY, params), rule.init_opt_state(opt, params),
                             batch, KEY, opt)[0]
        return rule.step(params, rule.init(KEY, params), batch, KEY)[0]

    traced = jax.jit(jax.vmap(updates))(jnp.asarray([1.0, 0.3]))
    for i, beta in enumerate((1.0, 0.3)):
        rule = make(model, beta=beta, **kw)
        ref = (_ipc_step(rule, opt, params, batch) if isinstance(rule, OptimizerRule) else
               _step(rule, params, batch))[0]
        assert _rel_err(jax.tree.map(lambda a: a[i], traced), ref) < 1e-5


def test_ipc_with_float16_weights_needs_a_float32_optimizer_state_and_stays_finite():
    # With float16 weights, AdamW's eps (1e-8) and the squares of small gradients are 0 in
    # float16, and its first step is 0/0 = NaN: ipc, like every rule, is refused a float16
    # optimizer state, and with in_float32 (what optim.build gives float16 models) the
    # weights move and stay finite.
    model = models.mlp((12,), 5, (16, 16), dtype='float16')
    rule = ipc(model, inference_steps=4)
    k = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match='in_float32'):
        train.init_state(k, model, rule, optax.adamw(1e-2))
    opt = in_float32(optax.adamw(1e-2))
    state = train.init_state(k, model, rule, opt)
    batch = {'x': jax.random.normal(k, (8, 12)), 'y': jnp.arange(8) % 5}
    new, _ = jax.jit(train.make_train_step(rule, opt))(state, batch)
    for a in jax.tree.leaves(new.params):
        assert a.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(a, np.float32)))
    assert any(np.any(np.asarray(a) != np.asarray(b))
               for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)))
