"""Rule names for configs: one line per rule in `_RULES`.

A line is `'name': 'module:constructor'` (under `neurokit.rules`). What a rule can do
it declares itself, on its constructor (`rules.base.declare`: the layer kinds it trains,
whether a pmap run is exact, the conformance battery's toy learning rate, the
multi-process tolerance), read back by `capabilities(name)`. A rule with a layerwise
form declares it by the keyword `layerwise` of its constructor (`build(...,
layerwise=True)`).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers

from neurokit.rules.base import Capabilities

# name -> 'module:constructor' under neurokit.rules; one line per rule.
_RULES = {
    'bp': 'bp:bp',
    'ff': 'ff:ff',
    'cff': 'ff:cff',
    'mf': 'mf:mf',
    'pc': 'pc:pc',
    'ipc': 'pc:ipc',
    'fa': 'fa:fa',
    'dfa': 'fa:dfa',
    'usf': 'fa:usf',
    'brsf': 'fa:brsf',
    'frsf': 'fa:frsf',
    'pfa': 'fa:pfa',
    'pepita': 'pepita:pepita',
    'foton': 'pepita:foton',
    'ccl': 'ccl:ccl',
    'lls': 'lls:lls',
    'fg': 'fg:fg',
    'dualprop': 'dualprop:dualprop',
    'ep': 'ep:ep',
}


# The rule every other is measured against: a config's default rule, compare's reference.
BASELINE = 'bp'

# The constructor keyword that asks a rule for its layerwise form (not a hyperparameter:
# the config's key is config.layerwise_updates).
LAYERWISE = 'layerwise'


def _load():
    rules = {}
    for name, line in _RULES.items():
        module, attr = line.split(':')
        if importlib.util.find_spec(f'neurokit.rules.{module}') is None:
            continue  # a rule family not written yet; an import error in one that exists is raised
        rules[name] = getattr(importlib.import_module(f'neurokit.rules.{module}'), attr)
    return rules


RULES = _load()


def _check_name(name):
    if name not in RULES:
        raise ValueError(f'unknown rule {name!r}; valid names: {", ".join(sorted(RULES))}')


def build(name, model, *, layerwise: bool = False, **hparams):
    """Builds the rule `name` for `model` with hyperparameters `hparams`.

    Args:
      name: a registered rule name.
      model: the network.
      layerwise: build the rule's layerwise form (an `OptimizerRule` that steps
        each block of layers with the optimizer inside its pass;
        `config.layerwise_updates`).
      **hparams: the constructor's hyperparameters.

    Returns:
      A `Rule`, or an `OptimizerRule` (ipc; any rule with `layerwise`).

    Raises:
      ValueError: unknown name (the message lists the valid ones), an unknown
        hyperparameter (the message lists the rule's accepted ones), one of
        the wrong kind for its default (`kind_wanted`; ranges are the
        constructor's to check), or `layerwise` for a rule without that form.
    """
    _check_name(name)
    if layerwise and not has_layerwise(name):
        with_it = ', '.join(n for n in sorted(RULES) if has_layerwise(n))
        raise ValueError(f'rule {name!r} has no layerwise step (rules with one: {with_it}); '
                         'set config.layerwise_updates=False, or build it with layerwise=False')
    accepted = hyperparameters(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(f'rule {name!r} has no hyperparameter {", ".join(unknown)}; '
                         f'valid: {", ".join(accepted) or "(none)"}')
    default = defaults(name)
    for key, value in hparams.items():
        # arrays (a sweep's traced values, numpy or JAX scalars) are left to the constructor
        if key in default and not hasattr(value, 'dtype'):
            what = kind_wanted(default[key], value)
            if what:
                raise ValueError(f'rule {name!r}: {key} must be {what} (its default is '
                                 f'{default[key]!r}), got {value!r}')
    if layerwise:
        hparams[LAYERWISE] = True
    return RULES[name](model, **hparams)


def has_layerwise(name) -> bool:
    """Whether rule `name` has a layerwise form (its constructor takes `layerwise`)."""
    _check_name(name)
    return LAYERWISE in inspect.signature(RULES[name]).parameters


def capabilities(name) -> Capabilities:
    """What rule `name` declares about itself (`rules.base.declare`; the defaults where it
    declares nothing)."""
    _check_name(name)
    return getattr(RULES[name], 'capabilities', Capabilities())


def pmap_exact(name) -> bool:
    """Whether a pmap run of rule `name` equals its one-device run up to rounding.

    True where the batch update is the mean of equal slices' updates (each device steps
    its slice, the updates are averaged before the optimizer); False for a rule that
    declares `pmap_exact=False` (per-device random negatives, optimizer steps inside the
    rule's pass).
    """
    return capabilities(name).pmap_exact


def kind_wanted(default, value):
    """What `value` must be, given the constructor's `default`; None when it is that.

    A real-number default takes a finite number (an integer for an integer
    default); a bool, str or tuple default takes the same kind. Other defaults
    (None, none at all) are left to the rule's constructor, as are the allowed
    names of a string.
    """
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else 'True or False'
    if isinstance(default, numbers.Integral):
        return None if is_number and isinstance(value, numbers.Integral) else 'an integer'
    if isinstance(default, numbers.Real):
        if not is_number:
            return 'a number'
        finite = isinstance(value, numbers.Integral) or math.isfinite(value)
        return None if finite else 'a finite number'
    if isinstance(default, str):
        return None if isinstance(value, str) else 'a string'
    if isinstance(default, (tuple, list)):
        return None if isinstance(value, (tuple, list)) else 'a tuple'
    return None


def _parameters(name):
    """The keyword parameters of rule `name`'s constructor (besides the model)."""
    params = list(inspect.signature(RULES[name]).parameters.values())[1:]
    return [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != LAYERWISE]


def hyperparameters(name):
    """The keyword arguments rule `name`'s constructor accepts (besides the model)."""
    return [p.name for p in _parameters(name)]


def defaults(name):
    """`{hyperparameter: default}` of rule `name`'s constructor, for those that have one."""
    return {p.name: p.default for p in _parameters(name) if p.default is not p.empty}
