"""rule_kwargs are checked before any data is read: the contract of `neurokit.experiment.config.validate`.

Each value must have the kind of the rule constructor's default (a finite number, an
integer, True or False, a string, a tuple); a wrong kind is one `ConfigError` line that
names the key. Values that cannot be right for the algorithm (pc/ipc: a negative
learning rate, momentum outside [0, 1), ...) are refused when the rule is built
(`validate_with_data`), still before anything is compiled or written. Through the real
CLI both are exit 2 with one `error:` line and no workdir.
"""
import math
import numbers
import types

import ml_collections
import numpy as np
import pytest

from neurokit.experiment import config as config_lib
from neurokit.experiment.errors import ConfigError
from neurokit.rules import registry

def _config(rule, **kwargs):
    c = config_lib.base_config()
    c.rule = rule
    c.rule_kwargs = ml_collections.ConfigDict(kwargs)
    return c


# (rule, hyperparameter, value of the wrong kind, words of the error): one case per kind
# of default and kind of mistake, not every hyperparameter of every rule.
WRONG_KIND = [
    ('ff', 'threshold', '2.0', 'a number'),            # a string for a float
    ('pc', 'inference_lr', True, 'a number'),          # a bool for a float
    ('dfa', 'feedback_scale', [1, 2], 'a number'),     # a list for a float
    ('ff', 'blur_steps', 6.0, 'an integer'),           # a whole float for an integer
    ('pfa', 'ratio', 10.5, 'an integer'),
    ('pc', 'beta', math.nan, 'a finite number'),
    ('dfa', 'feedback_scale', math.inf, 'a finite number'),
    ('fa', 'alignment_metrics', 1, 'True or False'),   # an int for a bool
    ('usf', 'scaled', 'True', 'True or False'),        # a string for a bool
    ('ff', 'mode', 1, 'a string'),
]


def test_cases_name_real_hyperparameters_of_the_kind_they_test():
    # a renamed hyperparameter would otherwise turn its case into an "unknown name" error
    kinds = {'a number': numbers.Real, 'an integer': numbers.Integral, 'a finite number': float,
             'True or False': bool, 'a string': str}
    for rule, name, _, what in WRONG_KIND:
        default = registry.defaults(rule)[name]
        assert isinstance(default, kinds[what]), (rule, name, default)


@pytest.mark.parametrize('rule,name,value,what', WRONG_KIND,
                         ids=[f'{r}.{n}={v!r}' for r, n, v, _ in WRONG_KIND])
def test_a_value_of_the_wrong_kind_is_one_line_naming_the_key(rule, name, value, what):
    with pytest.raises(ConfigError) as e:
        config_lib.validate(_config(rule, **{name: value}))
    msg = str(e.value)
    assert f'rule_kwargs.{name}' in msg and what in msg and repr(value) in msg, msg
    assert '\n' not in msg, msg


@pytest.mark.parametrize('rule', sorted(registry.RULES))
def test_defaults_pass(rule):
    config_lib.validate(_config(rule, **config_lib.rule_defaults(rule)))


def test_int_for_a_float_passes():
    config_lib.validate(_config('ff', threshold=2))


def _tiny_data():
    """What `validate_with_data` reads of a data set: 256 flat examples, 10 classes."""
    return types.SimpleNamespace(x_train=np.zeros((256, 64), np.float32), input_shape=(64,),
                                 num_classes=10)


def _built(rule, **kwargs):
    c = _config(rule, **kwargs)
    c.model.hidden = (8, 8)
    config_lib.validate(c)
    config_lib.validate_with_data(c, _tiny_data())


# Values of the right kind that the constructor refuses (checked when the rule is built).
BAD_RANGES = [('pc', 'inference_lr', -0.1), ('pc', 'inference_momentum', 1.0),
              ('pc', 'beta', 0.0), ('ipc', 'inference_steps', 0), ('ff', 'blur_steps', -1)]


@pytest.mark.parametrize('rule,name,value', BAD_RANGES,
                         ids=[f'{r}.{n}={v}' for r, n, v in BAD_RANGES])
def test_out_of_range_settings_are_refused_when_the_rule_is_built(rule, name, value):
    with pytest.raises(ConfigError, match=name) as e:
        _built(rule, **{name: value})
    assert '\n' not in str(e.value)


def test_settings_at_the_edge_of_their_range_build():
    _built('pc', inference_steps=0, inference_momentum=0.5, beta=-0.5, inference_lr=0.0)


def test_swept_float_for_an_integer_is_refused():
    c = _config('ff', blur_steps=6)
    c.sweep = 'rule_kwargs.blur_steps=2,2.5'
    config_lib.validate(c)
    config_lib.validate(config_lib.sweep_member(c, {'rule_kwargs.blur_steps': 2.0}))
    with pytest.raises(ConfigError, match='blur_steps'):
        config_lib.sweep_member(c, {'rule_kwargs.blur_steps': 2.5})


def test_swept_float_hyperparameter_set_as_an_int_sweeps_floats():
    c = _config('ff', threshold=2)  # an int where the rule's default is a float: fine
    c.sweep = 'rule_kwargs.threshold=1.5,2.5'
    config_lib.validate(c)
    member = config_lib.sweep_member(c, {'rule_kwargs.threshold': 1.5})
    config_lib.validate(member)
    assert member.rule_kwargs.threshold == 1.5


@pytest.mark.parametrize('value', [math.inf, math.nan])
def test_swept_non_finite_value_is_refused(value):
    c = _config('dfa', feedback_scale=1.0)
    with pytest.raises(ConfigError, match='feedback_scale'):
        config_lib.validate(config_lib.sweep_member(c, {'rule_kwargs.feedback_scale': value}))


def test_swept_out_of_range_value_is_refused():
    c = _config('pc', inference_lr=0.1)
    c.model.hidden = (8,)
    member = config_lib.sweep_member(c, {'rule_kwargs.inference_lr': -1.0})
    config_lib.validate(member)
    with pytest.raises(ConfigError, match='inference_lr'):
        config_lib.validate_with_data(member, _tiny_data())


# Through the real CLI (exit 2, one `error:` line, nothing written): the cases
# "rule hyperparameter of the wrong kind ..." of tests/train/test_bad_input.py.
