"""Counter-Current Learning against its definition.

* Every layer's update, forward and feedback, is `jax.grad` of that layer's own local loss,
  written here from the paper's equations and the authors' MLP loss
  (`mean((A G^T - onehot)^2) / d * 0.5 * 256`), with the other side of each pair held
  constant (float32, relative 1e-5).
* Which update depends on what: forward hidden layer l learns from the feedback
  activations b_l, so it changes with the feedback maps above it and with no map below;
  the output layer (cross-entropy only) ignores the feedback net; a feedback map learns
  from the forward activation of its pair, so it ignores the forward layers above it.
* The feedback net is its own parameter group: with SGD and two learning rates, each group
  steps by its own rate times its update.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from neurokit import models, optim, train
from neurokit.rules.ccl import ccl

K = 4
SCALE = 0.5 * 256  # the authors' loss_scale_C and the literal 256


def _setup(seed=0):
    model = models.mlp((12,), K, hidden=(10, 8), activation='elu')
    rule = ccl(model)
    key = jax.random.PRNGKey(seed)
    params = rule.init_params(key, model.init(key))
    kx, ky = jax.random.split(jax.random.PRNGKey(seed + 1))
    batch = {'x': jax.random.normal(kx, (16, 12)), 'y': jax.random.randint(ky, (16,), 0, K)}
    return model, rule, params, batch


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _pair(a, g, y):
    """The MLP pair loss: B x K similarity against the one-hot labels."""
    return jnp.mean((a @ g.T - jax.nn.one_hot(y, K)) ** 2) / a.shape[1] * SCALE


def _expected(params, x, y):
    """Each layer's gradient of its own local loss, from the equations."""
    (w0, b0), (w1, b1), (w2, b2) = [(p['w'], p['b']) for p in params['layers']]
    v0, v1, v2 = [f['w'] for f in params['feedback']]
    # forward activations a_0..a_2 and the feedback net's b_0..b_2 on the K one-hots
    a1 = jax.nn.elu(x @ w0 + b0)
    a2 = jax.nn.elu(a1 @ w1 + b1)
    g2 = jax.nn.elu(jnp.eye(K) @ v2)
    g1 = jax.nn.elu(g2 @ v1)  # (b_0 = g1 @ v0, without an activation: the authors' act=False)
    ce = lambda logits: -jnp.mean(jnp.sum(jax.nn.one_hot(y, K) * jax.nn.log_softmax(logits), -1))
    layers = (
        jax.grad(lambda w, b: _pair(jax.nn.elu(x @ w + b), g1, y), (0, 1))(w0, b0),
        jax.grad(lambda w, b: _pair(jax.nn.elu(a1 @ w + b), g2, y), (0, 1))(w1, b1),
        jax.grad(lambda w, b: ce(a2 @ w + b), (0, 1))(w2, b2),
    )
    feedback = (
        jax.grad(lambda v: _pair(x, g1 @ v, y))(v0),
        jax.grad(lambda v: _pair(a1, jax.nn.elu(g2 @ v), y))(v1),
        jax.grad(lambda v: _pair(a2, jax.nn.elu(jnp.eye(K) @ v), y))(v2),
    )
    return layers, feedback


def test_every_update_is_the_gradient_of_its_own_local_loss():
    _, rule, params, batch = _setup()
    updates, _, metrics = rule.step(params, rule.init(None, params), batch, None)
    layers, feedback = _expected(params, batch['x'], batch['y'])
    for l, (u, (gw, gb)) in enumerate(zip(updates['layers'], layers)):
        assert _rel(u['w'], gw) < 1e-5, ('layer', l, _rel(u['w'], gw))
        assert _rel(u['b'], gb) < 1e-5, ('layer', l, _rel(u['b'], gb))
    for l, (u, gv) in enumerate(zip(updates['feedback'], feedback)):
        assert _rel(u['w'], gv) < 1e-5, ('feedback', l, _rel(u['w'], gv))
    logits = rule.predict(params, None, batch['x'])
    ce = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), batch['y']])
    np.testing.assert_allclose(metrics['loss'], ce, rtol=1e-6)


def _perturbed(params, part, i):
    tree = list(params[part])
    tree[i] = {**tree[i], 'w': tree[i]['w'] * 1.5}
    return {**params, part: tuple(tree)}


def _changed(rule, params, other, batch):
    """Which layers' and feedback maps' updates differ between `params` and `other`."""
    u, _, _ = rule.step(params, None, batch, None)
    v, _, _ = rule.step(other, None, batch, None)
    diff = lambda a, b: not np.allclose(a['w'], b['w'], rtol=1e-6, atol=1e-9)
    return ([diff(a, b) for a, b in zip(u['layers'], v['layers'])],
            [diff(a, b) for a, b in zip(u['feedback'], v['feedback'])])


def test_updates_depend_on_what_their_local_losses_read():
    _, rule, params, batch = _setup()
    # feedback map j (V_{j+1}) makes b_j, and through it every b below; forward layer i
    # pairs with b_{i+1}, so it sees map j iff j >= i + 1; the output layer sees none
    for j in range(3):
        forward, _ = _changed(rule, params, _perturbed(params, 'feedback', j), batch)
        assert forward == [j >= 1, j >= 2, False], (j, forward)
    # forward layer i makes a_{i+1}, and every a above; feedback map j pairs with a_j, so
    # it sees layer i iff i < j
    for i in range(3):
        _, feedback = _changed(rule, params, _perturbed(params, 'layers', i), batch)
        assert feedback == [False, i < 1, i < 2], (i, feedback)
    # every local loss reads the labels
    relabelled = {**batch, 'y': batch['y'].at[0].set((batch['y'][0] + 1) % K)}
    u, _, _ = rule.step(params, None, batch, None)
    v, _, _ = rule.step(params, None, relabelled, None)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v)):
        assert not np.allclose(a, b, rtol=1e-6, atol=1e-9)


def test_the_feedback_net_steps_with_its_own_optimizer_settings():
    model, rule, _, batch = _setup()
    cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1, 'momentum': 0.0,
                                     'weight_decay': 0.0, 'schedule': 'constant',
                                     'warmup_epochs': 0.0, 'grad_clip': 0.0})
    opt = optim.build(cfg, 10, 1, groups={'feedback': {'learning_rate': 0.7}},
                      labels=rule.param_labels)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    new, _ = train.make_train_step(rule, opt)(state, batch)
    updates, _, _ = rule.step(state.params, state.rule_state, batch, None)
    for part, lr in (('layers', 0.1), ('feedback', 0.7)):
        for before, after, u in zip(jax.tree.leaves(state.params[part]),
                                    jax.tree.leaves(new.params[part]),
                                    jax.tree.leaves(updates[part])):
            np.testing.assert_allclose(after, before - lr * u, rtol=1e-6, atol=1e-7)
    labels = rule.param_labels(state.params)
    assert set(jax.tree.leaves(labels['layers'])) == {'forward'}
    assert set(jax.tree.leaves(labels['feedback'])) == {'feedback'}


def test_refusals_name_the_fix():
    cnn = models.cnn((8, 8, 1), 10, channels=(4,), dense_widths=(8,))
    with pytest.raises(ValueError, match="dense layers only.*config.model.name='mlp'"):
        ccl(cnn)
    mlp = models.mlp((16,), 4, hidden=(8,))
    with pytest.raises(ValueError, match='loss_scale must be a finite number > 0'):
        ccl(mlp, loss_scale=0.0)
    with pytest.raises(ValueError, match='width_scale'):
        ccl(mlp, width_scale=float('nan'))
    rule = ccl(mlp)
    params = mlp.init(jax.random.PRNGKey(0))  # without the rule's init_params
    batch = {'x': jnp.zeros((2, 16)), 'y': jnp.zeros((2,), jnp.int32)}
    with pytest.raises(ValueError, match="no 'feedback'.*rule.init_params"):
        rule.step(params, None, batch, None)
