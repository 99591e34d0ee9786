"""The parts of the rule interface beyond a step: declared capabilities, a projection after
the optimizer's step, and parameter groups with their own optimizer settings.

Each is checked against what it stands for: the projected parameters are the projection
of the optimizer's step; a group's SGD step is its own learning rate times the gradient;
a rule's declaration is what the registry reports.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from neurokit import models, optim, train
from neurokit.experiment import parts
from neurokit.experiment.errors import ConfigError
from neurokit.rules import base, registry
from neurokit.rules.bp import bp as backprop


def _setup():
    model = models.mlp((6,), 3, hidden=(5,))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 6))
    y = jnp.arange(8) % 3
    return model, {'x': x, 'y': y}


def _unit_norm(params, rule_state):
    del rule_state
    layers = params['layers']
    return {**params, 'layers': type(layers)({**l, 'w': l['w'] / jnp.linalg.norm(l['w'])}
                                              for l in layers)}


def test_project_applies_to_the_optimizers_step():
    model, batch = _setup()
    rule = backprop(model)._replace(project=_unit_norm)
    opt = optax.sgd(0.5)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    new, _ = jax.jit(train.make_train_step(rule, opt))(state, batch)
    updates, _, _ = rule.step(state.params, state.rule_state, batch, None)
    expected = _unit_norm(optax.apply_updates(state.params, jax.tree.map(lambda u: -0.5 * u, updates)),
                          None)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for layer in new.params['layers']:
        np.testing.assert_allclose(jnp.linalg.norm(layer['w']), 1.0, rtol=1e-6)


def _head_labels(params):
    """The output layer is the group 'head'; everything else is unlabelled."""
    n = len(params['layers'])
    return {**jax.tree.map(lambda _: 'body', params),
            'layers': type(params['layers'])(
                jax.tree.map(lambda _: 'head' if i == n - 1 else 'body', l)
                for i, l in enumerate(params['layers']))}


def test_a_group_steps_with_its_own_learning_rate():
    model, batch = _setup()
    rule = backprop(model)._replace(param_labels=_head_labels)
    cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1, 'momentum': 0.0,
                                     'weight_decay': 0.0, 'schedule': 'constant',
                                     'warmup_epochs': 0.0, 'grad_clip': 0.0})
    opt = optim.build(cfg, 10, 1, groups={'head': {'learning_rate': 2.0}}, labels=_head_labels)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    new, _ = train.make_train_step(rule, opt)(state, batch)
    grads, _, _ = rule.step(state.params, state.rule_state, batch, None)  # bp: the gradient
    last = len(state.params['layers']) - 1
    for i, (before, after, g) in enumerate(zip(state.params['layers'], new.params['layers'],
                                               grads['layers'])):
        lr = 2.0 if i == last else 0.1
        for k in before:
            np.testing.assert_allclose(after[k], before[k] - lr * g[k], rtol=1e-6, atol=1e-7)


def test_groups_must_be_ones_the_rule_names():
    model, _ = _setup()
    config = ml_collections.ConfigDict({'rule': 'bp', 'optimizer_groups': {'head': {'learning_rate': 1.0}}})
    with pytest.raises(ConfigError, match="puts its parameters in no groups; drop"):
        parts.optimizer_groups(config, model, backprop(model))
    labelled = backprop(model)._replace(param_labels=_head_labels)
    assert parts.optimizer_groups(config, model, labelled) == {'head': {'learning_rate': 1.0}}
    config.optimizer_groups = {'feedback': {'learning_rate': 1.0}}
    with pytest.raises(ConfigError, match="no parameter group 'feedback'; its groups: body, head"):
        parts.optimizer_groups(config, model, labelled)


def test_capabilities_are_what_the_constructor_declares():
    @base.declare(toy_learning_rate=3e-2, layers=('dense',))
    def toy(model):
        return backprop(model)

    registry.RULES['toy_declared'] = toy
    registry.RULES['toy_plain'] = lambda model: backprop(model)
    try:
        declared = registry.capabilities('toy_declared')
        assert (declared.toy_learning_rate, declared.layers) == (3e-2, ('dense',))
        assert declared.pmap_exact and declared.multihost_tolerance == 1e-5  # the defaults
        assert registry.capabilities('toy_plain') == base.Capabilities()
    finally:
        del registry.RULES['toy_declared'], registry.RULES['toy_plain']
    # the registered rules that draw per-device randomness or step inside their pass say so
    assert not registry.pmap_exact('ff') and not registry.pmap_exact('ipc')
    assert registry.pmap_exact('bp')


def test_a_bad_group_setting_is_one_line():
    from neurokit.experiment import config as config_lib
    for group, words in (({'learning_rat': 1.0}, 'unknown config key optimizer_groups.head.learning_rat'),
                         ({'learning_rate': -1.0}, 'config.optimizer_groups.head.learning_rate')):
        config = config_lib.base_config()
        config.optimizer_groups = ml_collections.ConfigDict({'head': group})
        with pytest.raises(ConfigError, match=words) as e:
            config_lib.validate(config)
        assert '\n' not in str(e.value)


def test_compositions_refuse_rules_with_hooks():
    from neurokit.rules.combine import chain, combine
    model, _ = _setup()
    projected = backprop(model)._replace(project=_unit_norm)
    with pytest.raises(ValueError, match="rules\\['a'\\] has a project hook"):
        combine({'a': projected, 'b': backprop(model)}, ('a', 'b'))
    with pytest.raises(ValueError, match='chain part 0 has a project hook'):
        chain(model, [((0, 1), lambda m: backprop(m)._replace(project=_unit_norm)),
                      ((1, 2), backprop)])
