"""What a notebook user of `train.init_state` / `make_train_step` / `make_epoch` /
`make_evaluate` gets for two easy mistakes, and that valid states still train.

- A state whose optimizer state another optimizer made is refused at trace time with
  one line naming the fix (it failed inside optax: `'EmptyState' object has no
  attribute 'mu'`). Valid states (restored from a checkpoint, vmapped, layerwise, or
  made by the same optimizer with other hyperparameters) step exactly as optax does.
- Concrete labels outside [0, num_classes) are refused with `rules.check_batch`'s
  message (they were an all-zero one-hot row: a silent zero loss and a wrong
  accuracy); the class count is read from the rule's logits.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, rules, train
from neurokit.rules.base import check_batch
from neurokit.experiment.checkpoint import Checkpointer

N, BATCH = 256, 64


@pytest.fixture(scope='module')
def setup(digits):
    x, y, _, _ = digits
    model = models.mlp((8, 8, 1), 10, hidden=(16,))
    return model, rules.bp(model), x[:N], y[:N]


def _same(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def _by_hand(rule, opt, state, batch):
    """One step as the rule interface defines it: rule.step, then the optax update."""
    updates, rule_state, _ = rule.step(state.params, state.rule_state, batch,
                                       train.step_key(state))
    updates, opt_state = opt.update(updates, state.opt_state, state.params)
    return state._replace(params=optax.apply_updates(state.params, updates),
                          opt_state=opt_state, rule_state=rule_state, step=state.step + 1)


# ----------------------------------------------------------------------------- optimizer state

MISMATCHES = {
    'sgd state, adam step': (lambda: optax.sgd(0.1), lambda: optax.adam(1e-3),
                             'it holds EmptyState, EmptyState, but this optimizer makes '
                             'ScaleByAdamState, EmptyState'),
    'adam state, clipped adam step': (lambda: optax.adam(1e-3),
                                      lambda: optax.chain(optax.clip_by_global_norm(1.0),
                                                          optax.adam(1e-3)),
                                      'it holds ScaleByAdamState, EmptyState, but this optimizer '
                                      'makes EmptyState, ScaleByAdamState, EmptyState'),
    'adam state, momentum step': (lambda: optax.adam(1e-3),
                                  lambda: optax.sgd(0.1, momentum=0.9), 'made by another'),
}
FIX = r're-create the state with neurokit\.train\.init_state\(key, model, rule, optimizer\)'


@pytest.mark.parametrize('case', sorted(MISMATCHES))
@pytest.mark.parametrize('entry', ['train_step', 'epoch'])
def test_a_state_made_by_another_optimizer_is_refused_when_traced(setup, case, entry):
    model, rule, x, y = setup
    made_with, stepped_with, names = MISMATCHES[case]
    state = train.init_state(jax.random.PRNGKey(0), model, rule, made_with())
    opt = stepped_with()
    if entry == 'train_step':
        fn, args = train.make_train_step(rule, opt), (state, {'x': x[:BATCH], 'y': y[:BATCH]})
    else:
        fn, args = train.make_epoch(rule, opt, BATCH), (state, x, y, 0)
    with pytest.raises(ValueError) as e:
        jax.jit(fn).lower(*args)  # tracing alone: nothing has run
    msg = str(e.value)
    assert '\n' not in msg and names in msg, msg
    assert msg.startswith('the optimizer state was made by another optimizer'), msg
    assert re.search(FIX, msg), msg


def test_a_layerwise_state_of_another_optimizer_is_refused(setup):
    model, _, x, y = setup
    rule = rules.build('mf', model, layerwise=True)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, optax.sgd(0.1))
    with pytest.raises(ValueError, match='made by another optimizer: it holds LayerwiseOptState, '
                                         'EmptyState, EmptyState'):
        train.make_train_step(rule, optax.adam(1e-3))(state, {'x': x[:BATCH], 'y': y[:BATCH]})


def test_an_optimizer_state_made_for_other_params_is_refused(setup):
    model, rule, x, y = setup
    wider = models.mlp((8, 8, 1), 10, hidden=(16, 16))
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    state = state._replace(opt_state=opt.init(wider.init(jax.random.PRNGKey(0))))
    with pytest.raises(ValueError, match=r'does not fit this optimizer and these params .*' + FIX):
        train.make_train_step(rule, opt)(state, {'x': x[:BATCH], 'y': y[:BATCH]})


def test_the_same_optimizer_with_other_hyperparameters_steps_as_optax_does(setup):
    # Hyperparameters live in the optimizer, not its state: adam(1e-3)'s state stepped
    # with adam(1e-2) is what optax itself computes (a schedule change on resume).
    model, rule, x, y = setup
    state = train.init_state(jax.random.PRNGKey(0), model, rule, optax.adam(1e-3))
    batch = {'x': x[:BATCH], 'y': y[:BATCH]}
    new, _ = train.make_train_step(rule, optax.adam(1e-2))(state, batch)
    _same(new, _by_hand(rule, optax.adam(1e-2), state, batch))


def test_a_state_restored_from_a_checkpoint_steps_like_the_saved_one(setup, tmp_path):
    model, rule, x, y = setup
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    epoch = jax.jit(train.make_epoch(rule, opt, BATCH))
    state, _ = epoch(train.init_state(jax.random.PRNGKey(0), model, rule, opt), x, y, 0)
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(1, state, {})
    restored, _ = ckpt.restore(1, like=state)
    ckpt.close()
    _same(epoch(restored, x, y, 1)[0], epoch(state, x, y, 1)[0])


def test_a_vmapped_state_steps_each_member_as_alone(setup):
    # a leading member axis (sweeps, num_seeds) changes shapes, not the tree structure
    model, rule, x, y = setup
    opt = optax.adam(1e-3)
    keys = [jax.random.PRNGKey(s) for s in (0, 1)]
    members = jax.vmap(lambda k: train.init_state(k, model, rule, opt))(jnp.stack(keys))
    batch = {'x': x[:BATCH], 'y': y[:BATCH]}
    stepped, _ = jax.jit(jax.vmap(train.make_train_step(rule, opt), (0, None)))(members, batch)
    for i, k in enumerate(keys):
        alone = train.init_state(k, model, rule, opt)
        member = jax.tree.map(lambda a: a[i], stepped)
        for u, v in zip(jax.tree.leaves(member),
                        jax.tree.leaves(_by_hand(rule, opt, alone, batch)), strict=True):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-7)


def test_a_layerwise_state_steps_as_one_update_after_the_pass(setup):
    # for adam (element-wise) the per-block states give the whole-tree update (rules/base.py)
    model, _, x, y = setup
    rule, opt = rules.build('mf', model), optax.adam(1e-3)
    layerwise_rule = rules.build('mf', model, layerwise=True)
    batch = {'x': x[:BATCH], 'y': y[:BATCH]}
    whole = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    layerwise = train.init_state(jax.random.PRNGKey(0), model, layerwise_rule, opt)
    stepped, _ = jax.jit(train.make_train_step(layerwise_rule, opt))(layerwise, batch)
    assert isinstance(stepped.opt_state, train.LayerwiseOptState)
    for u, v in zip(jax.tree.leaves(stepped.params),
                    jax.tree.leaves(_by_hand(rule, opt, whole, batch).params), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize('shift', [1, -1])
def test_concrete_labels_outside_the_classes_are_refused_as_check_batch_does(setup, shift):
    model, rule, x, y = setup
    opt = optax.adam(1e-3)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    bad = np.asarray(y) + shift  # digits hold every class, so 10 (or -1) occurs
    with pytest.raises(ValueError) as expected:
        check_batch(model, {'x': x, 'y': bad})
    calls = {
        'epoch': lambda: train.make_epoch(rule, opt, BATCH)(state, x, bad, 0),
        'evaluate': lambda: train.make_evaluate(rule, 100)(state.params, state.rule_state, x,
                                                           bad),
        'vmapped epoch': lambda: jax.vmap(train.make_epoch(rule, opt, BATCH),
                                          (0, None, None, None))(
            jax.tree.map(lambda a: a[None], state), x, jnp.asarray(bad), 0),
    }
    found = f'found {int(bad.min())}..{int(bad.max())}'
    for name, call in calls.items():
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == str(expected.value), name
        assert str(e.value).startswith(f'labels fall outside [0, 10) ({found})'), str(e.value)


def test_the_class_count_is_that_of_the_rules_logits(digits):
    x, y, _, _ = digits
    model = models.mlp((8, 8, 1), 3, hidden=(8,))  # 3 classes: labels 0..2
    rule = rules.build('ff', model)
    keep = np.asarray(y[:N]) < 4
    xs, ys = x[:N][keep], np.asarray(y[:N])[keep]
    state = train.init_state(jax.random.PRNGKey(0), model, rule, optax.adam(1e-3))
    with pytest.raises(ValueError, match=r'labels fall outside \[0, 3\) \(found 0\.\.3\)'):
        train.make_evaluate(rule, 100)(state.params, state.rule_state, xs, ys)
    ok = ys < 3
    acc = train.make_evaluate(rule, 100)(state.params, state.rule_state, xs[ok], ys[ok])
    pred = np.argmax(np.asarray(rule.predict(state.params, state.rule_state, xs[ok])), -1)
    np.testing.assert_allclose(float(acc), np.mean(pred == ys[ok]), rtol=1e-6)


def test_labels_in_range_train_the_same_with_or_without_jit(setup):
    # the check reads concrete labels only: under jit they are traced and it stays out
    model, rule, x, y = setup
    opt = optax.sgd(0.1)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    epoch = train.make_epoch(rule, opt, BATCH)
    eager, m_eager = epoch(state, x, np.asarray(y), 0)
    jitted, m_jit = jax.jit(epoch)(state, x, y, 0)
    for u, v in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(m_eager['loss']), float(m_jit['loss']), rtol=1e-5)
