"""The experiment runner: config schema, CLI, workdir, checkpoints, metrics, sweeps.

It imports the library (`neurokit.models`, `rules`, `data`, `train`, `parallel`) and the
runner's own tools (orbax, absl, ml_collections, tensorboardX); the library never
imports it.
"""
from neurokit.experiment.config import base_config, validate
from neurokit.experiment.errors import ConfigError, TrainingError, WorkdirError
from neurokit.experiment.run import build, run

__all__ = ['ConfigError', 'TrainingError', 'WorkdirError', 'base_config', 'build', 'run',
           'validate']
