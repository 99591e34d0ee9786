"""Library misuse a notebook user can make fails at the call that was wrong, with a message
naming the problem, instead of deep inside JAX or silently (from an API audit, session 8)."""
import jax
import optax
import pytest

from neurokit import data, models, rules, train
from neurokit.rules.combine import combine


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
])
def test_misuse_is_a_value_error_naming_it(setup, case, match):
    ds, model, rule, opt = setup
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    x, y = ds.x_train[:200], ds.y_train[:200]
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
    }
    with pytest.raises(ValueError, match=match):
        calls[case]()


def test_a_layerwise_state_with_a_rule_without_layerwise_step(setup):
    ds, _, _, opt = setup
    mf_model = models.mlp(ds.input_shape, 10, hidden=(16, 16))
    mf = rules.build('mf', mf_model)
    state = train.init_state(jax.random.PRNGKey(0), mf_model, mf, opt, layerwise=True)
    step = train.make_train_step(rules.build('bp', mf_model), opt)
    with pytest.raises(ValueError, match='no layerwise step'):
        step(state, {'x': ds.x_train[:8], 'y': ds.y_train[:8]})


def test_bfloat16_data_loads():
    import jax.numpy as jnp
    assert data.load('digits', dtype=jnp.bfloat16).x_train.dtype == jnp.bfloat16
