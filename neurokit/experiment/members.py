"""Who a run trains: the members of one vmapped program, and how their results are reported.

A run trains `num_seeds` seeds of its config as one vmapped program; `--config.sweep`
adds a grid of hyperparameter values, and the members are then every setting of the
grid times the seeds, setting-major:

  python -m experiments.train --config=experiments/configs/bp.py --workdir=/tmp/runs/lr \
      --config.sweep='optimizer.learning_rate=0.0003,0.001,0.003' --config.num_seeds=2 \
      --config.validation_examples=5000

A seed run is the sweep with an empty grid: one setting (the config's own values),
`num_seeds` members. Each setting's members share its values and differ by seed
(`seed`, `seed + 1`, ...). The member's rule and optimizer are built inside the
vmapped epoch from its traced values, so the whole sweep compiles once; with an
empty grid they are the run's own rule and optimizer, built once.

Spreads over seeds are sample standard deviations (ddof=1, as papers report them);
with one seed there is no spread to measure and the std is reported as 0.0.
A sweep ranks its settings by their mean VALIDATION accuracy over seeds
(`--config.validation_examples`, held out from the training set), never by test
accuracy: tuning on the test set would overstate the test result.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from neurokit import optim
from neurokit.experiment import config as config_lib
from neurokit.experiment.errors import ConfigError
from neurokit.rules import registry as rule_registry

STD_DDOF = 1  # sample standard deviation over seeds


class Members(NamedTuple):
    """The members of a run, in the order of the vmapped axis.

    Attributes:
      values: per member, its swept values `{'optimizer.learning_rate': 0.001, ...}`
        (`{}` for every member of a run without a sweep).
      seeds: per member, its seed.
      num_seeds: members per setting.
    """
    values: list
    seeds: list
    num_seeds: int

    @property
    def swept(self) -> bool:
        """Whether the members differ by more than their seed (a `--config.sweep` grid)."""
        return bool(self.values and self.values[0])

    @property
    def names(self) -> list:
        """The swept keys, sorted (the order of the vmapped value arrays)."""
        return sorted(self.values[0]) if self.values else []

    @property
    def settings(self) -> list:
        """The distinct settings in member order; setting `i` holds members
        `i * num_seeds ... (i + 1) * num_seeds - 1`."""
        return self.values[::self.num_seeds]

    def arrays(self) -> dict:
        """Per swept key, the members' values as one float32 array (the vmapped input)."""
        return {k: np.asarray([v[k] for v in self.values], np.float32) for k in self.names}


def members(config) -> tuple[list[dict], list[int]]:
    """The grid of `config.sweep` times the seeds: (per-member values, per-member seeds).

    Without a sweep: `num_seeds` members with empty values.
    """
    plan = plan_members(config)
    return plan.values, plan.seeds


def plan_members(config) -> Members:
    """The `Members` of a (validated) config."""
    axes = config_lib.parse_sweep(config.sweep, config)
    names = list(axes)
    values, seeds = [], []
    for combo in itertools.product(*(axes[n] for n in names)):
        for i in range(config.num_seeds):
            values.append(dict(zip(names, combo)))
            seeds.append(config.seed + i)
    return Members(values, seeds, config.num_seeds)


def label(values: dict) -> str:
    """A setting (or a member, with its seed) for messages and tables:
    'optimizer.learning_rate=0.001, seed=0'."""
    return ', '.join(f'{k}={v:g}' for k, v in values.items())


def member_builder(config, model, rule, optimizer, steps_per_epoch: int):
    """`hp -> (rule, optimizer)` for one member, `hp` its (traced) swept values.

    With no swept values, the run's own `rule` and `optimizer` (built once); else both
    are rebuilt from the config with the member's values in place, inside the vmapped
    program, which is what lets one compiled epoch train every setting.
    """
    base_rule = config.rule_kwargs.to_dict()
    base_opt = config.optimizer.to_dict()
    groups = config_lib.optimizer_groups(config)

    def build(hp):
        if not hp:
            return rule, optimizer
        rule_kw = dict(base_rule)
        opt_cfg = optim.Settings(base_opt)
        for key, v in hp.items():
            group, _, name = key.partition('.')
            (rule_kw if group == 'rule_kwargs' else opt_cfg)[name] = v
        member_rule = rule_registry.build(config.rule, model, layerwise=config.layerwise_updates,
                                          **rule_kw)
        return member_rule, optim.build(opt_cfg, steps_per_epoch, config.epochs,
                                        config.model.dtype, groups, member_rule.param_labels)

    return build


def check_settings(config, plan: Members, model) -> None:
    """Checks every swept setting as a run with those values would be checked (range checks
    of `validate`, the rule's constructor), in member order; the first bad one is reported.

    Raises:
      ConfigError: 'config.sweep member <values>: <what the run would have said>'.
    """
    for setting in plan.settings if plan.swept else ():
        try:
            member = config_lib.sweep_member(config, setting)
            config_lib.validate(member)
            if any(k.startswith('rule_kwargs.') for k in setting):
                build_rule(member, model)
        except ConfigError as e:
            raise ConfigError(f'config.sweep member {label(setting)}: {e}') from None


def build_rule(config, model):
    """The config's rule on `model` (its layerwise form where `config.layerwise_updates` asks
    for it); a constructor's refusal becomes one ConfigError line."""
    kwargs = config.rule_kwargs.to_dict()
    try:
        return rule_registry.build(config.rule, model, layerwise=config.layerwise_updates,
                                   **kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f'rule {config.rule!r} cannot be built with rule_kwargs {kwargs}: '
                          f'{" ".join(str(e).split())}') from None


# ----------------------------------------------------------------------------- reporting


def spread(values) -> tuple[float, float]:
    """(mean, sample std) of `values`; the std is 0.0 for a single value (no spread)."""
    a = np.asarray(values, np.float64)
    std = float(a.std(ddof=STD_DDOF)) if a.size > STD_DDOF else 0.0
    return float(a.mean()), std


def setting_results(plan: Members, test, validation=None) -> list:
    """Per setting: its values, seeds, and mean/std test (and validation) accuracy over them.

    Args:
      plan: the members.
      test: per member, the final test accuracy.
      validation: per member, the final validation accuracy, or None (no validation split).
    """
    out = []
    k = plan.num_seeds
    for i, setting in enumerate(plan.settings):
        row = {'values': dict(setting), 'seeds': plan.seeds[i * k:(i + 1) * k]}
        if validation is not None:
            row['validation_accuracy_mean'], row['validation_accuracy_std'] = spread(
                validation[i * k:(i + 1) * k])
        row['test_accuracy_mean'], row['test_accuracy_std'] = spread(test[i * k:(i + 1) * k])
        out.append(row)
    return out


def best_setting(settings: list) -> dict | None:
    """The setting with the highest mean validation accuracy over its seeds (the first of
    equals), with its index; None without a validation split. Test accuracy never ranks."""
    if not settings or 'validation_accuracy_mean' not in settings[0]:
        return None
    best = int(np.argmax([s['validation_accuracy_mean'] for s in settings]))
    return {'index': best, **settings[best]}


NO_VALIDATION_NOTE = ('the sweep ranks no setting, as it has no validation split: set '
                      '--config.validation_examples=N to hold out the last N training examples '
                      'and rank the settings on them (never on test)')


def table(settings: list, best: dict | None) -> str:
    """The sweep's settings as a labelled text table (accuracies in %, mean ± sample std over
    seeds); the best setting (by validation accuracy) is marked with '*'."""
    keys = list(settings[0]['values']) if settings else []
    seeds = len(settings[0]['seeds']) if settings else 0
    cols = keys + (['validation acc %'] if 'validation_accuracy_mean' in settings[0] else []) + [
        'test acc %']
    rows = []
    for i, s in enumerate(settings):
        row = [f'{s["values"][k]:g}' for k in keys]
        for what in ('validation', 'test'):
            if f'{what}_accuracy_mean' in s:
                row.append(f'{100 * s[f"{what}_accuracy_mean"]:.2f} ± '
                           f'{100 * s[f"{what}_accuracy_std"]:.2f}')
        rows.append(('*' if best is not None and best['index'] == i else ' ', row))
    widths = [max(len(c), *(len(r[j]) for _, r in rows)) for j, c in enumerate(cols)]
    line = lambda mark, cells: f'{mark} ' + '  '.join(c.rjust(w) for c, w in zip(cells, widths))
    head = (f'sweep: {len(settings)} settings x {seeds} seed(s); mean ± sample std (ddof=1) '
            'over seeds' + ('; * = best validation accuracy' if best is not None else ''))
    return '\n'.join([head, line(' ', cols)] + [line(m, r) for m, r in rows])
