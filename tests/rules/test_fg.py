"""Forward gradient with local losses against the local losses' exact gradients.

The oracle is written here, independently of the rule: Ren et al.'s modular loss, the sum
of every block's local loss over a forward pass with a stop-gradient between blocks,
differentiated by `jax.grad`. Each parameter then receives the gradient of exactly its
own local loss (hidden layer l and head l: CE of head l on layer l's output; the last
layer: the model's CE).

* The heads and the last layer are trained with that gradient itself (rel 1e-5).
* Each hidden layer's forward-gradient estimate is unbiased, E[(g.v) v] = E[v v^T] g = g
  for v ~ N(0, I): averaged over many keys its mean lies within a few standard errors of
  the oracle, and the error of the mean of M tangents falls as 1/sqrt(M)
  (E|g_M - g|^2 = tr(Cov)/M: log-log slope -1/2), for both estimators, on an MLP and a CNN.
* FG-W's error has a closed form, E|(g.v) v - g|^2 = (d + 1)|g|^2 (Gaussian moments:
  E[(g.v)^2 v v^T] = |g|^2 I + 2 g g^T), so E|g_M - g|^2 / |g|^2 = (d + 1) / M.
* With given tangents the estimates are the formulas: FG-W (g.v) v; FG-A the local
  weight gradient of ONE linear map at each example's own (dl_n/dz_n . u_n) u_n, masked
  by relu'(z) and divided by B.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit import models
from neurokit.rules import registry
from neurokit.rules.fg import activity_estimate, fg, local_gradients, weight_estimate

PERTURBS = ('activity', 'weight')


def _batch(shape=(16,), k=4, n=32, seed=1):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return {'x': jax.random.normal(kx, (n,) + shape), 'y': jax.random.randint(ky, (n,), 0, k)}


def _mlp():
    return models.mlp((16,), 4, hidden=(12, 8))


def _cnn():
    return models.cnn((6, 6, 1), 4, channels=(3,), dense_widths=(5,))


def _setup(model, shape, **kw):
    rule = fg(model, **kw)
    key = jax.random.PRNGKey(0)
    params = rule.init_params(key, model.init(key))
    return rule, params, _batch(shape)


def _ce(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def _modular_loss(params, model, x, y):
    """Sum of the local losses with a stop-gradient between blocks (conv outputs averaged
    over space before their head)."""
    total, a, last = 0.0, x, len(model.layers) - 1
    for l, (layer, p) in enumerate(zip(model.layers, params['layers'])):
        a = layer(p, jax.lax.stop_gradient(a))
        if l < last:
            f = a.mean(axis=tuple(range(1, a.ndim - 1))) if a.ndim > 2 else a
            total = total + _ce(f @ params['heads'][l]['w'] + params['heads'][l]['b'], y)
        else:
            total = total + _ce(a, y)
    return total


def _oracle(model, params, batch):
    return jax.grad(_modular_loss)(params, model, batch['x'], batch['y'])


def _hidden(tree):
    """The hidden layers' entries of a params-like tree, as one vector (the estimated part)."""
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(tree['layers'][:-1])])


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _updates_over_keys(rule, params, batch, keys):
    """The rule's updates for each key (vmapped): a tree with a leading axis of keys."""
    state = rule.init(jax.random.PRNGKey(0), params)
    return jax.jit(jax.vmap(lambda k: rule.step(params, state, batch, k)[0]))(keys)


@pytest.mark.parametrize('perturb', PERTURBS)
def test_heads_and_last_layer_get_their_exact_local_gradients(perturb):
    model = _mlp()
    rule, params, batch = _setup(model, (16,), perturb=perturb)
    updates, _, metrics = jax.jit(rule.step)(params, rule.init(None, params), batch,
                                             jax.random.PRNGKey(5))
    exact = _oracle(model, params, batch)
    for u, g in zip(jax.tree.leaves(updates['heads']) + jax.tree.leaves(updates['layers'][-1]),
                    jax.tree.leaves(exact['heads']) + jax.tree.leaves(exact['layers'][-1])):
        assert _rel(u, g) < 1e-5
    # local_gradients is the whole oracle, hidden layers included
    for a, b in zip(jax.tree.leaves(local_gradients(model, params, batch)), jax.tree.leaves(exact)):
        assert _rel(a, b) < 1e-5
    logits = model.apply(params, batch['x'])[0]
    np.testing.assert_allclose(metrics['loss'], _ce(logits, batch['y']), rtol=1e-6)
    np.testing.assert_allclose(rule.predict(params, None, batch['x']), logits)


# each estimator on each kind of layer at least once (the cross product adds compile time,
# not coverage: the estimators do not depend on the layer kind beyond its linear map)
@pytest.mark.parametrize('net, perturb', [('mlp', 'activity'), ('mlp', 'weight'),
                                          ('cnn', 'activity')])
def test_the_mean_over_keys_is_the_local_gradient(net, perturb):
    # E[(g.v) v] = g: the mean of N single-tangent estimates (one key each) is within a few
    # standard errors of the oracle. The squared error of the mean is tr(Cov)/N on average
    # (Cov estimated from the same draws); 9x that is a 3-sigma bound even if the error
    # lay along one direction (P(chi2_1 > 9) = 0.3%). And the test can tell: |g| is many
    # standard errors (>= 4) away from 0, so an estimator with a bias of that size would fail.
    model, shape = (_mlp(), (16,)) if net == 'mlp' else (_cnn(), (6, 6, 1))
    rule, params, batch = _setup(model, shape, perturb=perturb)
    n = 4096 if perturb == 'weight' else 1024  # FG-W's variance is ~(d + 1)|g|^2: more keys
    draws = jax.vmap(_hidden)(_updates_over_keys(rule, params, batch,
                                                 jax.random.split(jax.random.PRNGKey(7), n)))
    g = _hidden(_oracle(model, params, batch))
    mean = draws.mean(0)
    variance_of_mean = float(jnp.sum(jnp.var(draws, axis=0))) / n
    err2 = float(jnp.sum((mean - g) ** 2))
    assert err2 < 9 * variance_of_mean, (err2, variance_of_mean)
    assert float(jnp.sum(g ** 2)) > 16 * variance_of_mean
    assert len({tuple(np.asarray(d[:3])) for d in draws[:8]}) == 8  # the keys draw anew


@pytest.mark.parametrize('net, perturb', [('mlp', 'activity'), ('cnn', 'weight')])
def test_error_falls_as_one_over_sqrt_m(net, perturb):
    # For the mean of M independent tangents E|g_M - g|^2 = tr(Cov)/M, so the RMS relative
    # error over keys has log-log slope -1/2 in M. Each RMS is over K = 32 keys: even for
    # an error along one direction (chi2 with K dof) log RMS has a std <= sqrt(2/K)/2 =
    # 0.125, and over ln M = ln 2 ... ln 128 (sum of squared deviations 9.6) the fitted
    # slope has a std <= 0.125/sqrt(9.6) = 0.04: a tolerance of 0.1 is 2.5 of those at
    # worst (the error is spread over many coordinates, so far less in fact).
    model, shape = (_mlp(), (16,)) if net == 'mlp' else (_cnn(), (6, 6, 1))
    ms, k = (2, 8, 32, 128), 32
    _, params, batch = _setup(model, shape)
    g = _hidden(_oracle(model, params, batch))
    rms = []
    for i, m in enumerate(ms):
        rule = fg(model, perturb=perturb, num_tangents=m)
        draws = jax.vmap(_hidden)(_updates_over_keys(
            rule, params, batch, jax.random.split(jax.random.PRNGKey(100 + i), k)))
        rms.append(float(jnp.sqrt(jnp.mean(jnp.sum((draws - g) ** 2, axis=1)))
                         / jnp.linalg.norm(g)))
    slope = np.polyfit(np.log(ms), np.log(rms), 1)[0]
    assert abs(slope + 0.5) < 0.1, (slope, rms)
    assert rms[-1] < rms[0] / 4  # 16x the tangents: 4x less error, up to the same noise
    print(f'{net} {perturb}: slope {slope:.3f}, relative RMS error {rms}')


def test_weight_perturbation_error_has_its_closed_form():
    # E|g_M - g|^2 / |g|^2 = (d + 1)/M per hidden layer, d its parameter count (w and b).
    # Over K = 512 keys the mean of the squared errors has a relative std of about
    # sqrt(Var/K); for (g.v)v along a d-dim Gaussian that is ~sqrt(3/K) ~ 0.08 at worst:
    # a 25% tolerance is 3 of those.
    model = _mlp()
    m, k = 8, 512
    rule, params, batch = _setup(model, (16,), perturb='weight', num_tangents=m)
    draws = _updates_over_keys(rule, params, batch, jax.random.split(jax.random.PRNGKey(3), k))
    exact = _oracle(model, params, batch)
    for l in range(len(model.layers) - 1):
        est = jnp.concatenate([a.reshape(k, -1) for a in jax.tree.leaves(draws['layers'][l])], 1)
        g = jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(exact['layers'][l])])
        d = g.size
        ratio = float(jnp.mean(jnp.sum((est - g) ** 2, axis=1)) / jnp.sum(g ** 2))
        np.testing.assert_allclose(ratio, (d + 1) / m, rtol=0.25)


def test_estimates_with_given_tangents_are_the_formulas():
    model = _mlp()
    _, params, batch = _setup(model, (16,))
    x, y = batch['x'], batch['y']
    layer, p, head = model.layers[1], params['layers'][1], params['heads'][1]
    h = model.layers[0](params['layers'][0], x)  # layer 1's input
    key_u, key_w, key_b = jax.random.split(jax.random.PRNGKey(11), 3)
    # FG-A: each example's own directional derivative at z = h W + b
    z = h @ p['w'] + p['b']
    u = jax.random.normal(key_u, (1,) + z.shape)

    def example_losses(zz):
        logits = jax.nn.relu(zz) @ head['w'] + head['b']
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]

    grad_z = jax.grad(lambda zz: jnp.sum(example_losses(zz)))(z)  # row n: dl_n/dz_n
    gz = jnp.sum(grad_z * u[0], axis=1, keepdims=True) * u[0] * (z > 0) / x.shape[0]
    est = activity_estimate(layer, p, head, h, y, u)
    np.testing.assert_allclose(est['w'], h.T @ gz, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(est['b'], gz.sum(0), rtol=1e-5, atol=1e-7)
    # FG-W: (g.v) v with g the exact gradient of the mean local loss
    v = {'w': jax.random.normal(key_w, (1,) + p['w'].shape),
         'b': jax.random.normal(key_b, (1,) + p['b'].shape)}
    g = jax.grad(lambda q: jnp.mean(example_losses(h @ q['w'] + q['b'])))(p)
    dot = jnp.sum(g['w'] * v['w'][0]) + jnp.sum(g['b'] * v['b'][0])
    est = weight_estimate(layer, p, head, h, y, v)
    for name in ('w', 'b'):
        np.testing.assert_allclose(est[name], dot * v[name][0], rtol=1e-5, atol=1e-7)


def test_heads_and_labels():
    model = _cnn()
    rule, params, _ = _setup(model, (6, 6, 1))
    # one head per hidden layer: the conv's reads its 3 channels (global average pool)
    assert [h['w'].shape for h in params['heads']] == [(3, 4), (5, 4)]
    labels = rule.param_labels(params)
    assert jax.tree.leaves(labels['layers']) == ['hidden'] * 4 + ['last'] * 2
    assert set(jax.tree.leaves(labels['heads'])) == {'heads'}
    assert registry.capabilities('fg').layers == ('dense', 'conv')


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match=r"perturb must be one of \('activity', 'weight'\)"):
        fg(_mlp(), perturb='node')
    with pytest.raises(ValueError, match='num_tangents must be an integer >= 1'):
        fg(_mlp(), num_tangents=0)
    with pytest.raises(ValueError, match='num_tangents must be an integer >= 1'):
        fg(_mlp(), num_tangents=2.5)
    flax_model = models.sequential([models.from_linen(nn.Dense(8), (16,), 'blk'),
                                    models.dense('out', (8,), 4, 'identity')])
    with pytest.raises(ValueError, match="dense and conv layers only.*config.model.name='mlp'"):
        fg(flax_model)
    model = _mlp()
    with pytest.raises(ValueError, match="no 'heads'.*rule.init_params"):
        local_gradients(model, model.init(jax.random.PRNGKey(0)), _batch())
