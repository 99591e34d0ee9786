"""The benchmarks' 'KEY=VALUE' config overrides (fa.py --overrides / --select_grid)."""
import pytest

from experiments.benchmarks import common
from experiments.configs import dfa


def test_parse_overrides_splits_items_and_keys():
    assert common.parse_overrides('rule_kwargs.conv_feedback=channel, epochs=50') == {
        'rule_kwargs.conv_feedback': 'channel', 'epochs': '50'}
    assert common.parse_overrides('') == {}
    with pytest.raises(ValueError, match='KEY=VALUE'):
        common.parse_overrides('epochs')


def test_apply_overrides_converts_to_each_keys_type():
    config = dfa.get_config()
    common.apply_overrides(config, {'epochs': '50', 'optimizer.learning_rate': '5e-4',
                                    'rule_kwargs.alignment_metrics': 'true',
                                    'rule_kwargs.conv_feedback': 'full'})
    assert config.epochs == 50 and isinstance(config.epochs, int)
    assert config.optimizer.learning_rate == 5e-4
    assert config.rule_kwargs.alignment_metrics is True
    assert config.rule_kwargs.conv_feedback == 'full'
    with pytest.raises(ValueError, match='unknown config key'):
        common.apply_overrides(config, {'rule_kwargs.conv_feedbak': 'full'})


def test_apply_overrides_sets_typed_values_as_they_are():
    config = dfa.get_config()
    common.apply_overrides(config, {'model.channels': (8, 16), 'optimizer.learning_rate': 2e-3})
    assert config.model.channels == (8, 16) and config.optimizer.learning_rate == 2e-3


def test_setting_of_a_result_key():
    assert common.setting_of('lenet/dfa@50ep[conv_feedback=channel]') == '[conv_feedback=channel]'
    assert common.setting_of('lenet/bp@50ep') == ''
