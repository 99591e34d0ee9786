"""Equilibrium propagation against the implicit-function gradient.

At the free phase's fixed point s*(θ), `∂E/∂s = 0`, so the loss `C(s*(θ))` has the gradient
`-∂/∂θ [∂E/∂s(θ, s*) · v]` with `H v = ∂C/∂s` (H the energy's Hessian in the states),
computed here with a dense Hessian of a small network. EP's symmetric update tends to it
with an error of order β² (log-log slope 2), the one-sided update with order β (slope 1).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from neurokit import models
from neurokit.rules.ep import cost, ep, energy

RELAX = dict(free_steps=300, nudged_steps=300, step_size=0.5)


def _setup():
    model = models.mlp((6,), 3, hidden=(5,))
    params = model.init(jax.random.PRNGKey(0))
    params = jax.tree.map(lambda a: 2.0 * a, params)  # stronger coupling than at init
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    batch = {'x': jax.random.normal(kx, (4, 6)), 'y': jax.random.randint(ky, (4,), 0, 3)}
    return model, params, batch


def _implicit_gradient(model, params, batch):
    rho = jax.nn.sigmoid
    x, y = batch['x'], batch['y']
    rule = ep(model, activation='sigmoid', **RELAX)
    s_star = tuple(jax.lax.stop_gradient(s) for s in
                   _free_states(rule, params, x))
    flat, unravel = ravel_pytree(s_star)

    def e_total(p, f):
        return jnp.sum(energy(p, unravel(f), x, rho))

    def c_mean(f):
        return jnp.mean(cost(unravel(f), y, 3))

    grad_s = jax.grad(e_total, argnums=1)
    assert float(jnp.max(jnp.abs(grad_s(params, flat)))) < 1e-5  # a fixed point
    h = jax.hessian(e_total, argnums=1)(params, flat)
    v = jnp.linalg.solve(h, jax.grad(c_mean)(flat))
    return jax.grad(lambda p: -jnp.vdot(grad_s(p, flat), v))(params)


def _free_states(rule, params, x):
    # the free phase written again here (a feedforward start, then the relaxation);
    # predict, which runs the rule's own, must read the same output states
    rho = jax.nn.sigmoid
    states, below = [], x
    for p in params['layers']:
        states.append(below @ p['w'] + p['b'])
        below = rho(states[-1])
    states = tuple(states)

    def one(s, _):
        g = jax.grad(lambda t: jnp.sum(energy(params, t, x, rho)))(s)
        return jax.tree.map(lambda a, b: a - RELAX['step_size'] * b, s, g), None

    states = jax.lax.scan(one, states, None, length=RELAX['free_steps'])[0]
    np.testing.assert_allclose(states[-1], rule.predict(params, None, x), atol=1e-6)
    return states


def _flat(tree):
    return jnp.concatenate([a.ravel() for a in jax.tree.leaves(tree)])


def _errors(symmetric, betas):
    model, params, batch = _setup()
    reference = _flat(_implicit_gradient(model, params, batch))
    out = []
    for beta in betas:
        u = ep(model, beta=beta, symmetric=symmetric, activation='sigmoid', **RELAX).step(params, None, batch, None)[0]
        out.append(float(jnp.linalg.norm(_flat(u) - reference) / jnp.linalg.norm(reference)))
    return out


def test_symmetric_nudge_tends_to_the_gradient_like_beta_squared():
    betas = (0.2, 0.1, 0.05)
    errors = _errors(True, betas)
    slope = np.polyfit(np.log(betas), np.log(errors), 1)[0]
    assert errors[-1] < 5e-3 and 1.7 < slope < 2.3, (errors, slope)


def test_one_sided_nudge_is_first_order():
    betas = (0.4, 0.2, 0.1)
    errors = _errors(False, betas)
    slope = np.polyfit(np.log(betas), np.log(errors), 1)[0]
    assert 0.8 < slope < 1.2, (errors, slope)


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match="dense layers only.*config.model.name='mlp'"):
        ep(models.cnn((8, 8, 1), 10, channels=(4,), dense_widths=(8,)))
    with pytest.raises(ValueError, match='step_size'):
        ep(models.mlp((6,), 3), step_size=1.5)
    with pytest.raises(ValueError, match='free_steps'):
        ep(models.mlp((6,), 3), free_steps=0)
