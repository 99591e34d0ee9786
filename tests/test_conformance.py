"""The conformance battery: every registered rule passes the same checks.

A rule is one file, one registry line and a config; this battery picks it up untouched.
Checks: jits without retracing, learns a toy task, updates keep the params'
tree and dtypes, vmap over members equals separate calls, works on a CNN, and
the whole training state round-trips through an orbax checkpoint.
"""
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from neurokit import models, rules, train
from neurokit.rules import registry

RULE_NAMES = sorted(registry.RULES)
# A few rules want a different optimizer step on the toy task; same budget for all.
TOY_LR = {'fa': 3e-3, 'dfa': 3e-3, 'pfa': 3e-3}  # random feedback needs a larger step to learn as fast
TOY_EPOCHS = 5


def _mlp(dtype=jnp.float32):
    return models.mlp((8, 8, 1), 10, hidden=(64, 64), dtype=dtype)


def _batch(digits, n=32, offset=0):
    x, y, _, _ = digits
    return {'x': x[offset:offset + n], 'y': y[offset:offset + n]}


def _setup(name, model, key=jax.random.PRNGKey(0)):
    rule = registry.build(name, model)
    opt = optax.adam(TOY_LR.get(name, 1e-3))
    return rule, opt, train.init_state(key, model, rule, opt)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_step_jits_once(name, digits):
    rule, opt, state = _setup(name, _mlp())
    traces = []

    def counted(s, b):
        traces.append(1)
        return train.make_train_step(rule, opt)(s, b)

    step = jax.jit(counted)
    for i in range(3):
        state, metrics = step(state, _batch(digits, offset=32 * i))
    jax.block_until_ready(state)
    assert len(traces) == 1
    assert np.isfinite(float(metrics['loss']))


@pytest.mark.parametrize('name', RULE_NAMES)
def test_learns_digits(name, digits):
    x, y, xt, yt = digits
    rule, opt, state = _setup(name, _mlp())
    epoch = jax.jit(train.make_epoch(rule, opt, 64))
    for e in range(TOY_EPOCHS):
        state, metrics = epoch(state, x, y, e)
    acc = float(jax.jit(train.make_evaluate(rule, 500))(state.params, state.rule_state, xt, yt))
    assert acc >= 0.80, f'{name}: digits test accuracy {acc:.3f} after {TOY_EPOCHS} epochs'


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('name', RULE_NAMES)
def test_updates_keep_tree_and_dtypes(name, dtype, digits):
    rule, opt, state = _setup(name, _mlp(dtype))
    batch = _batch(digits)
    key = jax.random.PRNGKey(1)
    outs = [jax.jit(lambda s: rules.with_optimizer(rule).step(
        s.params, s.rule_state, s.opt_state, batch, key, opt))(state)]  # the new params
    if isinstance(rule, rules.Rule):  # a plain rule's own updates
        outs.append(jax.jit(rule.step)(state.params, state.rule_state, batch, key))
    for out in outs:
        new, rule_state, metrics = out[0], out[1], out[-1]
        assert jax.tree.structure(new) == jax.tree.structure(state.params)
        for u, p in zip(jax.tree.leaves(new), jax.tree.leaves(state.params)):
            assert u.shape == p.shape and u.dtype == p.dtype
            assert np.all(np.isfinite(np.asarray(u, np.float32)))
        assert jax.tree.structure(rule_state) == jax.tree.structure(state.rule_state)
        assert 'loss' in metrics
    assert jax.tree.structure(outs[0][2]) == jax.tree.structure(state.opt_state)
    logits = rule.predict(state.params, rule_state, batch['x'])
    assert logits.shape == (batch['x'].shape[0], 10)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_vmap_equals_separate_calls(name, digits):
    model = _mlp()
    rule, opt, _ = _setup(name, model)
    keys = jnp.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(4)])
    states = jax.vmap(lambda k: train.init_state(k, model, rule, opt))(keys)
    batches = jax.tree.map(lambda a, b: jnp.stack([a, b]), _batch(digits), _batch(digits, offset=32))
    step = train.make_train_step(rule, opt)
    together, _ = jax.jit(jax.vmap(step))(states, batches)
    for i in range(2):
        alone, _ = jax.jit(step)(jax.tree.map(lambda a: a[i], states),
                                 jax.tree.map(lambda a: a[i], batches))
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_step_takes_numpy_batches_and_refuses_bad_ones(name, digits):
    """A data set's numpy arrays work as they are; a batch the model cannot take, float
    labels, or labels outside [0, 10) (a zero one-hot row: silently no loss) are a
    ValueError naming the problem, whether the step is jitted or not (labels: outside
    jit, where their values are known)."""
    rule, opt, state = _setup(name, _mlp())
    x, y = (np.asarray(a) for a in _batch(digits).values())
    k = jax.random.PRNGKey(1)
    stepper = rules.with_optimizer(rule)  # one signature for a Rule and an OptimizerRule

    def step(params, rule_state, batch, key):
        return stepper.step(params, rule_state, state.opt_state, batch, key, opt)

    metrics = step(state.params, state.rule_state, {'x': x, 'y': y}, k)[-1]
    assert np.isfinite(float(metrics['loss']))
    bad = {
        'shape': ({'x': np.zeros((32, 28, 28, 1), np.float32), 'y': y}, '(28, 28, 1)'),
        'count': ({'x': x, 'y': y[:16]}, '16'),
        'one-hot': ({'x': x, 'y': np.eye(10, dtype=np.int32)[y]}, 'argmax'),
        'float labels': ({'x': x, 'y': y.astype(np.float32)}, 'integer'),
        'label 10': ({'x': x, 'y': np.where(y == 3, 10, y)}, '[0, 10)'),
        'label -1': ({'x': x, 'y': np.where(y == 3, -1, y)}, '[0, 10)'),
    }
    for what, (batch, words) in bad.items():
        with pytest.raises(ValueError, match=re.escape(words)):
            step(state.params, state.rule_state, batch, k)
        if not what.startswith('label'):
            with pytest.raises(ValueError, match=re.escape(words)):
                jax.jit(step)(state.params, state.rule_state, batch, k)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_cnn_step(name, digits):
    model = models.cnn((8, 8, 1), 10, channels=(8,), dense_widths=(32,))
    rule, opt, state = _setup(name, model)
    step = jax.jit(train.make_train_step(rule, opt))
    batch = _batch(digits)
    before = state.params
    for _ in range(2):
        state, metrics = step(state, batch)
    assert np.isfinite(float(metrics['loss']))
    changed = [not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(before['layers']), jax.tree.leaves(state.params['layers']))]
    assert any(changed), f'{name} did not change any CNN layer'
    assert rule.predict(state.params, state.rule_state, batch['x']).shape == (32, 10)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_state_roundtrips_through_checkpoint(name, digits, tmp_path):
    rule, opt, state = _setup(name, _mlp())
    step = jax.jit(train.make_train_step(rule, opt))
    state, _ = step(state, _batch(digits))
    ckpt = ocp.StandardCheckpointer()
    path = os.path.join(tmp_path, 'state')
    ckpt.save(path, state)
    ckpt.wait_until_finished()
    restored = ckpt.restore(path, state)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Continuing from the restored state is bit-identical to continuing from the original.
    next_a, _ = step(state, _batch(digits, offset=32))
    next_b, _ = step(restored, _batch(digits, offset=32))
    for a, b in zip(jax.tree.leaves(next_a.params), jax.tree.leaves(next_b.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


LAYERWISE_NAMES = [n for n in RULE_NAMES if registry.has_layerwise(n)]


@pytest.mark.parametrize('name', LAYERWISE_NAMES)
def test_layerwise_step_equals_step_plus_one_update(name, digits, tmp_path):
    # Adam is element-wise: stepping block by block inside the pass must give the
    # numbers of one update after it; the layerwise state also checkpoints.
    rule, layerwise_rule = registry.build(name, _mlp()), registry.build(name, _mlp(),
                                                                        layerwise=True)
    opt = optax.adam(optax.cosine_decay_schedule(1e-2, 10))
    key = jax.random.PRNGKey(0)
    whole = train.init_state(key, _mlp(), rule, opt)
    layerwise = train.init_state(key, _mlp(), layerwise_rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    layerwise_step = jax.jit(train.make_train_step(layerwise_rule, opt))
    for i in range(3):
        whole, m_whole = step(whole, _batch(digits, offset=32 * i))
        layerwise, m_layer = layerwise_step(layerwise, _batch(digits, offset=32 * i))
    np.testing.assert_allclose(float(m_layer['loss']), float(m_whole['loss']), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(layerwise.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    ckpt = ocp.StandardCheckpointer()
    path = os.path.join(tmp_path, 'state')
    ckpt.save(path, layerwise)
    ckpt.wait_until_finished()
    restored = ckpt.restore(path, layerwise)
    assert isinstance(restored.opt_state, train.LayerwiseOptState)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(layerwise)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize('name', RULE_NAMES)
def test_pmap_exact_says_whether_the_update_is_a_mean_of_slices(name, digits):
    # registry.pmap_exact (what a pmap run is told) must match the property it stands for: a
    # full-batch step equals the mean of 4 equal slices' steps. A new rule is exact unless its
    # registry line says PMAP_INEXACT, so an inexact one that forgot the mark fails here.
    from tests.parallel.equivalence import batch_decomposable
    rule, _, state = _setup(name, _mlp())
    decomposable, diff = batch_decomposable(rule, state.params, state.rule_state,
                                            _batch(digits, n=64), jax.random.PRNGKey(1), 4)
    assert registry.pmap_exact(name) == decomposable, (name, diff)
