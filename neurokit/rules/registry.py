"""Rule names for configs: one line per rule."""
from __future__ import annotations

import inspect

from neurokit.rules.bp import bp

RULES = {
    'bp': bp,
}


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


def hyperparameters(name):
    """The keyword arguments rule `name`'s constructor accepts (besides the model)."""
    params = list(inspect.signature(RULES[name]).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
