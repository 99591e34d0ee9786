"""neurokit: learning rules other than backprop, as pure JAX functions.

The library: models, rules, data, the compiled training step/epoch/evaluation and
their parallel wrappers. It imports jax and optax only; the experiment runner
(config, CLI, workdir, checkpoints, metrics, sweeps from the command line) is
`neurokit.experiment`, which imports the library and never the reverse.
"""
from neurokit import data, losses, models, optim, rules, train
from neurokit.data import DataError
from neurokit.models import Model, Layer, mlp, cnn
from neurokit.rules import Rule, bp
from neurokit.train import TrainState

__version__ = '0.1.0'

__all__ = ['DataError', 'Layer', 'Model', 'Rule', 'TrainState', 'bp', 'cnn', 'data', 'losses',
           'mlp', 'models', 'optim', 'rules', 'train']
