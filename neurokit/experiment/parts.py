"""The parts of a run built from its config and data set, each once: the data split, the
model, the rule and the optimizer.

The constructors are where values are checked: a model that does not fit the data's
inputs, or a rule hyperparameter its constructor refuses, surfaces as one ConfigError
line (`neurokit.experiment.config.validate_with_data`, which returns the model and rule
it built), before anything is compiled or written.

The split (`--config.validation_examples=V`, `--config.train_limit=T`): the LAST `V`
examples of the training set are held out for validation and never trained on; training
uses the first `min(T or all, n - V)` of the rest. The test set is the data set's own.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from neurokit import optim
from neurokit.experiment import config as config_lib
from neurokit.experiment.errors import ConfigError


class Split(NamedTuple):
    """Which examples of a data set a run trains, validates and tests on.

    Attributes:
      num_train: training examples used (the first `num_train` rows of `x_train`).
      num_validation: held-out examples (the last `num_validation` rows of `x_train`).
      available: training examples left after the hold-out (`num_train` <= it).
    """
    num_train: int
    num_validation: int
    available: int

    def train(self, dataset):
        """The training examples `(x, y)` (numpy views)."""
        return dataset.x_train[:self.num_train], dataset.y_train[:self.num_train]

    def validation(self, dataset):
        """The held-out examples `(x, y)`, or None without a validation split."""
        if not self.num_validation:
            return None
        return dataset.x_train[-self.num_validation:], dataset.y_train[-self.num_validation:]


def validation_examples(config) -> int:
    """`config.validation_examples` (0 where the config predates the key)."""
    return config.get('validation_examples', 0)


def split(config, dataset) -> Split:
    """The run's split of `dataset` (see the module docstring), for a config that
    `neurokit.experiment.config.validate_with_data` accepted with this data set."""
    n = dataset.x_train.shape[0]
    v = validation_examples(config)
    available = n - v
    used = min(available, config.train_limit) if config.train_limit else available
    return Split(used, v, available)


def train_limit_note(config, s: Split) -> str | None:
    """The note for a `train_limit` beyond the training examples there are (not refused:
    the run trains on all of them), else None."""
    if not config.train_limit or config.train_limit <= s.available:
        return None
    held = f' after holding out {s.num_validation} for validation' if s.num_validation else ''
    return (f'config.train_limit={config.train_limit} exceeds the {s.available} training '
            f'examples of {config.dataset}{held}; training uses all {s.num_train}')


def build(config, dataset, s: Split | None = None):
    """Model, rule and optimizer for a validated config and its data set, each built once.

    Args:
      config: a validated config.
      dataset: the loaded `neurokit.data.Dataset`.
      s: its `split` (computed here when not given): the optimizer's schedule counts
        `s.num_train // batch_size` steps per epoch.

    Returns:
      `(model, rule, optimizer)`; the rule is its layerwise form where
      `config.layerwise_updates` asks for it.

    Raises:
      ConfigError: the batch or the hold-out does not fit the data, the model does not fit
        its inputs, the rule's constructor refuses a hyperparameter, or the rule has no
        layerwise form where `layerwise_updates` asks for one
        (`neurokit.experiment.config.validate_with_data`).
    """
    model, rule = config_lib.validate_with_data(config, dataset)
    s = split(config, dataset) if s is None else s
    groups = optimizer_groups(config, model, rule)
    optimizer = optim.build(config.optimizer, s.num_train // config.batch_size, config.epochs,
                            config.model.dtype, groups, rule.param_labels)
    return model, rule, optimizer


def optimizer_groups(config, model, rule) -> dict:
    """`config.optimizer_groups` as `{label: {key: value}}`, each label one the rule gives
    its parameters (`rule.param_labels`, read on the abstract parameters: nothing is
    computed).

    Raises:
      ConfigError: groups for a rule that labels nothing, or a label it does not use.
    """
    groups = config_lib.optimizer_groups(config)
    if not groups:
        return {}
    if rule.param_labels is None:
        raise ConfigError(f'config.optimizer_groups names {", ".join(sorted(groups))}, but rule '
                          f'{config.rule!r} puts its parameters in no groups; drop '
                          'optimizer_groups')
    key = jax.random.PRNGKey(0)
    params = jax.eval_shape(lambda k: rule.init_params(k, model.init(k)), key)
    used = set(jax.tree.leaves(rule.param_labels(params)))
    unknown = sorted(set(groups) - used)
    if unknown:
        raise ConfigError(f'config.optimizer_groups.{unknown[0]}: rule {config.rule!r} has no '
                          f'parameter group {unknown[0]!r}; its groups: {", ".join(sorted(used))}')
    return groups


def member_keys(seeds) -> jax.Array:
    """The members' PRNG keys, one per seed (stacked)."""
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])
