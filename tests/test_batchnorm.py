"""BatchNorm in a linen block: its statistics, against BatchNorm's own definition.

A block `relu(BN(x W + b))` written out in jnp is the oracle: in a training step the layer
normalises by the batch's mean and (biased) variance and the running averages move to
`m * old + (1 - m) * batch` (flax's default `momentum` m = 0.99); in predict it normalises
by the running averages, so an example's logits do not depend on the rest of its batch. The
rules that refuse BatchNorm (ff, cff, pc, ipc, chain) say so in one line.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.rules import bp
from neurokit.rules import combine as combine_lib
from neurokit.rules import fa as fa_lib
from neurokit.rules import registry

EPS, MOMENTUM, LR = 1e-5, 0.99, 0.1  # flax's BatchNorm defaults


def _model():
    return models.from_flax([nn.Sequential([nn.Dense(6), nn.BatchNorm(), nn.relu]),
                             nn.Dense(10)], (8,), 10)


def _batch(seed=1, n=16):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 8)) * 2.0 + 1.0
    return {'x': x, 'y': jnp.arange(n) % 10}


def _forward(p, x, mean, var):
    """The model written out: relu(BN(x W1 + b1)) W2 + b2, BN by `mean` and `var`."""
    q, head = p['layers'][0]['params'], p['layers'][1]
    z = x @ q['layers_0']['kernel'] + q['layers_0']['bias']
    h = (z - mean) / jnp.sqrt(var + EPS) * q['layers_1']['scale'] + q['layers_1']['bias']
    return jax.nn.relu(h) @ head['kernel'] + head['bias']


def _pre_norm(p, x):
    q = p['layers'][0]['params']['layers_0']
    return x @ q['kernel'] + q['bias']


def _loss(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _relative(a, b):
    a = jnp.concatenate([v.ravel() for v in jax.tree.leaves(a)])
    b = jnp.concatenate([v.ravel() for v in jax.tree.leaves(b)])
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize('name', ['bp', 'mf'])
def test_a_training_step_normalises_by_the_batch_and_moves_the_running_averages(name):
    model = _model()
    assert models.is_stateful(model)
    rule, opt = registry.build(name, model), optax.sgd(LR)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    stats = state.params['layers'][0]['batch_stats']['layers_1']
    np.testing.assert_array_equal(stats['mean'], 0)  # BatchNorm's initial statistics
    np.testing.assert_array_equal(stats['var'], 1)
    batch = _batch()
    new, _ = jax.jit(train.make_train_step(rule, opt))(state, batch)
    z = _pre_norm(state.params, batch['x'])
    got = new.params['layers'][0]['batch_stats']['layers_1']
    np.testing.assert_allclose(got['mean'], (1 - MOMENTUM) * z.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got['var'], MOMENTUM + (1 - MOMENTUM) * z.var(0), rtol=1e-5)
    if name == 'bp':  # the parameters took the step of the loss normalised by the batch
        def loss(q):
            p = {'layers': ({**state.params['layers'][0], 'params': q},
                            state.params['layers'][1])}
            zz = _pre_norm(p, batch['x'])
            return _loss(_forward(p, batch['x'], zz.mean(0), zz.var(0)), batch['y'])
        p0 = state.params['layers'][0]['params']
        want = jax.tree.map(lambda w, g: w - LR * g, p0, jax.grad(loss)(p0))
        assert _relative(new.params['layers'][0]['params'], want) <= 1e-5


def test_predict_normalises_by_the_running_averages():
    model = _model()
    rule, opt = registry.build('bp', model), optax.sgd(LR)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for i in range(3):
        state, _ = step(state, _batch(seed=i))
    p, x = state.params, _batch(seed=9)['x']
    stats = p['layers'][0]['batch_stats']['layers_1']
    logits = rule.predict(p, state.rule_state, x)
    assert _relative(logits, _forward(p, x, stats['mean'], stats['var'])) <= 1e-5
    # so one example's logits are its logits inside any batch
    np.testing.assert_allclose(rule.predict(p, state.rule_state, x[:1]), logits[:1], rtol=1e-5,
                               atol=1e-6)


def test_fa_with_feedback_equal_to_the_kernels_is_backprop_through_batchnorm():
    model = _model()
    params = model.init(jax.random.PRNGKey(0))
    rule = registry.build('fa', model)
    sites = fa_lib.feedback_sites(model)
    state = fa_lib.with_feedback(rule.init(jax.random.PRNGKey(1), params),
                                 fa_lib._site_kernels(sites, params))
    batch = _batch()
    updates, _, _ = rule.step(params, state, batch, None)
    bp, _, _ = registry.build('bp', model).step(params, None, batch, None)
    assert _relative(updates, bp) <= 1e-5
    # the statistics get no update from either rule (the training step sets them)
    assert not any(np.any(u) for u in jax.tree.leaves(updates['layers'][0]['batch_stats']))


@pytest.mark.parametrize('make, match', [
    (lambda: registry.build('ff', _model()), r'^rule ff cannot train block block_0, which keeps '
     r'BatchNorm statistics: .*use nn.GroupNorm or nn.LayerNorm'),
    (lambda: registry.build('pc', _model()), r'^rule pc cannot train block block_0'),
    (lambda: combine_lib.chain(_model(), [((0, 1), bp), ((1, 2), bp)]),
     r'^rule chain cannot train block block_0'),
    (lambda: _model().apply(_model().init(jax.random.PRNGKey(0)), jnp.zeros((2, 8))),
     r'^block block_0 keeps BatchNorm statistics, so it must be called with train=True'),
], ids=['ff', 'pc', 'chain', 'apply_without_mode'])
def test_what_cannot_keep_the_statistics_says_so_in_one_line(make, match):
    with pytest.raises(ValueError, match=match) as err:
        make()
    assert '\n' not in str(err.value)
