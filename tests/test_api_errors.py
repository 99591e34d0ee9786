"""Library misuse a notebook user can make fails at the call that was wrong, with a message
naming the problem, instead of deep inside JAX or silently (from an API audit, session 8)."""
import jax
import jax.numpy as jnp
import optax
import pytest

from neurokit import data, losses, models, rules, train
from neurokit.rules.combine import chain, combine
from neurokit.rules.registry import RULES


@pytest.fixture(scope='module')
def setup():
    ds = data.load('digits')
    model = models.mlp(ds.input_shape, 10, hidden=(16,))
    rule, opt = rules.build('bp', model), optax.adam(1e-3)
    return ds, model, rule, opt


def test_a_donated_state_leaves_the_callers_key_alive(setup):
    ds, model, rule, opt = setup
    key = jax.random.PRNGKey(0)
    state = train.init_state(key, model, rule, opt)
    epoch = jax.jit(train.make_epoch(rule, opt, 50), donate_argnums=0)
    epoch(state, ds.x_train[:200], ds.y_train[:200], 0)
    jax.random.split(key)  # raised "Buffer has been deleted or donated" when the state held it


def _hand_state(model, optimizer):
    """A TrainState built without init_state's checks (as a notebook might)."""
    key = jax.random.PRNGKey(0)
    params = model.init(key)
    return train.TrainState(params, optimizer.init(params), rules.EmptyState(), key,
                            jnp.zeros((), jnp.int32))


def _step(name, model, batch, params=None, state=None):
    """rule `name`'s step with `params` / `state` in place of what its init would give."""
    rule, key = rules.build(name, model), jax.random.PRNGKey(0)
    good = rule.init_params(key, model.init(key))
    params = good if params is None else params
    state = rule.init(key, good) if state is None and name != 'fa' else state
    return rule.step(params, state, batch, key)


@pytest.mark.parametrize('case, match', [
    ('epoch: x and y lengths differ', 'x has 200 examples but y has 100'),
    ('epoch: batch larger than the data', 'exceeds the 200 examples'),
    ('epoch: batch size zero', 'batch_size must be an integer >= 1'),
    ('epoch: one-hot labels', r'labels of shape \(N,\)'),
    ('evaluate: x and y lengths differ', 'x has 200 examples but y has 100'),
    ('unknown loss', "unknown loss 'xent'"),
    ('unknown activation', "unknown activation 'Relu'"),
    ('negative ff alpha', 'alpha'),
    ('combine predicts with an unknown label', 'predict_with'),
    # hyperparameters that trained nothing or NaN (zero feedback: only the head learns)
    ('fa feedback_scale 0', 'feedback_scale must be a finite number > 0, got 0'),
    ('dfa feedback_scale nan', 'feedback_scale must be a finite number > 0, got nan'),
    ('pfa ratio 0', 'ratio must be an integer >= 1, got 0'),
    ('pfa ratio 1.5', 'ratio must be an integer >= 1, got 1.5'),
    ('ff alpha inf', 'alpha .* must be a finite number > 0, got inf'),
    ('ff greedy steps 1.5', 'greedy_steps_per_layer must be an integer >= 0, got 1.5'),
    ('mf proj_init_scale nan', 'proj_init_scale must be a finite number >= 0, got nan'),
    ('build: a string for a number', "alpha must be a number .*got '40'"),
    # a step before init_params / init
    ('mf without init_params', r"params have no 'mf_proj'.*rule.init_params"),
    ('pfa without init_params', r"params have no 'pfa_r'.*rule.init_params"),
    ('fa state None', r'the rule state is NoneType, not FeedbackState.*rule.init\('),
    ('ff state of another rule', r'the rule state is EmptyState, not FFState'),
    ('combine of no rules', 'at least one rule'),
    ('combine of a constructor', r"rules\['a'\] is a function, not a Rule"),
    ('chain of a built rule', 'part 0: Rule is not a rule builder'),
    # silently wrong before: NaN after one Adam step; another model's extra layers dropped
    ('float16 params, float16 Adam state', r'float16 parameters .*in_float32\(optimizer\)'),
    ('float16 state made by hand, then stepped', r'float16 parameters .*in_float32'),
    ('a deeper model\'s state', 'params hold 3 layers but the model has 2'),
    ('apply with another model\'s params', 'params hold 3 layers but the model has 2'),
    ('cross_entropy: labels of another length', r'labels of shape \(1,\) for logits of shape'),
    ('cross_entropy: float labels', 'labels must be integer classes'),
    ('mse: one-hot labels', 'argmax'),
])
def test_misuse_is_a_value_error_naming_it(setup, case, match):
    ds, model, rule, opt = setup
    key = jax.random.PRNGKey(0)
    state = train.init_state(key, model, rule, opt)
    x, y = ds.x_train[:200], ds.y_train[:200]
    batch = {'x': x[:32], 'y': y[:32]}
    half = models.mlp(ds.input_shape, 10, hidden=(16,), dtype='float16')
    deeper = models.mlp(ds.input_shape, 10, hidden=(16, 16))
    calls = {
        'epoch: x and y lengths differ': lambda: train.make_epoch(rule, opt, 50)(
            state, x, y[:100], 0),
        'epoch: batch larger than the data': lambda: train.make_epoch(rule, opt, 500)(
            state, x, y, 0),
        'epoch: batch size zero': lambda: train.make_epoch(rule, opt, 0),
        'epoch: one-hot labels': lambda: train.make_epoch(rule, opt, 50)(
            state, x, jax.nn.one_hot(y, 10), 0),
        'evaluate: x and y lengths differ': lambda: train.make_evaluate(rule, 64)(
            state.params, state.rule_state, x, y[:100]),
        'unknown loss': lambda: rules.build('bp', model, loss='xent'),
        'unknown activation': lambda: models.mlp(ds.input_shape, 10, hidden=(16,),
                                                 activation='Relu'),
        'negative ff alpha': lambda: rules.build('ff', model, alpha=-1.0),
        'combine predicts with an unknown label': lambda: combine({'a': rule}, ('a', 'a'),
                                                                  predict_with='head'),
        'fa feedback_scale 0': lambda: rules.build('fa', model, feedback_scale=0.0),
        'dfa feedback_scale nan': lambda: RULES['dfa'](model, feedback_scale=float('nan')),
        'pfa ratio 0': lambda: rules.build('pfa', model, ratio=0),
        'pfa ratio 1.5': lambda: RULES['pfa'](model, ratio=1.5),
        'ff alpha inf': lambda: RULES['ff'](model, alpha=float('inf')),
        'ff greedy steps 1.5': lambda: RULES['ff'](model, greedy_steps_per_layer=1.5),
        'mf proj_init_scale nan': lambda: RULES['mf'](model, proj_init_scale=float('nan')),
        'build: a string for a number': lambda: rules.build('ff', model, alpha='40'),
        'mf without init_params': lambda: _step('mf', model, params=model.init(key), batch=batch),
        'pfa without init_params': lambda: _step('pfa', model, params=model.init(key),
                                                 batch=batch),
        'fa state None': lambda: _step('fa', model, state=None, batch=batch),
        'ff state of another rule': lambda: _step('ff', model, state=rules.EmptyState(),
                                                  batch=batch),
        'combine of no rules': lambda: combine({}, ('a', 'a')),
        'combine of a constructor': lambda: combine({'a': RULES['mf']}, ('a', 'a')),
        'chain of a built rule': lambda: chain(model, [((0, 1), rule), ((1, 2), rules.bp)]),
        'float16 params, float16 Adam state': lambda: train.init_state(key, half, rules.bp(half),
                                                                       optax.adam(1e-3)),
        'float16 state made by hand, then stepped': lambda: train.make_train_step(
            rules.bp(half), optax.adam(1e-3))(_hand_state(half, optax.adam(1e-3)), batch),
        'a deeper model\'s state': lambda: train.make_train_step(rule, opt)(
            train.init_state(key, deeper, rules.bp(deeper), opt), batch),
        'apply with another model\'s params': lambda: model.apply(deeper.init(key), x),
        'cross_entropy: labels of another length': lambda: losses.cross_entropy(
            jnp.zeros((4, 10)), jnp.zeros((1,), jnp.int32)),
        'cross_entropy: float labels': lambda: losses.cross_entropy(jnp.zeros((4, 10)),
                                                                    jnp.full((4,), 2.5)),
        'mse: one-hot labels': lambda: losses.mse(jnp.zeros((4, 10)),
                                                  jnp.zeros((4, 10), jnp.int32)),
    }
    with pytest.raises(ValueError, match=match):
        calls[case]()


def test_a_layerwise_state_with_a_rule_without_layerwise_step(setup):
    ds, _, _, opt = setup
    mf_model = models.mlp(ds.input_shape, 10, hidden=(16, 16))
    mf = rules.build('mf', mf_model, layerwise=True)
    state = train.init_state(jax.random.PRNGKey(0), mf_model, mf, opt)
    step = train.make_train_step(rules.build('mf', mf_model), opt)
    with pytest.raises(ValueError, match='holds one per block .* but this rule steps one for '
                                         'all parameters; train with the rule the state was '
                                         'made for'):
        step(state, {'x': ds.x_train[:8], 'y': ds.y_train[:8]})


def test_bfloat16_data_loads():
    import jax.numpy as jnp
    assert data.load('digits', dtype=jnp.bfloat16).x_train.dtype == jnp.bfloat16


@pytest.mark.parametrize('name', ['bp', 'mf', 'fa', 'dfa', 'ff', 'pc'])
def test_params_of_a_model_of_other_widths_are_one_error_naming_the_layer(name):
    # The layer count matches, so only the shapes tell: before, a reshape TypeError deep
    # in the first layer. Both the model's apply and the rule's step refuse them.
    key = jax.random.PRNGKey(0)
    narrow = models.mlp((8, 8, 1), 10, hidden=(16,))
    wide = models.mlp((8, 8, 1), 10, hidden=(32,))
    rule = rules.build(name, narrow)
    good = rule.init_params(key, narrow.init(key))
    state = rule.init(key, good)
    params = {**good, 'layers': wide.init(key)['layers']}  # the rule's own entries kept
    batch = {'x': jnp.zeros((4, 64)), 'y': jnp.zeros((4,), jnp.int32)}
    with pytest.raises(ValueError, match=r'params of layer dense_0 hold b\[32\], w\[64, 32\] '
                                         r'but the layer makes b\[16\], w\[64, 16\]'):
        narrow.apply(params, batch['x'])
    with pytest.raises(ValueError, match='params of layer dense_0'):
        rule.step(params, state, batch, key)
