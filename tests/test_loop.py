"""The compiled training loop: data order, scan = Python loop, evaluation, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurokit import models, rules, train
from neurokit.rules.base import EmptyState, Rule


def test_epoch_order_is_a_permutation_cut_into_batches(key):
    order = np.asarray(train.epoch_order(key, 3, 103, 10))
    assert order.shape == (10, 10)
    assert len(set(order.ravel())) == 100 and order.max() < 103
    np.testing.assert_array_equal(order, np.asarray(train.epoch_order(key, 3, 103, 10)))
    assert not np.array_equal(order, np.asarray(train.epoch_order(key, 4, 103, 10)))


def test_scanned_epoch_equals_python_loop(digits, key):
    x, y, _, _ = digits
    m = models.mlp((8, 8, 1), 10, hidden=(16,))
    rule, opt = rules.bp(m), optax.sgd(0.1, momentum=0.9)
    state = train.init_state(key, m, rule, opt)
    scanned, metrics = jax.jit(train.make_epoch(rule, opt, 100))(state, x, y, 0)
    step = jax.jit(train.make_train_step(rule, opt))
    losses = []
    for idx in np.asarray(train.epoch_order(state.key, 0, x.shape[0], 100)):
        state, m_ = step(state, {'x': x[idx], 'y': y[idx]})
        losses.append(float(m_['loss']))
    assert int(scanned.step) == int(state.step) == x.shape[0] // 100
    for a, b in zip(jax.tree.leaves(scanned.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(metrics['loss']), np.mean(losses), rtol=1e-5)


def test_evaluate_counts_every_example_once(key):
    # A 'rule' that predicts class x[0] > 0: accuracy is known exactly, with n not a
    # multiple of the eval batch so the padding path is exercised.
    predict = lambda p, s, x: jnp.stack([-x[:, 0], x[:, 0]], -1)
    rule = Rule(lambda k, p: EmptyState(), None, predict)
    x = jnp.asarray(np.r_[np.ones(7), -np.ones(6)][:, None])
    y = jnp.asarray(np.r_[np.ones(5), np.zeros(2), np.zeros(6)].astype(np.int32))
    acc = jax.jit(train.make_evaluate(rule, 4))(None, EmptyState(), x, y)
    np.testing.assert_allclose(float(acc), 11 / 13, rtol=1e-6)


def test_applies_updates_bypasses_the_optimizer(key):
    # A rule that ran its own optimizer returns final increments: the loop adds them as they are.
    params = {'layers': ({'w': jnp.ones(3)},)}
    inc = {'layers': ({'w': jnp.full(3, 0.5)},)}
    rule = Rule(lambda k, p: EmptyState(), lambda p, s, b, k: (inc, s, {'loss': 0.0}),
                lambda p, s, x: x, applies_updates=True)
    opt = optax.sgd(100.0)
    state = train.TrainState(params, opt.init(params), EmptyState(), key, jnp.zeros((), jnp.int32))
    new, _ = train.make_train_step(rule, opt)(state, {'x': None, 'y': None})
    np.testing.assert_array_equal(np.asarray(new.params['layers'][0]['w']), np.full(3, 1.5))


def test_training_is_deterministic_given_the_seed(digits):
    x, y, _, _ = digits
    m = models.mlp((8, 8, 1), 10, hidden=(16,))
    rule, opt = rules.bp(m), optax.adam(1e-3)
    epoch = jax.jit(train.make_epoch(rule, opt, 64))
    runs = []
    for _ in range(2):
        s = train.init_state(jax.random.PRNGKey(7), m, rule, opt)
        for e in range(2):
            s, _ = epoch(s, x, y, e)
        runs.append(s.params)
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = train.init_state(jax.random.PRNGKey(8), m, rule, opt)
    assert not np.array_equal(np.asarray(other.params['layers'][0]['w']),
                              np.asarray(runs[0]['layers'][0]['w']))
