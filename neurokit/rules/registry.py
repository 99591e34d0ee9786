"""Rule names for configs: one line per rule in `_RULES`."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers

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
}


def _load():
    rules = {}
    for name, target in _RULES.items():
        module, attr = target.split(':')
        if importlib.util.find_spec(f'neurokit.rules.{module}') is None:
            continue  # a rule family not written yet; an import error in one that exists is raised
        rules[name] = getattr(importlib.import_module(f'neurokit.rules.{module}'), attr)
    return rules


RULES = _load()


def build(name, model, **hparams):
    """Builds the rule `name` for `model` with hyperparameters `hparams`.

    Raises:
      ValueError: unknown name (the message lists the valid ones), an unknown
        hyperparameter (the message lists the rule's accepted ones), or one of
        the wrong kind for its default (`kind_wanted`; ranges are the
        constructor's to check).
    """
    if name not in RULES:
        raise ValueError(f'unknown rule {name!r}; valid names: {", ".join(sorted(RULES))}')
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
    return RULES[name](model, **hparams)


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
    return [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def hyperparameters(name):
    """The keyword arguments rule `name`'s constructor accepts (besides the model)."""
    return [p.name for p in _parameters(name)]


def defaults(name):
    """`{hyperparameter: default}` of rule `name`'s constructor, for those that have one."""
    return {p.name: p.default for p in _parameters(name) if p.default is not p.empty}
