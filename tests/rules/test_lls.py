"""LLS against its definition.

* Every layer's update (and LLS-M's gains) is `jax.grad` of that layer's own local loss,
  written here from the definition: the layer on its stop-gradiented input, the output
  (a conv map average-pooled to p x p by PyTorch's adaptive rule, flattened channel-first)
  L2-normalised, projected on the fixed basis `sin(f_k j)`, cross-entropy at T = 0.5; the
  last layer by the cross-entropy of the logits (float32, relative 1e-5). On an MLP and on
  a CNN whose pooling bins overlap (6 -> 4 and 3 -> 2).
* A hidden layer's update reads nothing above it, and the labels only through its own
  loss, where they enter linearly: `CE(s / T, y) = logsumexp(s / T) - s_y / T`, so
  relabelling example i moves the update by the gradient of `(s_i[y] - s_i[y']) / (T B)`.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit import models
from neurokit.rules.lls import lls

T = 0.5


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _phi(k, d):
    # f_k = linspace(50, 512, K); the product f_k * j in float32, as the authors' torch code
    f = np.linspace(50, 512, k).astype(np.float32)
    return jnp.asarray(np.sin(np.outer(f, np.arange(d).astype(np.float32))))


def _bins(n, p):
    """PyTorch's adaptive pooling bins: [floor(i n / p), ceil((i + 1) n / p))."""
    return [(int(np.floor(i * n / p)), int(np.ceil((i + 1) * n / p))) for i in range(p)]


def _pool(h, p):
    """(B, H, W, C) -> (B, C * p * p), channel-first, by PyTorch's adaptive average pool."""
    rows = []
    for r0, r1 in _bins(h.shape[1], p):
        rows.append(jnp.stack([h[:, r0:r1, c0:c1].mean(axis=(1, 2))
                               for c0, c1 in _bins(h.shape[2], p)], axis=1))
    pooled = jnp.stack(rows, axis=1)  # (B, p, p, C)
    return jnp.transpose(pooled, (0, 3, 1, 2)).reshape(h.shape[0], -1)


def _local(out, y, p=None, m=None):
    z = out.reshape(out.shape[0], -1) if p is None else _pool(out, p)
    z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    s = z @ _phi(m.shape[0] if m is not None else 4, z.shape[1]).T
    if m is not None:
        s = m * s
    return -jnp.mean(jax.nn.log_softmax(s / T)[jnp.arange(y.shape[0]), y])


def _ce(logits, y):
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(y.shape[0]), y])


def _check(model, rule, params, batch, pools):
    """Each layer's update against the gradient of its own loss (`pools[l]`: p of a conv
    layer, None for dense)."""
    updates, _, _ = rule.step(params, rule.init(None, params), batch, None)
    x, y = batch['x'], batch['y']
    h, last = x, len(model.layers) - 1
    for l, (layer, p) in enumerate(zip(model.layers, params['layers'])):
        if l == last:
            loss = lambda q: _ce(layer(q, h), y)
        else:
            m = params['modulation'][l] if 'modulation' in params else None
            loss = lambda q, m=m, h=h, l=l: _local(layer(q, h), y, pools[l], m)
            if m is not None:
                gm = jax.grad(lambda m: _local(layer(p, h), y, pools[l], m))(m)
                assert _rel(updates['modulation'][l], gm) < 1e-5, ('m', l)
        want = jax.grad(loss)(p)
        for k in ('w', 'b'):
            err = _rel(updates['layers'][l][k], want[k])
            assert err < 1e-5, (l, k, err)
        h = layer(p, h)


def _batch(shape, n=16, seed=1):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return {'x': jax.random.normal(kx, (n,) + shape), 'y': jax.random.randint(ky, (n,), 0, 4)}


@pytest.mark.parametrize('modulation', ['none', 'learned'])
def test_mlp_updates_are_the_gradients_of_their_own_local_losses(modulation):
    model = models.mlp((12,), 4, hidden=(10, 8), activation='leaky_relu')
    rule = lls(model, modulation=modulation)
    key = jax.random.PRNGKey(0)
    params = rule.init_params(key, model.init(key))
    assert ('modulation' in params) == (modulation == 'learned')
    _check(model, rule, params, _batch((12,)), [None, None])


def test_cnn_updates_are_the_gradients_of_their_own_local_losses():
    # conv_0: 12x12 -> pool 2 -> 6x6, pooled to 4x4 (overlapping bins); conv_1: 6x6 -> 3x3,
    # pooled to 2x2; then a dense hidden layer and the output
    model = models.cnn((12, 12, 1), 4, channels=(3, 5), dense_widths=(6,))
    rule = lls(model)
    params = rule.init_params(jax.random.PRNGKey(0), model.init(jax.random.PRNGKey(0)))
    _check(model, rule, params, _batch((12, 12, 1)), [4, 2, None])


def test_a_hidden_update_reads_the_labels_through_its_own_loss_only():
    model = models.mlp((12,), 4, hidden=(10, 8), activation='leaky_relu')
    rule = lls(model)
    params = model.init(jax.random.PRNGKey(0))
    batch = _batch((12,))
    y, i = batch['y'], 3
    y2 = y.at[i].set((y[i] + 1) % 4)
    u, _, _ = rule.step(params, None, batch, None)
    v, _, _ = rule.step(params, None, {**batch, 'y': y2}, None)
    h = batch['x']
    for l in range(2):  # the hidden layers
        layer, p = model.layers[l], params['layers'][l]

        def label_term(q):
            out = layer(q, h[i:i + 1])
            z = out / jnp.linalg.norm(out)
            s = (z @ _phi(4, out.shape[1]).T)[0]
            return (s[y[i]] - s[y2[i]]) / (T * y.shape[0])

        want = jax.grad(label_term)(p)
        for k in ('w', 'b'):
            got = v['layers'][l][k] - u['layers'][l][k]
            np.testing.assert_allclose(got, want[k], rtol=1e-4, atol=1e-6)
        h = layer(p, h)
    # nothing above a hidden layer reaches it: scaling the layers above leaves it as it is
    scaled = {'layers': tuple(p if l == 0 else {**p, 'w': 2 * p['w']}
                              for l, p in enumerate(params['layers']))}
    w, _, _ = rule.step(scaled, None, batch, None)
    np.testing.assert_array_equal(w['layers'][0]['w'], u['layers'][0]['w'])
    assert not np.allclose(w['layers'][1]['w'], u['layers'][1]['w'])


def test_refusals_name_the_fix():
    mlp = models.mlp((16,), 4, hidden=(8,))
    with pytest.raises(ValueError, match='temperature must be a finite number > 0'):
        lls(mlp, temperature=0.0)
    with pytest.raises(ValueError, match="modulation must be one of \\('none', 'learned'\\)"):
        lls(mlp, modulation='mxm')
    with pytest.raises(ValueError, match='pool_size must be an integer >= 1'):
        lls(mlp, pool_size=0)
    rule = lls(mlp, modulation='learned')
    batch = {'x': jnp.zeros((2, 16)), 'y': jnp.zeros((2,), jnp.int32)}
    with pytest.raises(ValueError, match="no 'modulation'.*rule.init_params"):
        rule.step(mlp.init(jax.random.PRNGKey(0)), None, batch, None)
