"""Feedback-alignment family against oracles: backprop limits and a hand-written numpy backward pass."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit import models
from neurokit.rules.bp import bp
from neurokit.rules import fa as fa_lib

KEY = jax.random.PRNGKey(0)


def _batch(n=16, shape=(8, 8, 1), key=jax.random.PRNGKey(1)):
    return {'x': jax.random.normal(key, (n,) + shape), 'y': jnp.arange(n, dtype=jnp.int32) % 10}


def _max_rel(a, b):
    """Largest |a - b| over all leaves, relative to the largest |b| of the same leaf."""
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _numpy_backward(params, x, y, feedback, mid=None):
    """ReLU MLP, softmax cross-entropy: `delta_l = (delta_{l+1} @ B_{l+1}^T) * relu'(z_l)`.

    `feedback[l-1]` is layer l's feedback, shaped like `W_l` (n_in, n_out);
    with `mid[l-1] = b_l` it is PFA: `delta_mid = delta @ b^T` then `@ r^T`,
    where `feedback` holds the r's, and dr = a^T delta_mid is returned too.
    """
    ws = [np.asarray(p['w'], np.float64) for p in params['layers']]
    bs = [np.asarray(p['b'], np.float64) for p in params['layers']]
    a = [np.asarray(x, np.float64).reshape(x.shape[0], -1)]
    zs = []
    for l, (w, b) in enumerate(zip(ws, bs)):
        zs.append(a[-1] @ w + b)
        a.append(np.maximum(zs[-1], 0) if l < len(ws) - 1 else zs[-1])
    logits = zs[-1]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = (p - np.eye(logits.shape[1])[np.asarray(y)]) / logits.shape[0]
    grads, dr = [None] * len(ws), [None] * (len(ws) - 1)
    for l in range(len(ws) - 1, -1, -1):
        grads[l] = {'w': a[l].T @ delta, 'b': delta.sum(0)}
        if l == 0:
            break
        fb = np.asarray(feedback[l - 1], np.float64)
        if mid is not None:
            delta_mid = delta @ np.asarray(mid[l - 1], np.float64).T
            dr[l - 1] = a[l].T @ delta_mid
            back = delta_mid @ fb.T
        else:
            back = delta @ fb.T
        delta = back * (zs[l - 1] > 0)
    return grads, dr


@functools.cache
def _mlp():
    """One model for the module's MLP tests (its init and backprop compile once)."""
    return models.mlp((8, 8, 1), 10, hidden=(32, 24, 16))


def _bp_updates(model, params, batch):
    """The backprop gradient, the oracle of the `B = W^T` limits."""
    return jax.jit(bp(model).step)(params, None, batch, KEY)[0]


@functools.cache
def _mlp_bp_updates():
    """`_bp_updates` of `_mlp()` at `model.init(KEY)` on `_batch()`, computed once."""
    model = _mlp()
    return _bp_updates(model, model.init(KEY), _batch())


def test_fa_with_transposed_weights_is_backprop_mlp():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.fa(model)
    state = fa_lib.with_feedback(rule.init(KEY, params), [p['w'] for p in params['layers'][1:]])
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    assert _max_rel(updates, _mlp_bp_updates()) <= 1e-6


def test_fa_with_transposed_weights_is_backprop_cnn():
    model = models.cnn((8, 8, 1), 10, channels=(4, 6), kernel_size=3, dense_widths=(12,))
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.fa(model, alignment_metrics=True)
    state = fa_lib.with_feedback(rule.init(KEY, params), [p['w'] for p in params['layers'][1:]])
    updates, _, metrics = jax.jit(rule.step)(params, state, batch, KEY)
    assert _max_rel(updates, _bp_updates(model, params, batch)) <= 1e-6
    np.testing.assert_allclose(metrics['alignment_angle'], 0.0, atol=0.1)


def test_fa_random_feedback_matches_numpy_backward():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.fa(model)
    state = rule.init(jax.random.PRNGKey(5), params)
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    expected, _ = _numpy_backward(params, batch['x'], batch['y'], state.feedback)
    assert _max_rel(updates['layers'], expected) <= 1e-5
    # The output layer's update is always the true gradient.
    true = _mlp_bp_updates()
    assert _max_rel(updates['layers'][-1], true['layers'][-1]) <= 1e-6


def test_fa_feedback_lives_in_state_and_comes_from_the_key():
    model = _mlp()
    params = model.init(KEY)
    rule = fa_lib.fa(model)
    s1, s2, s3 = (rule.init(k, params) for k in (KEY, KEY, jax.random.PRNGKey(9)))
    assert rule.init_params(KEY, params) is params  # nothing added to the trainables
    assert [f.shape for f in s1.feedback] == [p['w'].shape for p in params['layers'][1:]]
    chex.assert_trees_all_equal(s1.feedback, s2.feedback)
    assert not np.allclose(s1.feedback[0], s3.feedback[0])
    # Spread of a LeCun-initialised weight: 1/sqrt(fan_in).
    np.testing.assert_allclose(np.std(s1.feedback[0]), 1 / np.sqrt(32), rtol=0.1)
    with pytest.raises(ValueError, match='shape'):
        fa_lib.with_feedback(s1, [jnp.zeros((2, 2))] * len(s1.feedback))


def test_dfa_one_hidden_layer_with_w2_is_backprop():
    model = models.mlp((8, 8, 1), 10, hidden=(32,))
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.dfa(model)
    state = fa_lib.with_feedback(rule.init(KEY, params), [params['layers'][1]['w']])
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    assert _max_rel(updates, _bp_updates(model, params, batch)) <= 1e-6


def test_dfa_matches_numpy_direct_projection():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.dfa(model)
    state = rule.init(KEY, params)
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    # Raw numpy: every hidden delta is (e @ B_l^T) * relu'(z_l), e the output error.
    ws = [np.asarray(p['w'], np.float64) for p in params['layers']]
    bs = [np.asarray(p['b'], np.float64) for p in params['layers']]
    a, zs = [np.asarray(batch['x'], np.float64).reshape(16, -1)], []
    for l, (w, b) in enumerate(zip(ws, bs)):
        zs.append(a[-1] @ w + b)
        a.append(np.maximum(zs[-1], 0) if l < len(ws) - 1 else zs[-1])
    p = np.exp(zs[-1] - zs[-1].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    e = (p - np.eye(10)[np.asarray(batch['y'])]) / 16
    for l in range(len(ws)):
        delta = e if l == len(ws) - 1 else (e @ np.asarray(state.feedback[l], np.float64).T) * (zs[l] > 0)
        np.testing.assert_allclose(updates['layers'][l]['w'], a[l].T @ delta, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(updates['layers'][l]['b'], delta.sum(0), rtol=1e-4, atol=1e-7)


def test_dfa_conv_feedback_targets_feature_maps():
    model = models.cnn((8, 8, 1), 10, channels=(4, 6), kernel_size=3, dense_widths=(12,))
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.dfa(model, alignment_metrics=True)
    state = rule.init(KEY, params)
    assert [f.shape for f in state.feedback] == [(4 * 4 * 4, 10), (2 * 2 * 6, 10), (12, 10)]
    updates, _, metrics = jax.jit(rule.step)(params, state, batch, KEY)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    chex.assert_shape(metrics['alignment_angle'], (4,))
    assert float(metrics['alignment_angle'][-1]) < 0.1  # output layer: the true gradient


def test_dfa_channel_feedback_is_full_feedback_repeated_over_positions():
    # 'channel' gives every position of a feature map its channel's one weight: the same
    # updates as 'full' feedback whose rows repeat that weight at every (h, w).
    model = models.cnn((8, 8, 1), 10, channels=(4, 6), kernel_size=3, dense_widths=(12,))
    params, batch = model.init(KEY), _batch()
    shared = fa_lib.dfa(model, conv_feedback='channel')
    state = shared.init(KEY, params)
    assert [f.shape for f in state.feedback] == [(4, 10), (6, 10), (12, 10)]
    full = fa_lib.dfa(model)
    tiled = [jnp.tile(state.feedback[0], (4 * 4, 1)), jnp.tile(state.feedback[1], (2 * 2, 1)),
             state.feedback[2]]
    full_state = fa_lib.with_feedback(full.init(KEY, params), tiled)
    got, _, _ = jax.jit(shared.step)(params, state, batch, KEY)
    want, _, _ = jax.jit(full.step)(params, full_state, batch, KEY)
    assert _max_rel(got, want) <= 1e-6
    # ...and it is not the 'full' rule's own (independent per position) feedback.
    other, _, _ = jax.jit(full.step)(params, full.init(KEY, params), batch, KEY)
    assert _max_rel(got['layers'][0], other['layers'][0]) > 1e-2
    with pytest.raises(ValueError, match='conv_feedback'):
        fa_lib.dfa(model, conv_feedback='spatial')


def test_usf_is_sign_feedback():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    ws = [p['w'] for p in params['layers'][1:]]
    updates, _, _ = jax.jit(fa_lib.usf(model, scaled=False).step)(
        params, fa_lib.EmptyState(), batch, KEY)
    expected, _ = _numpy_backward(params, batch['x'], batch['y'], [np.sign(w) for w in ws])
    assert _max_rel(updates['layers'], expected) <= 1e-5
    scaled, _, _ = jax.jit(fa_lib.usf(model).step)(params, fa_lib.EmptyState(), batch, KEY)
    expected, _ = _numpy_backward(params, batch['x'], batch['y'],
                                  [np.sign(w) / np.sqrt(w.shape[0]) for w in ws])
    assert _max_rel(scaled['layers'], expected) <= 1e-5


def test_frsf_fixed_magnitudes_with_weight_signs():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.frsf(model)
    state = rule.init(KEY, params)
    assert all(np.all(np.asarray(m) >= 0) for m in state.feedback)
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    fb = [np.sign(p['w']) * m for p, m in zip(params['layers'][1:], state.feedback)]
    expected, _ = _numpy_backward(params, batch['x'], batch['y'], fb)
    assert _max_rel(updates['layers'], expected) <= 1e-5


def test_brsf_redraws_magnitudes_per_step_key():
    model = _mlp()
    params, batch = model.init(KEY), _batch()
    rule = fa_lib.brsf(model, alignment_metrics=True)
    step = jax.jit(rule.step)
    u1, _, m1 = step(params, fa_lib.EmptyState(), batch, jax.random.PRNGKey(1))
    u1b, _, _ = step(params, fa_lib.EmptyState(), batch, jax.random.PRNGKey(1))
    u2, _, _ = step(params, fa_lib.EmptyState(), batch, jax.random.PRNGKey(2))
    chex.assert_trees_all_equal(u1, u1b)
    assert not np.allclose(u1['layers'][0]['w'], u2['layers'][0]['w'])
    np.testing.assert_allclose(u1['layers'][-1]['w'], u2['layers'][-1]['w'])
    # Sign-concordant feedback keeps every hidden update within 90 degrees of the gradient.
    assert np.all(np.asarray(m1['alignment_angle']) < 90)


def test_pfa_matches_numpy_product_feedback():
    model = _mlp()
    params0, batch = model.init(KEY), _batch()
    rule = fa_lib.pfa(model, ratio=3)
    params = rule.init_params(jax.random.PRNGKey(3), params0)
    state = rule.init(jax.random.PRNGKey(4), params)
    assert [r.shape for r in params['pfa_r']] == [(32, 72), (24, 48), (16, 30)]
    assert [b.shape for b in state.b] == [(72, 24), (48, 16), (30, 10)]
    updates, _, _ = jax.jit(rule.step)(params, state, batch, KEY)
    chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
    expected, dr = _numpy_backward(params, batch['x'], batch['y'], params['pfa_r'], mid=state.b)
    assert _max_rel(updates['layers'], expected) <= 1e-5
    assert _max_rel(updates['pfa_r'], dr) <= 1e-5


def test_pfa_conv_runs_and_updates_r():
    model = models.cnn((8, 8, 1), 10, channels=(4, 6), kernel_size=3, dense_widths=(12,))
    rule = fa_lib.pfa(model)
    params = rule.init_params(KEY, model.init(KEY))
    assert params['pfa_r'][0].shape == (3, 3, 4, 60)
    state = rule.init(KEY, params)
    updates, _, metrics = jax.jit(rule.step)(params, state, _batch(), KEY)
    assert np.isfinite(float(metrics['loss']))
    assert all(float(jnp.abs(u).sum()) > 0 for u in updates['pfa_r'])
