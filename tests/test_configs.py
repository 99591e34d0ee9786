"""Every config file loads, validates, builds its rule, and documents its command."""
import glob
import importlib
import os

import pytest

from neurokit import config as config_lib
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
