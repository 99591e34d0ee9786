"""The conformance battery: every registered rule passes the same checks.

A rule is one file, one registry line and a config; this battery picks it up untouched.
Checks: jits without retracing, learns a toy task, updates keep the params'
tree and dtypes, vmap over members equals separate calls, works on a CNN, and
the whole training state round-trips through an orbax checkpoint.
"""
import os
import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from neurokit import models, rules, train
from neurokit.rules import registry

RULE_NAMES = sorted(registry.RULES)
# A rule declares the Adam step it learns the toy task with (`registry.capabilities`; random
# feedback needs a larger one to learn as fast) and the layer kinds it trains; same budget
# for all.
TOY_EPOCHS = 5


def _mlp(dtype=jnp.float32):
    return models.mlp((8, 8, 1), 10, hidden=(64, 64), dtype=dtype)


def _batch(digits, n=32, offset=0):
    x, y, _, _ = digits
    return {'x': x[offset:offset + n], 'y': y[offset:offset + n]}


def _setup(name, model, key=jax.random.PRNGKey(0)):
    rule = registry.build(name, model)
    opt = optax.adam(registry.capabilities(name).toy_learning_rate)
    return rule, opt, train.init_state(key, model, rule, opt)


_CASES = {}
_CKPT = []


def _checkpointer():
    """The module's one orbax checkpointer (created on first use, not at collection)."""
    if not _CKPT:
        _CKPT.append(ocp.StandardCheckpointer())
    return _CKPT[0]


def _case(name):
    """The rule's float32 MLP case, built once per module: model, rule, optimizer, initial
    state and ONE jitted training step that counts its traces.

    Every check that steps the float32 MLP with a batch of 32 uses this step, so a rule's
    step is compiled once and `traces` counts every trace the module caused.

    Args:
      name: a registered rule name.

    Returns:
      A namespace with model, rule, opt, state, traces (list, one entry per trace) and step.
    """
    if name not in _CASES:
        model = _mlp()
        rule, opt, state = _setup(name, model)
        traces = []

        def counted(s, b):
            traces.append(1)
            return train.make_train_step(rule, opt)(s, b)

        _CASES[name] = types.SimpleNamespace(model=model, rule=rule, opt=opt, state=state,
                                             traces=traces, step=jax.jit(counted))
    return _CASES[name]


@pytest.mark.parametrize('name', RULE_NAMES)
def test_step_jits_once(name, digits):
    case = _case(name)
    state = case.state
    for i in range(3):
        state, metrics = case.step(state, _batch(digits, offset=32 * i))
    jax.block_until_ready(state)
    assert len(case.traces) == 1
    assert np.isfinite(float(metrics['loss']))


@pytest.mark.parametrize('name', RULE_NAMES)
def test_learns_digits(name, digits):
    x, y, xt, yt = digits
    case = _case(name)
    rule, opt, state = case.rule, case.opt, case.state
    epoch = jax.jit(train.make_epoch(rule, opt, 64))
    for e in range(TOY_EPOCHS):
        state, metrics = epoch(state, x, y, e)
    acc = float(jax.jit(train.make_evaluate(rule, 500))(state.params, state.rule_state, xt, yt))
    assert acc >= 0.80, f'{name}: digits test accuracy {acc:.3f} after {TOY_EPOCHS} epochs'


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('name', RULE_NAMES)
def test_updates_keep_tree_and_dtypes(name, dtype, digits):
    batch = _batch(digits)
    key = jax.random.PRNGKey(1)
    if dtype == jnp.float32:
        # make_train_step is with_optimizer(rule).step with its outputs put in a TrainState,
        # so the module's one compiled float32 step gives the adapted step's outputs.
        case = _case(name)
        rule, state = case.rule, case.state
        new_state, metrics = case.step(state, batch)
        outs = [(new_state.params, new_state.rule_state, new_state.opt_state, metrics)]
        if isinstance(rule, rules.Rule):  # a plain rule's own updates (shared with pmap_exact)
            outs.append(jax.jit(rule.step)(state.params, state.rule_state, batch, key))
    else:
        rule, opt, state = _setup(name, _mlp(dtype))
        plain = isinstance(rule, rules.Rule)

        @jax.jit  # the adapted step and a plain rule's own updates: one compilation
        def both(s):
            adapted = rules.with_optimizer(rule).step(s.params, s.rule_state, s.opt_state,
                                                      batch, key, opt)
            return adapted, (rule.step(s.params, s.rule_state, batch, key) if plain else None)

        adapted, own = both(state)
        outs = [adapted] + ([own] if plain else [])
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
    case = _case(name)
    model, rule, opt = case.model, case.rule, case.opt
    # Two members initialised one by one and stacked (op by op, nothing to compile); what is
    # compared is the vmapped step with the step on each member alone.
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]),
                          *(train.init_state(jax.random.PRNGKey(k), model, rule, opt)
                            for k in (3, 4)))
    batches = jax.tree.map(lambda a, b: jnp.stack([a, b]), _batch(digits), _batch(digits, offset=32))
    together, _ = jax.jit(jax.vmap(train.make_train_step(rule, opt)))(states, batches)
    for i in range(2):
        alone, _ = case.step(jax.tree.map(lambda a: a[i], states),
                             jax.tree.map(lambda a: a[i], batches))
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', RULE_NAMES)
def test_step_takes_numpy_batches_and_refuses_bad_ones(name, digits):
    """A data set's numpy arrays work as they are; a batch the model cannot take, float
    labels, or labels outside [0, 10) (a zero one-hot row: silently no loss) are a
    ValueError naming the problem, whether the step is jitted or not (labels: outside
    jit, where their values are known)."""
    case = _case(name)
    rule, opt, state = case.rule, case.opt, case.state
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
    if 'conv' not in registry.capabilities(name).layers:  # declared: dense layers only
        with pytest.raises(ValueError, match='dense layers only'):
            registry.build(name, model)
        return
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


@pytest.fixture(scope='module')
def roundtrip(digits, tmp_path_factory):
    """Every rule's state after one step, saved in ONE orbax checkpoint and restored.

    One save and one restore for the module instead of one per rule (each costs orbax's
    start-up); every rule's state is its own subtree, checked by its own case below.

    Returns:
      {name: (state, restored state)}.
    """
    states = {n: _case(n).step(_case(n).state, _batch(digits))[0] for n in RULE_NAMES}
    ckpt = _checkpointer()
    path = os.path.join(tmp_path_factory.mktemp('conformance'), 'state')
    ckpt.save(path, states)
    ckpt.wait_until_finished()
    restored = ckpt.restore(path, states)
    return {n: (states[n], restored[n]) for n in RULE_NAMES}


@pytest.mark.parametrize('name', RULE_NAMES)
def test_state_roundtrips_through_checkpoint(name, digits, roundtrip):
    step = _case(name).step
    state, restored = roundtrip[name]
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
    case = _case(name)
    rule, layerwise_rule = case.rule, registry.build(name, case.model, layerwise=True)
    opt = optax.adam(optax.cosine_decay_schedule(1e-2, 10))
    key = jax.random.PRNGKey(0)
    whole = train.init_state(key, case.model, rule, opt)
    layerwise = train.init_state(key, case.model, layerwise_rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    layerwise_step = jax.jit(train.make_train_step(layerwise_rule, opt))
    for i in range(3):
        whole, m_whole = step(whole, _batch(digits, offset=32 * i))
        layerwise, m_layer = layerwise_step(layerwise, _batch(digits, offset=32 * i))
    np.testing.assert_allclose(float(m_layer['loss']), float(m_whole['loss']), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(layerwise.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    ckpt = _checkpointer()
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
    # full-batch step equals the mean of 4 equal slices' steps. A new rule is exact unless it
    # declares pmap_exact=False, so an inexact one that forgot to say so fails here.
    # A batch of 32 (4 slices of 8): the full-batch rule.step is the one compiled for the
    # float32 tree check (same rule object, shapes and key), so only the slice step compiles.
    from tests.parallel.equivalence import batch_decomposable
    case = _case(name)
    decomposable, diff = batch_decomposable(case.rule, case.state.params, case.state.rule_state,
                                            _batch(digits, n=32), jax.random.PRNGKey(1), 4)
    assert registry.pmap_exact(name) == decomposable, (name, diff)
