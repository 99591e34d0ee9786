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
import os
import types

import ml_collections
import numpy as np
import pytest

from neurokit.experiment import config as config_lib
from neurokit.experiment.errors import ConfigError
from neurokit.rules import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _hparams(kind):
    """`[(rule, name, default)]` over every registered rule whose default is of `kind`."""
    return [(rule, name, d) for rule in sorted(registry.RULES)
            for name, d in registry.defaults(rule).items() if kind(d)]


NUMBERS = _hparams(_is_number)
INTEGERS = _hparams(_is_int)
FLOATS = _hparams(lambda d: _is_number(d) and not _is_int(d))
BOOLS = _hparams(lambda d: isinstance(d, bool))
STRINGS = _hparams(lambda d: isinstance(d, str))
ids = lambda cases: [f'{rule}.{name}' for rule, name, _ in cases]


def _config(rule, **kwargs):
    c = config_lib.base_config()
    c.rule = rule
    c.rule_kwargs = ml_collections.ConfigDict(kwargs)
    return c


def _refused(rule, name, value):
    """validate's error for `rule_kwargs.name=value` (fails if it is accepted)."""
    with pytest.raises(ConfigError) as e:
        config_lib.validate(_config(rule, **{name: value}))
    msg = str(e.value)
    assert f'rule_kwargs.{name}' in msg and '\n' not in msg, msg
    return msg


def test_every_rule_is_covered():
    assert NUMBERS and INTEGERS and FLOATS and BOOLS and STRINGS
    assert {rule for rule, _, _ in NUMBERS} >= {'ff', 'pc', 'ipc', 'dfa', 'pfa'}


@pytest.mark.parametrize('rule', sorted(registry.RULES))
def test_defaults_pass(rule):
    config_lib.validate(_config(rule, **registry.defaults(rule)))


@pytest.mark.parametrize('rule,name,default', NUMBERS, ids=ids(NUMBERS))
def test_string_for_a_number_is_refused(rule, name, default):
    msg = _refused(rule, name, str(default))
    assert repr(str(default)) in msg and rule in msg, msg


@pytest.mark.parametrize('rule,name,default', NUMBERS, ids=ids(NUMBERS))
def test_bool_for_a_number_is_refused(rule, name, default):
    _refused(rule, name, True)


@pytest.mark.parametrize('rule,name,default', NUMBERS, ids=ids(NUMBERS))
def test_list_for_a_number_is_refused(rule, name, default):
    _refused(rule, name, [1, 2])


@pytest.mark.parametrize('rule,name,default', INTEGERS, ids=ids(INTEGERS))
def test_float_for_an_integer_is_refused(rule, name, default):
    assert 'integer' in _refused(rule, name, float(default))
    _refused(rule, name, default + 0.5)


@pytest.mark.parametrize('rule,name,default', FLOATS, ids=ids(FLOATS))
def test_non_finite_float_is_refused(rule, name, default):
    for bad in (math.nan, math.inf, -math.inf):
        assert 'finite' in _refused(rule, name, bad)


@pytest.mark.parametrize('rule,name,default', FLOATS, ids=ids(FLOATS))
def test_int_for_a_float_passes(rule, name, default):
    config_lib.validate(_config(rule, **{name: int(default)}))


@pytest.mark.parametrize('rule,name,default', BOOLS, ids=ids(BOOLS))
def test_bool_takes_only_a_bool(rule, name, default):
    for bad in (1, 'True'):
        assert 'True or False' in _refused(rule, name, bad)


@pytest.mark.parametrize('rule,name,default', STRINGS, ids=ids(STRINGS))
def test_string_takes_only_a_string(rule, name, default):
    assert 'a string' in _refused(rule, name, 1)


def _tiny_data():
    """What `validate_with_data` reads of a data set: 256 flat examples, 10 classes."""
    return types.SimpleNamespace(x_train=np.zeros((256, 64), np.float32), input_shape=(64,),
                                 num_classes=10)


def _built(rule, **kwargs):
    c = _config(rule, **kwargs)
    c.model.hidden = (8, 8)
    config_lib.validate(c)
    config_lib.validate_with_data(c, _tiny_data())


BAD_RANGES = [
    ('ipc', 'weight_lr', -1.0), ('ipc', 'weight_lr', 0.0), ('ipc', 'weight_decay', -0.1),
    ('ipc', 'weight_momentum', 1.0), ('ipc', 'weight_momentum', -0.1),
    ('ipc', 'inference_lr', -0.5), ('ipc', 'inference_momentum', 1.0),
    ('ipc', 'inference_steps', 0), ('pc', 'inference_lr', -0.1),
    ('pc', 'inference_momentum', -0.1), ('pc', 'inference_steps', -1), ('pc', 'beta', 0.0),
]


@pytest.mark.parametrize('rule,name,value', BAD_RANGES,
                         ids=[f'{r}.{n}={v}' for r, n, v in BAD_RANGES])
def test_out_of_range_pc_settings_are_refused(rule, name, value):
    with pytest.raises(ConfigError, match=name) as e:
        _built(rule, **{name: value})
    assert '\n' not in str(e.value)


def test_pc_settings_in_range_build():
    _built('ipc', weight_lr=2.7e-4, weight_decay=0.0, weight_momentum=0.0, inference_lr=0.0,
           weight_optimizer='sgd')
    _built('pc', inference_steps=0, inference_momentum=0.5, beta=-0.5)


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
    c = _config('ipc', weight_lr=1e-3)
    c.model.hidden = (8,)
    member = config_lib.sweep_member(c, {'rule_kwargs.weight_lr': -1.0})
    config_lib.validate(member)
    with pytest.raises(ConfigError, match='weight_lr'):
        config_lib.validate_with_data(member, _tiny_data())


# Through the real CLI (exit 2, one `error:` line, nothing written): the cases
# "rule hyperparameter of the wrong kind ..." of tests/train/test_bad_input.py.
