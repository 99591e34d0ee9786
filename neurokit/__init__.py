"""neurokit: learning rules other than backprop, as pure JAX functions.

The public API, as an explicit list; implementations live in the subpackages.
"""
from neurokit import data, losses, models, rules, train
from neurokit.config import base_config, validate
from neurokit.errors import ConfigError, TrainingError, WorkdirError
from neurokit.data import DataError
from neurokit.models import Model, Layer, mlp, cnn
from neurokit.rules import Rule, bp
from neurokit.train import TrainState, run

__version__ = '0.1.0'

__all__ = ['ConfigError', 'DataError', 'Layer', 'Model', 'Rule', 'TrainState', 'TrainingError',
           'WorkdirError', 'base_config', 'bp', 'cnn', 'data', 'losses', 'mlp', 'models', 'rules',
           'run', 'train', 'validate']
