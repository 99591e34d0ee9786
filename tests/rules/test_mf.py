"""Mono-Forward: every update is the gradient of its own layer's loss, nothing else.

The oracles are written in raw JAX (matmuls, relu, log-softmax, lax.conv), not
with the model's `Layer` code, so they check the rule against the paper's
definition: layer l's loss is CE(softmax(a_l M_l), y) with `a_{l-1}` a constant;
the last hidden layer's projection is the model's output layer.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models
from neurokit.rules import registry
from neurokit.rules.bp import bp
from neurokit.rules.mf import mf
from neurokit.train import make_train_step
from neurokit.train.state import init_state


def _ce(scores, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(scores), y[:, None], 1))


def _setup(hidden=(12, 10, 8), n=16, d=7, c=5, seed=0):
    model = models.mlp((d,), c, hidden)
    rule = mf(model)
    k = jax.random.PRNGKey(seed)
    params = rule.init_params(jax.random.fold_in(k, 1), model.init(k))
    kx, ky = jax.random.split(jax.random.fold_in(k, 2))
    batch = {'x': jax.random.normal(kx, (n, d)), 'y': jax.random.randint(ky, (n,), 0, c)}
    return model, rule, params, batch


def _mlp_oracle(params, x, y):
    """Per-layer gradients from hand-written per-layer losses (raw JAX)."""
    ws = [p['w'] for p in params['layers']]
    bs = [p['b'] for p in params['layers']]
    ms = [p['m'] for p in params['mf_proj']]
    grads_layers, grads_proj = [], []
    a = x
    for l, m in enumerate(ms):
        def loss_l(w, b, m, a_in):
            return _ce(jax.nn.relu(a_in @ w + b) @ m, y)
        gw, gb, gm = jax.grad(loss_l, argnums=(0, 1, 2))(ws[l], bs[l], m, a)
        grads_layers.append({'w': gw, 'b': gb})
        grads_proj.append({'m': gm})
        a = jax.nn.relu(a @ ws[l] + bs[l])  # plain forward: the next layer's constant input

    def loss_last(w, b, wo, bo, a_in):
        return _ce(jax.nn.relu(a_in @ w + b) @ wo + bo, y)
    g = jax.grad(loss_last, argnums=(0, 1, 2, 3))(ws[-2], bs[-2], ws[-1], bs[-1], a)
    grads_layers += [{'w': g[0], 'b': g[1]}, {'w': g[2], 'b': g[3]}]
    return {'layers': tuple(grads_layers), 'mf_proj': tuple(grads_proj)}


def test_init_params_adds_one_projection_per_hidden_layer_but_the_last():
    model, rule, params, _ = _setup(hidden=(12, 10, 8), c=5)
    assert [p['m'].shape for p in params['mf_proj']] == [(12, 5), (10, 5)]
    assert len(params['layers']) == 4  # untouched model params


@functools.lru_cache(maxsize=None)
def _default_step():
    """The default setup's mf step, compiled once for the tests that read it."""
    _, rule, params, batch = _setup()
    return params, batch, jax.jit(rule.step)(params, rule.init(None, params), batch, None)


def test_each_update_is_the_gradient_of_its_own_layer_loss():
    params, batch, (updates, _, metrics) = _default_step()
    expected = _mlp_oracle(params, batch['x'], batch['y'])
    jax.tree.map(lambda u, e: np.testing.assert_allclose(u, e, rtol=1e-5, atol=1e-6),
                 updates, expected)
    assert set(metrics) >= {'loss', 'accuracy', 'loss_0', 'loss_1', 'loss_2'}


def test_metrics_are_each_layers_own_loss():
    params, batch, (_, _, metrics) = _default_step()
    x, y = batch['x'], batch['y']
    ws = [p['w'] for p in params['layers']]
    bs = [p['b'] for p in params['layers']]
    a, expected = x, []
    for l, p in enumerate(params['mf_proj']):
        a = jax.nn.relu(a @ ws[l] + bs[l])
        expected.append(_ce(a @ p['m'], y))
    a = jax.nn.relu(a @ ws[-2] + bs[-2])
    expected.append(_ce(a @ ws[-1] + bs[-1], y))
    got = [metrics[f'loss_{l}'] for l in range(len(expected))]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(metrics['loss'], expected[-1], rtol=1e-5)


def test_later_layers_do_not_change_earlier_updates():
    _, rule, params, batch = _setup()
    state = rule.init(None, params)
    base, _, _ = rule.step(params, state, batch, None)
    # Perturb the last hidden layer (2) and the output layer (3): layers 0, 1 and their
    # projections must get bit-identical updates; layer 2's must change.
    layers = list(params['layers'])
    layers[2] = jax.tree.map(lambda x: x * 3.0 + 0.5, layers[2])
    layers[3] = jax.tree.map(lambda x: -x, layers[3])
    new, _, _ = rule.step({**params, 'layers': tuple(layers)}, state, batch, None)
    for l in (0, 1):
        for name in ('w', 'b'):
            np.testing.assert_array_equal(new['layers'][l][name], base['layers'][l][name])
        np.testing.assert_array_equal(new['mf_proj'][l]['m'], base['mf_proj'][l]['m'])
    assert not np.allclose(new['layers'][2]['w'], base['layers'][2]['w'])
    # Perturb layer 1's projection: layer 0 is unaffected, layer 1 is not.
    proj = (params['mf_proj'][0], {'m': params['mf_proj'][1]['m'] * -2.0})
    new, _, _ = rule.step({**params, 'mf_proj': proj}, state, batch, None)
    np.testing.assert_array_equal(new['layers'][0]['w'], base['layers'][0]['w'])
    assert not np.allclose(new['layers'][1]['w'], base['layers'][1]['w'])


@pytest.mark.parametrize('layerwise', [False, True])
def test_a_non_finite_layer_does_not_reach_later_layers(layerwise):
    # Layer 0's projection is inf: its own update is not finite, but its activations
    # (the next layer's constant input) are the same, so layers 1.. must get exactly
    # the updates they get with a finite projection -- in the one-update step and in
    # the layerwise step, where each block's new parameters are ready mid-pass.
    model, rule, params, batch = _setup()
    bad = {**params, 'mf_proj': ({'m': params['mf_proj'][0]['m'].at[0, 0].set(jnp.inf)},)
           + params['mf_proj'][1:]}
    opt = optax.adam(1e-2)
    if layerwise:
        rule = mf(model, layerwise=True)
        step = jax.jit(make_train_step(rule, opt))
        def run(p):
            state = init_state(jax.random.PRNGKey(0), model, rule, opt)
            new, metrics = step(state._replace(params=p), batch)
            return new.params, metrics
    else:
        def run(p):
            return rule.step(p, rule.init(None, p), batch, None)[::2]
    base, base_metrics = run(params)
    new, metrics = run(bad)
    assert not np.all(np.isfinite(new['layers'][0]['w']))
    for l in (1, 2, 3):
        for name in ('w', 'b'):
            np.testing.assert_array_equal(new['layers'][l][name], base['layers'][l][name])
    np.testing.assert_array_equal(new['mf_proj'][1]['m'], base['mf_proj'][1]['m'])
    for k in ('loss_1', 'loss_2', 'loss'):
        np.testing.assert_array_equal(metrics[k], base_metrics[k])


def test_cnn_conv_layer_scores_use_global_average_pool():
    model = models.cnn((8, 8, 1), 4, channels=(3,), dense_widths=(6,), pools=(2,))
    rule = mf(model)
    k = jax.random.PRNGKey(3)
    params = rule.init_params(jax.random.fold_in(k, 1), model.init(k))
    assert params['mf_proj'][0]['m'].shape == (3, 4)
    x = jax.random.uniform(jax.random.fold_in(k, 2), (5, 8, 8, 1))
    y = jnp.array([0, 1, 2, 3, 1])
    updates, _, _ = rule.step(params, rule.init(k, params), {'x': x, 'y': y}, k)

    def conv_loss(w, b, m):
        z = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + b
        a = jax.lax.reduce_window(jax.nn.relu(z), -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                  (1, 2, 2, 1), 'VALID')
        return _ce(a.mean(axis=(1, 2)) @ m, y)
    p0 = params['layers'][0]
    gw, gb, gm = jax.grad(conv_loss, argnums=(0, 1, 2))(p0['w'], p0['b'], params['mf_proj'][0]['m'])
    np.testing.assert_allclose(updates['layers'][0]['w'], gw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(updates['layers'][0]['b'], gb, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(updates['mf_proj'][0]['m'], gm, rtol=1e-4, atol=1e-6)


def test_flatten_conv_scores_shape():
    model = models.cnn((8, 8, 1), 4, channels=(3,), dense_widths=(6,), pools=(2,))
    rule = mf(model, conv_scores='flatten')
    params = rule.init_params(jax.random.PRNGKey(0), model.init(jax.random.PRNGKey(1)))
    assert params['mf_proj'][0]['m'].shape == (4 * 4 * 3, 4)


def test_predict_last_is_model_logits_and_combine_sums_log_softmax():
    model, rule, params, batch = _setup()
    x = batch['x']
    np.testing.assert_allclose(rule.predict(params, (), x), model.apply(params, x)[0], rtol=1e-6)
    combine = mf(model, prediction='combine')
    a, total = x, 0.0
    for p, m in zip(params['layers'][:2], params['mf_proj']):
        a = jax.nn.relu(a @ p['w'] + p['b'])
        total = total + jax.nn.log_softmax(a @ m['m'])
    total = total + jax.nn.log_softmax(model.apply(params, x)[0])
    np.testing.assert_allclose(combine.predict(params, (), x), total, rtol=1e-5, atol=1e-6)


def test_one_hidden_layer_is_backprop():
    # With a single hidden layer the only block is hidden + output: MF's update is BP's.
    model = models.mlp((6,), 3, (9,))
    k = jax.random.PRNGKey(4)
    rule = mf(model)
    params = rule.init_params(k, model.init(k))
    assert params['mf_proj'] == ()
    batch = {'x': jax.random.normal(k, (8, 6)), 'y': jnp.arange(8) % 3}
    u_mf, _, _ = rule.step(params, (), batch, k)
    u_bp, _, _ = bp(model).step({'layers': params['layers']}, (), batch, k)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u_mf['layers'],
                 u_bp['layers'])


def test_registry_and_bad_arguments():
    model = models.mlp((4,), 2, (3, 3))
    assert 'mf' in registry.RULES
    assert {'prediction', 'conv_scores', 'loss'} <= set(registry.hyperparameters('mf'))
    with pytest.raises(ValueError, match='prediction'):
        mf(model, prediction='mean')
    with pytest.raises(ValueError, match='conv_scores'):
        mf(model, conv_scores='max')


def _temp_bytes(rule, model, batch_size):
    opt = optax.adam(1e-3)
    state = jax.eval_shape(lambda k: init_state(k, model, rule, opt),
                           jax.random.PRNGKey(0))
    batch = {'x': jax.ShapeDtypeStruct((batch_size, 28, 28, 1), jnp.float32),
             'y': jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
    compiled = jax.jit(make_train_step(rule, opt), donate_argnums=0).lower(state, batch).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_deep_mlp_step_and_layerwise_step_need_far_less_temp_memory_than_backprop():
    # 16 hidden layers whose activations (batch x width) dominate the weights: backprop
    # keeps all 16 for its backward pass, MF about two at a time. With layerwise updates
    # each block's gradient is applied inside the pass, so about one layer's activations
    # and one layer's gradient are alive at a time (backprop: all of both). One test, so
    # backprop's program is compiled once for both comparisons.
    model = models.mlp((28, 28, 1), 10, (256,) * 16)
    bp_bytes = _temp_bytes(bp(model), model, 1024)
    mf_bytes = _temp_bytes(mf(model), model, 1024)
    assert mf_bytes <= bp_bytes / 3, (mf_bytes, bp_bytes)
    lw = _temp_bytes(mf(model, layerwise=True), model, 1024)
    assert lw <= bp_bytes / 3, (lw, bp_bytes)
