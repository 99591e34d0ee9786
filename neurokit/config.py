"""The config schema shared by every experiment, and its validation.

Every config file starts from `base_config()` and overrides fields, so the set
of keys is fixed: a misspelt key in a file or on the command line is an error,
not a silently ignored setting. `validate` checks names, types and ranges before
anything is loaded or compiled.
"""
from __future__ import annotations

import numbers

import ml_collections

from neurokit import models
from neurokit.data import DATASETS
from neurokit.errors import ConfigError
from neurokit.rules import registry as rule_registry
from neurokit.train import optim


def base_config() -> ml_collections.ConfigDict:
    """All keys a run accepts, with defaults (backprop MLP on Fashion-MNIST)."""
    c = ml_collections.ConfigDict()
    c.rule = 'bp'
    c.rule_kwargs = ml_collections.ConfigDict()  # the rule constructor's hyperparameters
    c.dataset = 'fashion_mnist'
    c.data_dir = ''            # '' = the data set's default folder
    c.train_limit = 0          # use only the first N training examples (0 = all)
    c.epochs = 20
    c.batch_size = 128
    c.eval_batch_size = 1000
    c.seed = 0
    c.num_seeds = 1            # >1: train that many seeds as one vmapped program

    c.model = ml_collections.ConfigDict()
    c.model.name = 'mlp'       # one of neurokit.models.MODELS
    c.model.hidden = (1000, 1000)
    c.model.activation = 'relu'
    c.model.init = 'lecun_normal'
    c.model.dtype = 'float32'
    c.model.channels = (32, 64)      # model 'cnn' only
    c.model.kernel_size = 3          # model 'cnn' only
    c.model.dense_widths = (128,)    # model 'cnn' only

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = 'adam'
    c.optimizer.learning_rate = 1e-3
    c.optimizer.momentum = 0.9       # sgd, rmsprop
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = 'constant'
    c.optimizer.warmup_epochs = 0.0
    c.optimizer.grad_clip = 0.0

    # Bookkeeping: none of these change what is computed (see RESUMABLE_KEYS).
    c.checkpoint_every = 1     # save a checkpoint every N epochs (0: only the final one)
    c.keep_checkpoints = 3     # keep the newest K checkpoints
    c.progress = 'auto'        # per-epoch progress line on stderr: auto (if a terminal), on, off
    c.tensorboard = True       # TensorBoard event files in <workdir>/tb
    c.nan_policy = 'stop'      # non-finite loss/params: 'stop' the run, or 'skip' the step
    return c


# Keys that may differ between a checkpoint's config and the config resuming it:
# they change how a run is watched or saved, never the numbers it computes.
RESUMABLE_KEYS = ('eval_batch_size', 'checkpoint_every', 'keep_checkpoints', 'progress',
                  'tensorboard')
PROGRESS = ('auto', 'on', 'off')
NAN_POLICIES = ('stop', 'skip')


_INT_KEYS = {'train_limit': 0, 'epochs': 1, 'batch_size': 1, 'eval_batch_size': 1, 'seed': 0,
             'num_seeds': 1, 'checkpoint_every': 0, 'keep_checkpoints': 1}
_STR_KEYS = ('rule', 'dataset', 'data_dir', 'progress', 'nan_policy')
_MODEL_STR_KEYS = ('name', 'activation', 'init', 'dtype')


def _check_keys(cfg, reference, prefix=''):
    unknown = sorted(set(cfg.keys()) - set(reference.keys()))
    if unknown:
        raise ConfigError(f'unknown config key {prefix}{unknown[0]}; valid keys: '
                          f'{", ".join(prefix + k for k in sorted(reference.keys()))}')


def _one_of(value, valid, what):
    if value not in valid:
        raise ConfigError(f'unknown {what} {value!r}; valid names: {", ".join(sorted(valid))}')


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks a config before any data is read or anything compiled.

    Returns:
      The config (unchanged).

    Raises:
      ConfigError: one line naming the key, the problem and the valid choices.
    """
    ref = base_config()
    _check_keys(config, ref)
    _check_keys(config.model, ref.model, 'model.')
    _check_keys(config.optimizer, ref.optimizer, 'optimizer.')
    for key in _STR_KEYS:
        _check_type(config[key], str, f'config.{key}', 'a string')
    for key in _MODEL_STR_KEYS:
        _check_type(config.model[key], str, f'config.model.{key}', 'a string')
    for key in ('name', 'schedule'):
        _check_type(config.optimizer[key], str, f'config.optimizer.{key}', 'a string')
    _check_type(config.tensorboard, bool, 'config.tensorboard', 'True or False')
    if not isinstance(config.rule_kwargs, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f'config.rule_kwargs must be a ConfigDict of the rule\'s '
                          f'hyperparameters, got {config.rule_kwargs!r}')
    _one_of(config.progress, PROGRESS, 'progress mode')
    _one_of(config.nan_policy, NAN_POLICIES, 'nan_policy')
    _one_of(config.rule, rule_registry.RULES, 'rule')
    _one_of(config.dataset, DATASETS, 'dataset')
    _one_of(config.model.name, models.MODELS, 'model')
    _one_of(config.model.activation, models.ACTIVATIONS, 'activation')
    _one_of(config.model.init, models.INITS, 'init')
    _one_of(config.model.dtype, ('float32', 'bfloat16', 'float16', 'float64'), 'dtype')
    _one_of(config.optimizer.name, optim.OPTIMIZERS, 'optimizer')
    _one_of(config.optimizer.schedule, optim.SCHEDULES, 'schedule')
    for key, low in _INT_KEYS.items():
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ConfigError(f'config.{key} must be an integer >= {low}, got {v!r}')
    for key in ('learning_rate', 'momentum', 'weight_decay', 'warmup_epochs', 'grad_clip'):
        v = config.optimizer[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0 or v != v:
            raise ConfigError(f'config.optimizer.{key} must be a number >= 0, got {v!r}')
    if not isinstance(config.model.kernel_size, numbers.Integral) or isinstance(
            config.model.kernel_size, bool) or config.model.kernel_size < 1:
        raise ConfigError(f'config.model.kernel_size must be an integer >= 1, '
                          f'got {config.model.kernel_size!r}')
    if config.optimizer.learning_rate == 0:
        raise ConfigError('config.optimizer.learning_rate must be > 0')
    for key in ('hidden', 'channels', 'dense_widths'):
        v = config.model[key]
        if not isinstance(v, (tuple, list)) or not all(
                isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in v):
            raise ConfigError(f'config.model.{key} must be a tuple of positive integers, got {v!r}')
    accepted = rule_registry.hyperparameters(config.rule)
    unknown = sorted(set(config.rule_kwargs.keys()) - set(accepted))
    if unknown:
        raise ConfigError(f'rule {config.rule!r} has no hyperparameter rule_kwargs.{unknown[0]}; '
                          f'valid: {", ".join(accepted) or "(none)"}')
    return config


def _check_type(value, kind, name, what):
    if not isinstance(value, kind):
        raise ConfigError(f'{name} must be {what}, got {value!r}')


def validate_with_data(config, dataset) -> None:
    """Checks the parts of a config that depend on the loaded data set.

    Builds the model and the rule (cheap: no arrays are allocated) so that a
    model that does not fit the input (e.g. 'lenet' on 8x8 digits) or a bad
    rule hyperparameter fails here, before anything is compiled.

    Raises:
      ConfigError: one line naming the problem.
    """
    n = dataset.x_train.shape[0] if not config.train_limit else min(config.train_limit,
                                                                     dataset.x_train.shape[0])
    if config.batch_size > n:
        raise ConfigError(f'config.batch_size={config.batch_size} exceeds the {n} training '
                          f'examples of {config.dataset}; lower --config.batch_size')
    m = config.model
    try:
        model = models.build(m.name, dataset.input_shape, dataset.num_classes, hidden=m.hidden,
                             activation=m.activation, init=m.init, dtype=m.dtype,
                             channels=m.channels, kernel_size=m.kernel_size,
                             dense_widths=m.dense_widths)
    except (ValueError, TypeError) as e:
        raise ConfigError(f'model {m.name!r} does not fit {config.dataset} inputs of shape '
                          f'{dataset.input_shape}: {" ".join(str(e).split())}; choose another '
                          '--config.model.name or model settings') from None
    try:
        rule_registry.build(config.rule, model, **config.rule_kwargs.to_dict())
    except (ValueError, TypeError) as e:
        raise ConfigError(f'rule {config.rule!r} cannot be built with rule_kwargs '
                          f'{config.rule_kwargs.to_dict()}: {" ".join(str(e).split())}') from None
