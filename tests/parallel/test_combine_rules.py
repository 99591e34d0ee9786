"""Rule composition: `combine` (per-layer owner on the whole model) and `chain` (block-local).

Expected values come from what each combinator means, computed in raw JAX:
a rule combined with itself is the rule; a layer takes exactly the update of
its owner; a chain block is backprop of its own sub-model's loss on the
previous block's (stop-gradient) output.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import losses, models, train
from neurokit.rules import OptimizerRule, Rule, bp, registry
from neurokit.rules.combine import chain, combine, layer_labels

HIDDEN = (16, 16)


@pytest.fixture(scope='module')
def setup(digits):
    x, y, _, _ = digits
    model = models.mlp((8, 8, 1), 10, HIDDEN)
    params = model.init(jax.random.PRNGKey(0))
    return model, params, {'x': x[:32], 'y': y[:32]}


def _close(a, b, tol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=tol, rtol=0)


def _mlp_forward(layers, x, upto, stop_after=None):
    """Raw-JAX MLP: relu hidden layers, identity output; `upto` layers applied."""
    h = x.reshape(x.shape[0], -1)
    for i in range(upto):
        h = h @ layers[i]['w'] + layers[i]['b']
        if i < len(layers) - 1:
            h = jax.nn.relu(h)
    return h


def test_rule_combined_with_itself_is_the_rule(setup):
    model, params, batch = setup
    rule = bp(model)
    combined = combine({'a': rule, 'b': rule}, layer_labels(3, a=(0, 2), b=(2, 3)))
    key = jax.random.PRNGKey(1)
    p = combined.init_params(key, params)
    assert jax.tree.structure(p) == jax.tree.structure(params)  # no extras: same tree
    u_c, _, m_c = combined.step(p, combined.init(key, p), batch, key)
    u_r, _, m_r = rule.step(params, rule.init(key, params), batch, key)
    _close(u_c, u_r, 0)
    assert float(m_c['loss']) == float(m_r['loss'])
    _close(combined.predict(p, combined.init(key, p), batch['x']),
           rule.predict(params, None, batch['x']), 0)


def test_each_layer_takes_its_owners_update(setup):
    model, params, batch = setup
    # head: cross-entropy backprop; body: MSE backprop (a different objective).
    combined = combine({'body': bp(model, loss='mse'), 'head': bp(model)},
                       lambda layers: ['body'] * (len(layers) - 1) + ['head'])
    key = jax.random.PRNGKey(1)
    u, _, metrics = combined.step(params, combined.init(key, params), batch, key)
    x, y = batch['x'], batch['y']
    ce = lambda ls: losses.LOSSES['cross_entropy'](_mlp_forward(ls, x, 3), y)
    mse = lambda ls: losses.LOSSES['mse'](_mlp_forward(ls, x, 3), y)
    g_ce, g_mse = jax.grad(ce)(params['layers']), jax.grad(mse)(params['layers'])
    _close(u['layers'][2], g_ce[2], 1e-6)
    _close(u['layers'][:2], g_mse[:2], 1e-6)
    assert {'loss', 'body_loss', 'head_loss'} <= set(metrics)
    np.testing.assert_allclose(float(metrics['loss']), float(ce(params['layers'])), rtol=1e-6)


def test_chain_blocks_see_stop_gradient_inputs(setup):
    model, params, batch = setup
    rule = chain(model, [((0, 2), bp), ((2, 3), bp)])
    key = jax.random.PRNGKey(1)
    u, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    x, y = batch['x'], batch['y']
    layers = params['layers']
    ce = losses.LOSSES['cross_entropy']
    # Block 0 = backprop of its own sub-model: output = relu(layer 1), used as logits.
    g01 = jax.grad(lambda ls: ce(_mlp_forward(ls + (layers[2],), x, 2), y))(layers[:2])
    h1 = _mlp_forward(layers, x, 2)
    g2 = jax.grad(lambda l2: ce(h1 @ l2['w'] + l2['b'], y))(layers[2])
    _close(u['layers'][:2], g01, 1e-6)
    _close(u['layers'][2], g2, 1e-6)
    np.testing.assert_allclose(float(metrics['loss']), float(ce(h1 @ layers[2]['w'] + layers[2]['b'], y)),
                               rtol=1e-6)
    # One block over every layer is the rule itself.
    whole = chain(model, [((0, 3), bp)])
    u_w, _, _ = whole.step(params, whole.init(key, params), batch, key)
    _close(u_w, bp(model).step(params, None, batch, key)[0], 0)


def test_combined_rule_trains_under_jit_and_vmap(setup, digits):
    model, _, _ = setup
    x, y, xt, yt = digits
    rule = chain(model, [((0, 1), bp), ((1, 3), bp)])
    opt = optax.adam(3e-3)
    init = lambda keys: jax.lax.map(lambda k: train.init_state(k, model, rule, opt), keys)
    states = jax.jit(init)(jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    epoch = jax.jit(jax.vmap(train.make_epoch(rule, opt, 64), (0, None, None, None)))
    for e in range(3):
        states, _ = epoch(states, x, y, e)
    acc = jax.jit(jax.vmap(train.make_evaluate(rule, 500), (0, 0, None, None)))(
        states.params, states.rule_state, xt, yt)
    # Block 0 (one layer, its 16 ReLU units read as logits) learns weak features:
    # only "well above chance (0.1)" is expected after 3 epochs.
    assert float(jnp.min(acc)) > 0.3, acc


def test_labels_are_checked(setup):
    model, params, batch = setup
    with pytest.raises(ValueError, match='no rule'):
        layer_labels(3, a=(0, 2))
    with pytest.raises(ValueError, match='labelled both'):
        layer_labels(3, a=(0, 2), b=(1, 3))
    rule = combine({'a': bp(model)}, ('a', 'a', 'b'))
    with pytest.raises(ValueError, match='have no rule'):
        rule.step(params, rule.init(None, params), batch, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match='consecutive'):
        chain(model, [((0, 1), bp), ((2, 3), bp)])


def test_chain_block_narrower_than_the_classes_is_refused():
    # A block's rule reads its last layer's units as class scores: with 6 units and 10
    # classes, labels 6..9 would get an all-zero one-hot and a zero loss.
    model = models.mlp((8, 8, 1), 10, (16, 6))
    with pytest.raises(ValueError, match=r'block 0 \(layers \[0, 2\)\) ends with 6 units.*10 '
                                         r'classes'):
        chain(model, [((0, 2), bp), ((2, 3), bp)])
    # Blocks at least as wide as the class count are fine; so is cutting before the narrow layer.
    chain(models.mlp((8, 8, 1), 10, (10, 6)), [((0, 1), bp), ((1, 3), bp)])


@pytest.mark.skipif('mf' not in registry.RULES, reason='mf not landed')
def test_mf_hidden_bp_head(setup):
    model, params, batch = setup
    mf, rbp = registry.build('mf', model), bp(model)
    combined = combine({'hidden': mf, 'head': rbp}, layer_labels(3, hidden=(0, 2), head=(2, 3)))
    key = jax.random.PRNGKey(1)
    p = combined.init_params(key, params)
    p_mf = mf.init_params(key, params)
    # mf's own trainables live under params['rules']['hidden'], exactly as mf made them.
    _close(p['rules']['hidden'], {k: v for k, v in p_mf.items() if k != 'layers'}, 0)
    u, _, metrics = combined.step(p, combined.init(key, p), batch, key)
    assert jax.tree.structure(u) == jax.tree.structure(p)
    u_mf, _, _ = mf.step(p_mf, mf.init(key, p_mf), batch, key)
    u_bp, _, _ = rbp.step(params, None, batch, key)
    _close(u['layers'][:2], u_mf['layers'][:2], 1e-6)
    _close(u['rules']['hidden'], {k: v for k, v in u_mf.items() if k != 'layers'}, 1e-6)
    _close(u['layers'][2], u_bp['layers'][2], 1e-6)
    assert 'hidden_loss' in metrics and 'loss' in metrics


@pytest.mark.skipif(not {'fa', 'dfa'} <= set(registry.RULES), reason='fa/dfa not landed')
def test_fa_on_convs_dfa_on_dense():
    model = models.build('cnn', (8, 8, 1), 10, channels=(4,), dense_widths=(16,))
    kinds = [layer.kind for layer in model.layers]
    fa, dfa = registry.build('fa', model), registry.build('dfa', model)
    combined = combine({'conv': fa, 'dense': dfa}, lambda layers: kinds)
    key = jax.random.PRNGKey(0)
    params = combined.init_params(key, model.init(key))
    x = jax.random.uniform(key, (8, 8, 8, 1))
    batch = {'x': x, 'y': jnp.arange(8) % 10}
    state = combined.init(key, params)
    u, _, _ = combined.step(params, state, batch, key)
    u_fa, _, _ = fa.step(params, state['conv'], batch, key)
    u_dfa, _, _ = dfa.step(params, state['dense'], batch, key)
    for i, kind in enumerate(kinds):
        _close(u['layers'][i], (u_fa if kind == 'conv' else u_dfa)['layers'][i], 1e-6)


def _train_steps(model, rule, opt, batches):
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for b in batches:
        state, _ = step(state, b)
    return state


@pytest.mark.parametrize('combinator', ['combine', 'chain'])
def test_a_part_that_steps_the_optimizer_makes_the_combination_one(setup, digits, combinator):
    # mf's layerwise form steps its optimizer inside its pass: the combination must stay an
    # OptimizerRule that keeps every part's optimizer state, and for an element-wise optimizer
    # train as the plain combination + one update (each layer's state sees its owner's
    # gradients only).
    model, _, _ = setup
    x, y, _, _ = digits

    def build(layerwise):
        if combinator == 'combine':
            return combine({'hidden': registry.build('mf', model, layerwise=layerwise),
                            'head': bp(model)}, layer_labels(3, hidden=(0, 2), head=(2, 3)))
        return chain(model, [((0, 2), lambda m: registry.build('mf', m, layerwise=layerwise)),
                             ((2, 3), bp)])

    plain, wide = build(False), build(True)
    assert isinstance(plain, Rule) and isinstance(wide, OptimizerRule)
    opt = optax.adamw(3e-3, weight_decay=0.1)
    # two steps: the second starts from optimizer states the first one moved
    batches = [{'x': x[32 * i:32 * (i + 1)], 'y': y[32 * i:32 * (i + 1)]} for i in range(2)]
    want = _train_steps(model, plain, opt, batches)
    got = _train_steps(model, wide, opt, batches)
    parts = ((got.opt_state['hidden'], got.opt_state['head']) if combinator == 'combine' else
             got.opt_state)
    assert [type(s).__name__ for s in parts] == ['LayerwiseOptState', 'tuple']
    assert jax.tree.structure(got.params) == jax.tree.structure(want.params)
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_the_pipeline_refuses_a_block_that_steps_the_optimizer(setup):
    from neurokit.parallel.pipeline import LayerPipeline
    model, _, _ = setup
    parts = [((0, 2), lambda m: registry.build('mf', m, layerwise=True)), ((2, 3), bp)]
    with pytest.raises(ValueError, match=r'block 0 \(layers \[0, 2\)\).*plain rule'):
        LayerPipeline(model, parts, optax.adam(1e-3), batch_size=32, microbatches=2)
