"""Rule names for configs: one line per rule in `_RULES`."""
from __future__ import annotations

import importlib
import importlib.util
import inspect

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
      ValueError: unknown name (the message lists the valid ones) or an
        unknown hyperparameter (the message lists the rule's accepted ones).
    """
    if name not in RULES:
        raise ValueError(f'unknown rule {name!r}; valid names: {", ".join(sorted(RULES))}')
    accepted = hyperparameters(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(f'rule {name!r} has no hyperparameter {", ".join(unknown)}; '
                         f'valid: {", ".join(accepted) or "(none)"}')
    return RULES[name](model, **hparams)


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
