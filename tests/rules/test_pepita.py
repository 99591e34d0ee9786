"""PEPITA and FOTON against their closed forms.

* FOTON on a linear network with orthonormal weights is backprop: `h_l - h'_l` is
  backprop's error at layer l (the card's algebra), so every layer's update equals
  `jax.grad` of the cross-entropy (float32, relative 1e-5).
* PEPITA's 'forward' variant on one layer is the delta rule `e^T x / B`, backprop's
  cross-entropy gradient; every variant's hidden update is the outer product its formula
  names, computed here by hand from the two passes.
* Björck's projection returns (semi-)orthogonal matrices, and FOTON's training step keeps
  its weights so.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.rules import registry
from neurokit.rules.bp import bp
from neurokit.rules.pepita import bjorck, foton, pepita


def _batch(d0=16, k=4, n=32, seed=1):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return {'x': jax.random.normal(kx, (n, d0)), 'y': jax.random.randint(ky, (n,), 0, k)}


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def test_foton_on_a_linear_orthonormal_net_is_backprop():
    # 16 -> 12 -> 8 -> 4: every weight has orthonormal columns (W_l W_l^T = I in the
    # math layout), which FOTON's own init (Björck) gives
    model = models.mlp((16,), 4, hidden=(12, 8), activation='identity')
    rule = foton(model)
    key = jax.random.PRNGKey(0)
    params = rule.init_params(key, model.init(key))
    for p in params['layers']:
        np.testing.assert_allclose(p['w'].T @ p['w'], jnp.eye(p['w'].shape[1]), atol=1e-5)
    batch = _batch()
    updates, _, _ = rule.step(params, rule.init(key, params), batch, key)
    grads, _, _ = bp(model).step(params, None, batch, key)
    for l, (u, g) in enumerate(zip(updates['layers'], grads['layers'])):
        for k in ('w', 'b'):
            assert _rel(u[k], g[k]) < 1e-5, (l, k, _rel(u[k], g[k]))


def test_foton_with_a_nonlinearity_is_not_backprop():
    # the oracle's premise matters: with ReLU the activity difference is not the error
    model = models.mlp((16,), 4, hidden=(12, 8), activation='relu')
    rule = foton(model)
    key = jax.random.PRNGKey(0)
    params = rule.init_params(key, model.init(key))
    batch = _batch()
    updates, _, _ = rule.step(params, rule.init(key, params), batch, key)
    grads, _, _ = bp(model).step(params, None, batch, key)
    assert _rel(updates['layers'][0]['w'], grads['layers'][0]['w']) > 1e-3


def test_pepita_forward_variant_on_one_layer_is_the_delta_rule():
    model = models.mlp((16,), 4, hidden=())
    rule = pepita(model, variant='forward')
    key = jax.random.PRNGKey(0)
    params = model.init(key)
    batch = _batch()
    updates, _, _ = rule.step(params, rule.init(key, params), batch, key)
    x, y = batch['x'], batch['y']
    e = jax.nn.softmax(x @ params['layers'][0]['w'] + params['layers'][0]['b']) - \
        jax.nn.one_hot(y, 4)
    np.testing.assert_allclose(updates['layers'][0]['w'], x.T @ e / 32, rtol=1e-5, atol=1e-7)
    grads, _, _ = bp(model).step(params, None, batch, key)
    assert _rel(updates['layers'][0]['w'], grads['layers'][0]['w']) < 1e-5


@pytest.mark.parametrize('variant', ['modulated', 'forward', 'mixed'])
def test_pepita_updates_are_the_outer_products_of_the_two_passes(variant):
    model = models.mlp((16,), 4, hidden=(12,), activation='relu')
    rule = pepita(model, variant=variant)
    key = jax.random.PRNGKey(3)
    params = model.init(key)
    state = rule.init(key, params)
    batch = _batch()
    updates, _, _ = rule.step(params, state, batch, key)
    (w1, b1), (w2, b2) = [(p['w'], p['b']) for p in params['layers']]
    x, t = batch['x'], jax.nn.one_hot(batch['y'], 4)
    h1 = jax.nn.relu(x @ w1 + b1)
    y = jax.nn.softmax(h1 @ w2 + b2)
    xm = x + (y - t) @ state.feedback.T
    h1m = jax.nn.relu(xm @ w1 + b1)
    ym = jax.nn.softmax(h1m @ w2 + b2)
    n = 32
    if variant == 'modulated':
        dw1, dw2 = xm.T @ (h1 - h1m) / n, h1m.T @ (ym - t) / n
    elif variant == 'forward':
        dw1, dw2 = x.T @ (h1 - h1m) / n, h1.T @ (y - t) / n
    else:
        dw1 = (x.T @ h1 - xm.T @ h1m) / n
        dw2 = (h1.T @ y - h1m.T @ t) / n
    np.testing.assert_allclose(updates['layers'][0]['w'], dw1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(updates['layers'][1]['w'], dw2, rtol=1e-4, atol=1e-6)
    # F: the ICML scale, 0.05 * U(-sqrt(6/d0), sqrt(6/d0))
    assert float(jnp.max(jnp.abs(state.feedback))) <= 0.05 * np.sqrt(6 / 16)


@pytest.mark.parametrize('shape', [(12, 8), (8, 12), (10, 10)])
def test_bjorck_gives_semi_orthogonal_matrices(shape):
    w = jax.random.normal(jax.random.PRNGKey(0), shape)
    q = bjorck(w, iterations=30)
    small = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    np.testing.assert_allclose(gram, jnp.eye(small), atol=1e-4)
    # the nearest such matrix: the polar factor U V^T of w's SVD
    u, _, vt = jnp.linalg.svd(w, full_matrices=False)
    np.testing.assert_allclose(q, u @ vt, atol=1e-3)


def test_foton_training_keeps_the_weights_orthonormal():
    model = models.mlp((16,), 4, hidden=(12, 8))
    rule, opt = foton(model), optax.sgd(0.5)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for i in range(3):
        state, metrics = step(state, _batch(seed=i))
    for p in state.params['layers']:
        np.testing.assert_allclose(p['w'].T @ p['w'], jnp.eye(p['w'].shape[1]), atol=1e-4)
    assert registry.capabilities('foton').layers == ('dense',)


def test_refusals_name_the_fix():
    cnn = models.cnn((8, 8, 1), 10, channels=(4,), dense_widths=(8,))
    with pytest.raises(ValueError, match="dense layers only.*config.model.name='mlp'"):
        pepita(cnn)
    with pytest.raises(ValueError, match='variant must be one of'):
        pepita(models.mlp((16,), 4), variant='hebbian')
    with pytest.raises(ValueError, match='refresh_every'):
        foton(models.mlp((16,), 4), refresh_every=0)


def test_foton_projects_every_k_steps():
    model = models.mlp((16,), 4, hidden=(12, 8))
    rule, opt = foton(model, project_every=2), optax.sgd(0.5)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))

    def off_orthonormal(s):
        return max(float(jnp.max(jnp.abs(p['w'].T @ p['w'] - jnp.eye(p['w'].shape[1]))))
                   for p in s.params['layers'])

    state, _ = step(state, _batch(seed=0))
    assert off_orthonormal(state) > 1e-3  # step 1: not projected
    state, _ = step(state, _batch(seed=1))
    assert off_orthonormal(state) < 1e-4  # step 2: projected
