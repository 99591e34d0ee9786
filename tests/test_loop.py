"""The compiled training loop: data order, evaluation, the adapted step, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, rules, train
from neurokit.rules.base import EmptyState, Rule


def test_epoch_order_is_a_permutation_cut_into_batches(key):
    order = np.asarray(train.epoch_order(key, 3, 103, 10))
    assert order.shape == (10, 10)
    assert len(set(order.ravel())) == 100 and order.max() < 103
    np.testing.assert_array_equal(order, np.asarray(train.epoch_order(key, 3, 103, 10)))
    assert not np.array_equal(order, np.asarray(train.epoch_order(key, 4, 103, 10)))


# The scanned epoch equals its steps in a Python loop, its mean loss is theirs and a last
# partial batch is dropped: tests/train/test_one_epoch.py::test_epoch_is_its_steps checks
# this for a rule of each kind, with a data size that is not a multiple of the batch.


def test_evaluate_counts_every_example_once(key):
    # A 'rule' that predicts class x[0] > 0: accuracy is known exactly, with n not a
    # multiple of the eval batch so the padding path is exercised.
    predict = lambda p, s, x: jnp.stack([-x[:, 0], x[:, 0]], -1)
    rule = Rule(lambda k, p: EmptyState(), None, predict)
    x = jnp.asarray(np.r_[np.ones(7), -np.ones(6)][:, None])
    y = jnp.asarray(np.r_[np.ones(5), np.zeros(2), np.zeros(6)].astype(np.int32))
    acc = jax.jit(train.make_evaluate(rule, 4))(None, EmptyState(), x, y)
    np.testing.assert_allclose(float(acc), 11 / 13, rtol=1e-6)


# The adapter does not look inside the rule, so one rule shows it: fa, whose rule state
# (the feedback matrices) also travels through the adapted step (bp's is empty).
@pytest.mark.parametrize('name', ['fa'])
def test_adapted_rule_steps_as_rule_step_then_the_optimizer(name, digits, key):
    # with_optimizer(rule) is the training step of a plain rule: rule.step, then
    # optimizer.update and optax.apply_updates, bit for bit (through make_train_step too).
    x, y, _, _ = digits
    m = models.mlp((8, 8, 1), 10, hidden=(16,))
    rule, opt = rules.build(name, m), optax.adamw(optax.cosine_decay_schedule(1e-2, 5), 0.1)
    state = train.init_state(key, m, rule, opt)

    @jax.jit
    def by_hand(state, batch):
        updates, rule_state, metrics = rule.step(state.params, state.rule_state, batch,
                                                 train.step_key(state))
        updates, opt_state = opt.update(updates, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), rule_state, opt_state, metrics

    adapted = rules.with_optimizer(rule)
    assert isinstance(adapted, rules.OptimizerRule) and rules.with_optimizer(adapted) is adapted
    adapted_step = jax.jit(lambda s, b: adapted.step(s.params, s.rule_state, s.opt_state, b,
                                                     train.step_key(s), opt))
    train_step = jax.jit(train.make_train_step(rule, opt))
    stepped = state
    for i in range(3):
        batch = {'x': x[32 * i:32 * (i + 1)], 'y': y[32 * i:32 * (i + 1)]}
        want = by_hand(stepped, batch)
        got = adapted_step(stepped, batch)
        stepped, metrics = train_step(stepped, batch)
        for out in (got, (stepped.params, stepped.rule_state, stepped.opt_state, metrics)):
            assert jax.tree.structure(out) == jax.tree.structure(want)
            for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(want)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


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
