"""models.block_gains against closed forms: a dense layer's gain is its weight matrix's top
singular value (over the active units for ReLU, per example), a LayerNorm's is
1/sqrt(var + eps) of its input."""
import flax.linen as nn
import jax
import numpy as np

from neurokit.models import block_gains, from_flax, mlp, zoo

KEY = jax.random.PRNGKey(0)


def _kernels(params):
    return [np.asarray(p['w']) for p in params['layers']]


def test_linear_mlp_gains_are_the_kernels_top_singular_values():
    model = mlp((12,), 5, hidden=(9, 7), activation='identity')
    params = model.init(KEY)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 12))
    want = [np.linalg.svd(w, compute_uv=False)[0] for w in _kernels(params)]
    np.testing.assert_allclose(block_gains(model, params, x, KEY, iters=200), want, rtol=1e-4)


def test_relu_gain_is_the_largest_over_examples_of_the_active_columns():
    model = mlp((10,), 3, hidden=(8,), activation='relu')
    params = model.init(KEY)
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 10))
    w0, b0 = np.asarray(params['layers'][0]['w']), np.asarray(params['layers'][0]['b'])
    active = (np.asarray(x) @ w0 + b0) > 0
    want = max(np.linalg.svd(w0[:, a], compute_uv=False)[0] if a.any() else 0.0
               for a in active)
    got = block_gains(model, params, x, KEY, iters=300)
    np.testing.assert_allclose(got[0], want, rtol=1e-4)


def test_layernorm_gain_is_one_over_the_spread_of_its_narrowest_token():
    # per token, LayerNorm's Jacobian is (I - 11^T/d - z z^T/d) / sqrt(var + eps): singular
    # value 1/sqrt(var + eps) off the span of 1 and z
    eps = 1e-6
    model = from_flax([nn.LayerNorm(epsilon=eps), zoo.TokenHead(3, 'mean')], (4, 16), 3)
    params = model.init(KEY)
    z = jax.random.normal(jax.random.PRNGKey(3), (2, 4, 16))
    for spread in (1.0, 0.02):
        x = z.at[0, 2].multiply(spread)  # one token of one example
        want = max(1 / np.sqrt(np.var(t) + eps) for t in np.asarray(x).reshape(8, 16))
        got = block_gains(model, params, x, KEY, iters=200)
        np.testing.assert_allclose(got[0], want, rtol=1e-4)
    assert got[0] > 20  # the narrow token sets the gain
