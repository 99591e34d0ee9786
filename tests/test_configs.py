"""Every config file loads, validates, builds its rule, and documents its command."""
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


def test_every_rule_has_a_config():
    missing = sorted(set(registry.RULES) - set(CONFIGS))
    assert not missing, f'rules without experiments/configs/<rule>.py: {missing}'


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
