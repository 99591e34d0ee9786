"""Layerwise form (`mf(model, layerwise=True)`): each block steps its optimizer inside the pass.

Oracle: for an element-wise optimizer, updating block by block with one optimizer
state per block is the same computation as one update of the whole tree after the
pass (the plain form's `step` + `optimizer.update`), so several training steps of
the two must give the same parameters, for any schedule, momentum or decoupled decay.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit.experiment import config as config_lib
from neurokit import models
from neurokit.experiment.errors import ConfigError
from neurokit.rules import registry
from neurokit.rules.base import OptimizerRule
from neurokit.rules.mf import mf
from neurokit.train import make_train_step
from neurokit.train.state import LayerwiseOptState, init_state

OPTIMIZERS = {
    'adam_cosine': lambda: optax.adam(optax.cosine_decay_schedule(1e-2, 10)),
    'sgd_momentum': lambda: optax.sgd(0.05, momentum=0.9),
    'adamw': lambda: optax.adamw(3e-3, weight_decay=0.1),
}


def _batches(shape, n=16, c=10, steps=3):
    for i in range(steps):
        kx, ky = jax.random.split(jax.random.PRNGKey(100 + i))
        yield {'x': jax.random.normal(kx, (n,) + shape), 'y': jax.random.randint(ky, (n,), 0, c)}


def _train(model, rule, opt, shape):
    state = init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(make_train_step(rule, opt))
    losses = []
    for batch in _batches(shape):
        state, metrics = step(state, batch)
        losses.append(float(metrics['loss']))
    return state, losses


# Every optimizer on the mlp (a schedule, momentum, decoupled decay each take their own
# path through the per-block states) and the cnn's conv blocks once, under the optimizer
# whose update reads the parameters (adamw's decay); the blocks' split does not depend on it.
@pytest.mark.parametrize('opt_name,net', [('adam_cosine', 'mlp'), ('sgd_momentum', 'mlp'),
                                          ('adamw', 'mlp'), ('adamw', 'cnn')])
def test_layerwise_steps_equal_one_update_after_the_pass(opt_name, net):
    if net == 'mlp':
        model, shape = models.mlp((12,), 10, (16, 16, 16)), (12,)
    else:
        model, shape = models.cnn((8, 8, 1), 10, channels=(4, 6), dense_widths=(12,)), (8, 8, 1)
    rule = mf(model)
    opt = OPTIMIZERS[opt_name]()
    whole, loss_whole = _train(model, rule, opt, shape)
    layerwise, loss_layerwise = _train(model, mf(model, layerwise=True), opt, shape)
    assert isinstance(layerwise.opt_state, LayerwiseOptState)
    np.testing.assert_allclose(loss_layerwise, loss_whole, rtol=1e-6)
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                         whole.params, init_state(jax.random.PRNGKey(0), model, rule, opt).params)
    assert min(jax.tree.leaves(moved)) > 0  # every parameter was trained
    for a, b in zip(jax.tree.leaves(layerwise.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_blocks_hold_every_parameter_once():
    # One optimizer state per block, and the blocks cover every parameter: a state per
    # (hidden layer + projection), and one for the last hidden layer with the output layer.
    model = models.mlp((12,), 10, (16, 16, 16))
    rule = mf(model, layerwise=True)
    assert isinstance(rule, OptimizerRule)
    params = rule.init_params(jax.random.PRNGKey(1), model.init(jax.random.PRNGKey(0)))
    # optax.sgd's state is empty; a state that copies its params shows which leaves it covers
    copy = optax.GradientTransformation(lambda p: p, None)
    opt_state = rule.init_opt_state(copy, params)
    ids = lambda t: sorted(id(x) for x in jax.tree.leaves(t))
    assert ids(opt_state.blocks) == ids(params)
    assert len(opt_state.blocks) == len(params['mf_proj']) + 1


def test_rules_without_a_layerwise_step_refuse_it():
    model = models.mlp((12,), 10, (16,))
    with pytest.raises(ValueError, match="rule 'bp' has no layerwise step .*cff, ff, mf.*"
                                         'layerwise_updates=False'):
        registry.build('bp', model, layerwise=True)
    assert isinstance(registry.build('mf', model, layerwise=True), OptimizerRule)
    assert [n for n in sorted(registry.RULES) if registry.has_layerwise(n)] == ['cff', 'ff', 'mf']
    # 'layerwise' is the form, not a hyperparameter a config's rule_kwargs may set
    assert 'layerwise' not in registry.hyperparameters('mf')


def test_config_rejects_layerwise_with_global_clipping_or_pmap():
    config = config_lib.base_config()
    config.rule, config.layerwise_updates = 'mf', True
    config_lib.validate(config)
    config.optimizer.grad_clip = 1.0
    with pytest.raises(ConfigError, match='grad_clip'):
        config_lib.validate(config)
    config.optimizer.grad_clip, config.parallel = 0.0, 'pmap'
    with pytest.raises(ConfigError, match='pmap'):
        config_lib.validate(config)
