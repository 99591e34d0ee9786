"""Forward-forward rules: locality, closed-form updates, label prediction, modes."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models
from neurokit.rules import ff_ops
from neurokit.rules.ff import cff, ff

C = 4
KEY = jax.random.PRNGKey(0)


def _mlp(hidden=(12, 10, 8)):
    return models.mlp((3, 3, 1), C, hidden)


def _batch(n=6, shape=(3, 3, 1), seed=1):
    rng = np.random.default_rng(seed)
    return {'x': jnp.asarray(rng.uniform(size=(n,) + shape).astype(np.float32)),
            'y': jnp.asarray(rng.integers(0, C, n).astype(np.int32))}


def _setup(rule, model, seed=0):
    k = jax.random.PRNGKey(seed)
    params = rule.init_params(k, model.init(k))
    return params, rule.init(k, params)


def _perturb_after(params, l):
    layers = tuple(jax.tree.map(lambda a: a * 1.7 + 0.3, p) if i > l else p
                   for i, p in enumerate(params['layers']))
    return dict(params, layers=layers)


# One case per mode (and cff). The loss (logistic or symba) only maps a layer's own
# goodness to its loss, so it cannot change which layers an update reads: no symba case.
@pytest.mark.parametrize('make', [
    lambda m: ff(m),
    lambda m: ff(m, mode='unsupervised'),
    lambda m: ff(m, mode='supervised', predict='head'),
    lambda m: ff(m, mode='class_groups', class_goodness='aux'),
    lambda m: cff(m, earlier_only=True),
])
def test_update_of_layer_l_ignores_later_layers(make):
    model = _mlp()
    rule = make(model)
    params, state = _setup(rule, model)
    batch = _batch()
    step = jax.jit(rule.step)
    base, _, _ = step(params, state, batch, KEY)
    for l in range(len(model.layers) - 2):
        other, _, _ = step(_perturb_after(params, l), state, batch, KEY)
        for i in range(l + 1):
            for k in ('w', 'b'):
                np.testing.assert_allclose(other['layers'][i][k], base['layers'][i][k],
                                           rtol=1e-6, atol=1e-7)
    # The model's logits layer is not part of FF: zero update.
    for k in ('w', 'b'):
        assert not np.any(np.asarray(base['layers'][-1][k]))


def _raw_layer_inputs(params, x, model):
    """Inputs of each hidden layer computed by hand (rms-normalised activities)."""
    h, inputs = x.reshape(x.shape[0], -1), []
    for p in params['layers'][:-1]:
        h = h / jnp.sqrt(jnp.mean(h ** 2, -1, keepdims=True) + 1e-6)
        inputs.append(h)
        h = jax.nn.relu(h @ p['w'] + p['b'])
    return inputs


@pytest.mark.parametrize('collaborative', [False, True])
def test_updates_equal_per_layer_closed_form(collaborative):
    """Each layer's update is the gradient of its own loss with a constant input (and gamma)."""
    model = _mlp()
    theta, alpha = 0.7, 3.0
    make = cff if collaborative else ff
    rule = make(model, loss='logistic', threshold=theta, alpha=alpha, goodness='mean')
    params, state = _setup(rule, model)
    batch = _batch()
    b = batch['x'].shape[0]
    updates, _, _ = rule.step(params, state, batch, KEY)
    # Same negatives as the rule: it draws them from the step key.
    y_neg = ff_ops.random_wrong_labels(KEY, batch['y'], C)
    xx = jnp.concatenate([ff_ops.embed_one_hot(batch['x'], batch['y'], C),
                          ff_ops.embed_one_hot(batch['x'], y_neg, C)])
    inputs = _raw_layer_inputs(params, xx, model)
    g = [np.asarray(jnp.mean(jax.nn.relu(i @ p['w'] + p['b']) ** 2, -1))
         for i, p in zip(inputs, params['layers'][:-1])]
    n_hidden = len(inputs)
    for l in range(n_hidden):
        gamma = sum(g[t] for t in range(n_hidden) if t != l) if collaborative else 0.0
        th = theta * (n_hidden if collaborative else 1)

        def own_loss(p):
            gl = jnp.mean(jax.nn.relu(inputs[l] @ p['w'] + p['b']) ** 2, -1) + gamma
            return jnp.mean(jax.nn.softplus(-alpha * (gl[:b] - th)) + jax.nn.softplus(alpha * (gl[b:] - th)))

        want = jax.grad(own_loss)(params['layers'][l])
        for k in ('w', 'b'):
            np.testing.assert_allclose(updates['layers'][l][k], want[k], rtol=2e-4, atol=1e-6)


def test_cff_uses_later_goodness_as_constant():
    """With all layers summed, layer 0's update depends on layer 1's goodness (but ff's does not)."""
    model = _mlp((12, 10))
    batch = _batch()
    rule = cff(model)
    params, state = _setup(rule, model)
    a, _, _ = rule.step(params, state, batch, KEY)
    b, _, _ = rule.step(_perturb_after(params, 0), state, batch, KEY)
    assert not np.allclose(a['layers'][0]['w'], b['layers'][0]['w'])


def test_predict_goodness_over_labels_matches_separate_passes():
    model = _mlp()
    rule = ff(model, predict_from=1)
    params, state = _setup(rule, model)
    x = _batch()['x']
    scores = np.asarray(rule.predict(params, state, x))
    assert scores.shape == (x.shape[0], C)
    for c in range(C):
        xc = ff_ops.embed_one_hot(x, jnp.full((x.shape[0],), c), C)
        inputs = _raw_layer_inputs(params, xc, model)
        g = sum(jnp.mean(jax.nn.relu(inputs[l] @ params['layers'][l]['w'] + params['layers'][l]['b']) ** 2, -1)
                for l in (1, 2))
        np.testing.assert_allclose(scores[:, c], g, rtol=1e-5, atol=1e-7)


def test_hard_negatives_are_the_highest_wrong_goodness():
    model = _mlp()
    rule = ff(model, negatives='hard', goodness='sum')
    params, state = _setup(rule, model)
    batch = _batch()
    scores = np.asarray(rule.predict(params, state, batch['x']))
    _, _, metrics = rule.step(params, state, batch, KEY)
    masked = np.where(np.eye(C)[np.asarray(batch['y'])] > 0, -np.inf, scores)
    want = masked.max(1).mean()  # with predict_from=0 the score is the summed goodness
    got = sum(float(metrics[f'goodness_neg_{l}']) for l in range(3))
    np.testing.assert_allclose(got, want, rtol=1e-4)


def _class_group_loss(block, h, y, class_goodness):
    """Layer l's own class_groups loss written by hand; `h` is its (raw) input."""
    h = h.reshape(h.shape[0], -1)
    h = h / jnp.sqrt(jnp.mean(h ** 2, -1, keepdims=True) + 1e-6)
    a = jax.nn.relu(h @ block['layer']['w'] + block['layer']['b'])
    if class_goodness == 'aux':
        scores = jnp.square(a @ block['aux']['w'] + block['aux']['b'])
    else:
        k = a.shape[-1] // C
        scores = jnp.mean(jnp.square(a[:, :k * C].reshape(a.shape[0], C, k)), -1)
    return optax.softmax_cross_entropy_with_integer_labels(scores, y).mean(), a


def _own_block(params, l, class_goodness):
    block = {'layer': params['layers'][l]}
    if class_goodness == 'aux':
        block['aux'] = params['ff_aux'][l]
    return block


GREEDY_OPTIMIZERS = {'adam': lambda: optax.adam(1e-2),
                     'adamw': lambda: optax.adamw(1e-2, weight_decay=0.1)}


# Each class_goodness (the aux one adds a block per layer) and each optimizer (adamw adds
# decoupled decay) once: the window logic is the same code for every pairing.
@pytest.mark.parametrize('opt_name,class_goodness', [('adam', 'groups'), ('adamw', 'aux')])
def test_greedy_layers_change_only_in_their_window_and_train_alone(opt_name, class_goodness):
    """Through the real train step: outside its window a layer (and its optimizer state)
    is bit-identical; inside it, it follows that layer trained alone by its own optax
    state on its own loss, with the earlier layers as they finished."""
    from neurokit import train
    n, hidden = 2, (12, 10, 8)
    windows = [(0, 2), (2, 4), (4, 7)]  # the last layer trains until the end
    model = _mlp(hidden)
    rule = ff(model, mode='class_groups', class_goodness=class_goodness, greedy_steps_per_layer=n,
              layerwise=True)
    opt = GREEDY_OPTIMIZERS[opt_name]()
    state = train.init_state(KEY, model, rule, opt)
    assert isinstance(state.opt_state, train.LayerwiseOptState)
    batches = [_batch(seed=10 + t) for t in range(windows[-1][1])]
    step = jax.jit(train.make_train_step(rule, opt))
    history = [state]
    for b in batches:
        state, _ = step(state, b)
        history.append(state)

    # The reference: each layer alone, in order, by hand.
    init = history[0].params
    finished = []  # reference blocks after their windows
    for l, (start, stop) in enumerate(windows):
        block = _own_block(init, l, class_goodness)
        opt_state = opt.init(block)
        for t in range(start, stop):
            h = batches[t]['x']
            for i in range(l):  # earlier layers as they finished (frozen)
                _, h = _class_group_loss(finished[i], h, batches[t]['y'], class_goodness)
            grad = jax.grad(lambda bl: _class_group_loss(bl, h, batches[t]['y'],
                                                         class_goodness)[0])(block)
            updates, opt_state = opt.update(grad, opt_state, block)
            block = optax.apply_updates(block, updates)
            got = _own_block(history[t + 1].params, l, class_goodness)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(block)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
        finished.append(_own_block(history[stop].params, l, class_goodness))

    for t in range(len(batches)):
        before, after = history[t], history[t + 1]
        for l, (start, stop) in enumerate(windows):
            if start <= t < stop:
                continue
            for a, b in zip(jax.tree.leaves((_own_block(after.params, l, class_goodness),
                                             after.opt_state.blocks[l])),
                            jax.tree.leaves((_own_block(before.params, l, class_goodness),
                                             before.opt_state.blocks[l]))):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        # ... and the active one does move
        l = next(i for i, (s, e) in enumerate(windows) if s <= t < e)
        assert not np.array_equal(after.params['layers'][l]['w'], before.params['layers'][l]['w'])


@pytest.mark.parametrize('make', [ff, lambda m, **kw: cff(m, earlier_only=True, **kw)])
def test_greedy_needs_layerwise_updates(make):
    from neurokit import train
    model = _mlp((12, 10))
    # One optimizer state for all layers would move a layer outside its window.
    with pytest.raises(ValueError, match='greedy_steps_per_layer=2 needs the layerwise form'):
        make(model, greedy_steps_per_layer=2)
    # With layerwise updates the inactive layer stays put under Adam.
    rule = make(model, greedy_steps_per_layer=2, layerwise=True)
    opt = optax.adam(1e-2)
    state = train.init_state(KEY, model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    moved = []
    for _ in range(5):
        new, _ = step(state, _batch())
        moved.append([not np.array_equal(new.params['layers'][l]['w'], state.params['layers'][l]['w'])
                      for l in range(2)])
        state = new
    assert moved == [[True, False]] * 2 + [[False, True]] * 3


# The supervised mode with a head trains the same extra block (ff_head) as the
# unsupervised one; one case per kind of per-layer block is enough.
@pytest.mark.parametrize('make', [
    lambda m, **kw: ff(m, mode='unsupervised', **kw),
    lambda m, **kw: ff(m, mode='class_groups', class_goodness='aux', **kw),
    lambda m, **kw: cff(m, mode='class_groups', **kw),
])
def test_layerwise_step_without_schedule_equals_step_plus_one_update(make):
    from neurokit import train
    model = _mlp()
    rule, layerwise_rule = make(model), make(model, layerwise=True)
    opt = optax.adamw(1e-2, weight_decay=0.1)
    whole = train.init_state(KEY, model, rule, opt)
    layerwise = train.init_state(KEY, model, layerwise_rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    layerwise_step = jax.jit(train.make_train_step(layerwise_rule, opt))
    for t in range(2):  # the second step starts from optimizer states the first one moved
        whole, m_whole = step(whole, _batch(seed=t))
        layerwise, m_layer = layerwise_step(layerwise, _batch(seed=t))
    np.testing.assert_allclose(float(m_layer['loss']), float(m_whole['loss']), rtol=1e-6)
    assert jax.tree.structure(layerwise.params) == jax.tree.structure(whole.params)
    for a, b in zip(jax.tree.leaves(layerwise.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_class_groups_goodness_and_prediction():
    model = models.mlp((3, 3, 1), C, (8, 9))  # 8 = 4 groups of 2; 9 = 4 groups of 2 + 1 unused
    rule = ff(model, mode='class_groups')
    params, state = _setup(rule, model)
    batch = _batch()
    inputs = _raw_layer_inputs(params, batch['x'], model)
    scores = []
    for l, i in enumerate(inputs):
        a = np.asarray(jax.nn.relu(i @ params['layers'][l]['w'] + params['layers'][l]['b']))
        scores.append((a[:, :8] ** 2).reshape(-1, C, 2).mean(-1))
    np.testing.assert_allclose(rule.predict(params, state, batch['x']), (scores[0] + scores[1]) / 2,
                               rtol=1e-5, atol=1e-7)
    _, _, metrics = rule.step(params, state, batch, KEY)
    for l in range(2):
        want = optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(scores[l]), batch['y']).mean()
        np.testing.assert_allclose(metrics[f'loss_{l}'], want, rtol=1e-5)


def test_conv_model_uses_class_groups_and_updates_every_layer():
    model = models.cnn((8, 8, 1), C, channels=(8, 6), dense_widths=(5,))
    rule = ff(model)  # auto: conv -> class groups; 5 < ... channels >= C? 5 >= 4 -> groups
    params, state = _setup(rule, model)
    batch = _batch(shape=(8, 8, 1))
    upd, _, metrics = jax.jit(rule.step)(params, state, batch, KEY)
    assert 'accuracy' in metrics
    for l in range(3):
        assert np.any(np.asarray(upd['layers'][l]['w']))
    rule_aux = ff(model, class_goodness='aux')
    params, state = _setup(rule_aux, model)
    assert len(params['ff_aux']) == 3
    # Structure and shapes only: traced abstractly, not compiled (the groups step above ran).
    upd, _, _ = jax.eval_shape(rule_aux.step, params, state, batch, KEY)
    assert jax.tree.structure(upd) == jax.tree.structure(params)
    assert jax.eval_shape(rule_aux.predict, params, state, batch['x']).shape == (6, C)


def test_head_is_trained_and_never_shapes_the_layers():
    model = _mlp()
    rule = ff(model, mode='unsupervised')
    params, state = _setup(rule, model)
    batch = _batch()
    upd, _, metrics = rule.step(params, state, batch, KEY)
    assert np.any(np.asarray(upd['ff_head']['w']))
    moved = dict(params, ff_head=jax.tree.map(lambda a: a + 0.5, params['ff_head']))
    upd2, _, _ = rule.step(moved, state, batch, KEY)
    for a, b in zip(jax.tree.leaves(upd['layers']), jax.tree.leaves(upd2['layers'])):
        np.testing.assert_array_equal(a, b)
    assert rule.predict(params, state, batch['x']).shape == (6, C)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match='mode'):
        ff(_mlp(), mode='bogus')
    with pytest.raises(ValueError, match='predict_from'):
        ff(_mlp(), predict_from=3)
    with pytest.raises(ValueError, match='groups'):
        ff(models.mlp((3, 3, 1), C, (3,)), mode='class_groups', class_goodness='groups')
