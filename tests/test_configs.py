"""Every config file loads, validates, builds its rule, documents its command and holds only
what differs from the defaults; the config keys' own checks."""
import glob
import importlib
import os

import pytest

from neurokit.experiment import config as config_lib
from neurokit import models
from neurokit.rules import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'experiments/configs/*.py'))
                 if not p.endswith('__init__.py'))


@pytest.mark.parametrize('name', CONFIGS)
def test_config_is_valid_and_documented(name):
    module = importlib.import_module(f'experiments.configs.{name}')
    config = module.get_config()
    config_lib.validate(config)
    doc = module.__doc__ or ''
    assert f'--config=experiments/configs/{name}.py' in doc, 'docstring must give the command'
    assert 'Expected' in doc or 'expected' in doc, 'docstring must give the expected result'
    model = models.build('mlp', (8, 8, 1), 10, hidden=(8,))
    registry.build(config.rule, model, **config.rule_kwargs.to_dict())


@pytest.mark.parametrize('name', CONFIGS)
def test_config_sets_only_what_differs_from_the_defaults(name):
    # a value equal to the rule constructor's default would restate it (and hide a change
    # of the default); the defaults come in through config.with_rule_defaults
    config = importlib.import_module(f'experiments.configs.{name}').get_config()
    defaults = registry.defaults(config.rule)
    same = sorted(k for k, v in config.rule_kwargs.items() if k in defaults and defaults[k] == v)
    assert not same, f'{name}.py restates the defaults of rule_kwargs {same}'


@pytest.mark.parametrize('rule', sorted(registry.RULES))
def test_default_config_takes_every_rule_with_its_defaults(rule):
    # a rule without a config file of its own runs from default.py --config.rule=NAME
    from experiments.configs import default
    config = config_lib.with_rule_defaults(_with_rule(default.get_config(), rule))
    assert config.rule_kwargs.to_dict() == config_lib.rule_defaults(rule)
    config_lib.validate(config)


def _with_rule(config, rule):
    config.rule = rule
    return config


def test_rule_defaults_fill_only_what_the_config_lacks():
    config = config_lib.base_config()
    config.rule = 'pc'
    config.rule_kwargs.inference_steps = 5
    config.lock()  # as the command line leaves it: filling must still work
    config_lib.with_rule_defaults(config)
    assert config.rule_kwargs.inference_steps == 5
    assert config.rule_kwargs.inference_lr == registry.defaults('pc')['inference_lr']
    assert set(config.rule_kwargs) == set(registry.hyperparameters('pc'))


def test_a_stored_config_lacking_newer_keys_compares_equal_to_its_defaults():
    # a config.json written before validation_examples existed, with a rule_kwargs that
    # named no defaults, is the same run as today's fully resolved config
    from neurokit.experiment import workdir as wd
    current = config_lib.with_rule_defaults(_with_rule(config_lib.base_config(), 'ff'))
    stored = wd.config_json(config_lib.base_config())
    stored.pop('validation_examples')
    stored['rule'] = 'ff'
    assert config_lib.fill_defaults(stored) == wd.config_json(current)
    changed = wd.config_json(current)
    changed['rule_kwargs']['threshold'] = 3.0
    assert config_lib.fill_defaults(stored) != changed


@pytest.mark.parametrize('value, match', [
    (-1, 'validation_examples must be an integer >= 0'),
    (1.5, 'validation_examples must be an integer >= 0'),
    (True, 'validation_examples must be an integer >= 0'),
])
def test_validation_examples_must_be_a_count(value, match):
    import ml_collections
    d = config_lib.base_config().to_dict()
    d['validation_examples'] = value  # a ConfigDict built from values, as a file may build it
    config = ml_collections.ConfigDict(d)
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(config)


def test_validation_examples_must_leave_training_examples():
    import types
    import numpy as np
    data = types.SimpleNamespace(x_train=np.zeros((256, 64), np.float32), input_shape=(64,),
                                 num_classes=10)
    config = config_lib.base_config()
    config.model.hidden, config.batch_size, config.dataset = (8,), 64, 'digits'
    config.validation_examples = 192  # leaves 64: one batch
    config_lib.validate_with_data(config, data)
    for held_out, match in ((256, 'leaves none of the 256 training examples'),
                            (193, r'batch_size=64 exceeds the 63 .*\(193 held out')):
        config.validation_examples = held_out
        with pytest.raises(config_lib.ConfigError, match=match) as e:
            config_lib.validate_with_data(config, data)
        assert '\n' not in str(e.value)


def test_validation_examples_is_not_resumable():
    # it decides which examples are trained on: a resume with another value is another run
    from neurokit.experiment import workdir as wd
    a, b = config_lib.base_config(), config_lib.base_config()
    b.validation_examples = 5000
    assert [k for k, _, _ in wd.config_diff(wd.config_json(a), wd.config_json(b))] == [
        'validation_examples']


@pytest.mark.parametrize('overrides,match', [
    ({'parallel': 'dp'}, 'parallel mode'),
    ({'mesh': 'data=two'}, 'is not a mesh'),
    ({'mesh': 'model=2'}, 'is not a mesh'),
    ({'mesh': 'data=\u00b2'}, 'is not a mesh'),  # '²'.isdigit() is True, int('²') fails
    ({'mesh': 'data=3'}, 'does not divide by the data axis'),
    ({'mesh': 'stage=2', 'parallel': 'pmap'}, 'stage axis needs'),
    ({'fsdp': True, 'parallel': 'pmap'}, 'fsdp=True needs'),
    ({'distributed.coordinator_address': 'localhost:1234'}, 'enabled is False'),
    ({'distributed.enabled': True, 'distributed.num_processes': 2}, 'needs all of'),
    ({'distributed.enabled': True, 'distributed.coordinator_address': 'h:1',
      'distributed.num_processes': 2, 'distributed.process_id': 2}, 'must be <'),
])
def test_bad_device_keys_are_one_line_errors(overrides, match):
    config = config_lib.base_config()
    config.update_from_flattened_dict(overrides)
    with pytest.raises(config_lib.ConfigError, match=match) as e:
        config_lib.validate(config)
    assert '\n' not in str(e.value)


def test_mesh_must_fit_the_devices():
    config = config_lib.base_config()
    assert config_lib.check_devices(config, 8) == {'data': 8, 'stage': 1}
    config.mesh = 'data=1'  # one device of many
    assert config_lib.check_devices(config, 8) == {'data': 1, 'stage': 1}
    config.mesh = 'data=4,stage=2'
    assert config_lib.check_devices(config, 8) == {'data': 4, 'stage': 2}
    with pytest.raises(config_lib.ConfigError, match='needs 8 devices but 4'):
        config_lib.check_devices(config, 4)
    config.mesh = ''
    with pytest.raises(config_lib.ConfigError, match='multi-host mesh must use'):
        config.mesh = 'data=2'
        config_lib.check_devices(config, 4, process_count=2)
    config.mesh, config.batch_size = '', 100
    with pytest.raises(config_lib.ConfigError, match='does not divide by the data axis size 8'):
        config_lib.check_devices(config, 8)


def test_device_keys_may_change_on_resume():
    from neurokit.experiment import workdir as wd
    a, b = config_lib.base_config(), config_lib.base_config()
    b.mesh, b.parallel, b.fsdp = 'data=1', 'pmap', True
    assert wd.config_diff(wd.config_json(a), wd.config_json(b)) == []
    old = wd.config_json(a)  # a workdir written before the device keys existed
    for key in ('parallel', 'mesh', 'fsdp', 'distributed'):
        old.pop(key)
    assert wd.config_diff(old, wd.config_json(a)) == []


@pytest.mark.parametrize('key, value, match', [
    ('learning_rate', 0.0, 'learning_rate must be a finite number > 0, got 0.0'),
    ('momentum', 1.0, r'momentum must be a finite number in \[0, 1\), got 1.0'),
    ('momentum', 1.5, r'momentum must be a finite number in \[0, 1\), got 1.5'),
])
def test_optimizer_values_the_optimizer_refuses_are_config_errors(key, value, match):
    # lr 0 trains nothing; momentum >= 1 diverges; optim.make refuses both, so the config
    # must, before anything is written (a ValueError there would be a traceback, exit 1)
    config = config_lib.base_config()
    config.optimizer[key] = value
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(config)
