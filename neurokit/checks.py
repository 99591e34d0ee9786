"""Argument checks shared by constructors across the package (rules, optimizers, config,
models, mesh, pipeline).

Its one neurokit import is `neurokit.traced`, itself a leaf (it imports only jax), so any
module can use this one without an import cycle.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

import jax.numpy as jnp

from neurokit.traced import is_traced


def is_number(value) -> bool:
    """Whether `value` is a real number: a Python or NumPy int or float (not a bool) or a
    0-d integer or float array (a JAX or NumPy scalar)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, 'dtype', None)
    return (getattr(value, 'shape', None) == () and dtype is not None
            and (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)))


def finite(value) -> bool:
    """Whether `value` is a real number (`is_number`) that is finite (False for a bool, a
    string, None, NaN or inf)."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):  # a traced scalar, an int past float range
        return False


def check_range(name: str, value, ok: Callable[[float], bool] = lambda v: True,
                what: str = 'a finite number', *, where: str = '', schedule: bool = False,
                cannot_sweep: str | None = None) -> None:
    """Raises unless `value` is a finite real number with `ok(float(value))`.

    The one number check of the package: rule constructors, `optim.make` and
    `config.validate` all call it.

    Args:
      name: the argument, as the message names it.
      value: what was passed.
      ok: the range, a predicate on `float(value)`.
      what: what `name` must be, for the message ('a finite number > 0').
      where: the function the message names first ('optim.make'); '' for none.
      schedule: whether a callable (an optax schedule) is accepted, unchecked.
      cannot_sweep: None: a traced value (a sweep member, `neurokit.traced`) is used as
        it is, unchecked; else why it cannot be traced ('sets a loop length'), and a
        traced value is refused, saying so.

    Raises:
      TypeError: `value` is not a real number (a bool, str, None, list; a callable where
        `schedule` is False).
      ValueError: NaN, inf, `not ok(value)`, or a traced value where `cannot_sweep` is set.

    Example:
      >>> check_range('momentum', 0.9, lambda v: 0 <= v < 1, 'a number in [0, 1)',
      ...             where='optim.make')
    """
    prefix = f'{where}: ' if where else ''
    if is_traced(value):
        if cannot_sweep is None:
            return
        raise ValueError(f'{prefix}{name} {cannot_sweep}, so it cannot be swept in one program; '
                         'run one program per value')
    if schedule and callable(value):
        return
    if not is_number(value):
        raise TypeError(f'{prefix}{name} must be {what}, got {value!r} ({type(value).__name__})')
    if not (finite(value) and ok(float(value))):
        raise ValueError(f'{prefix}{name} must be {what}, got {value!r}')


def check_count(name: str, value, minimum: int, why: str = 'sets a shape or a loop length',
                *, where: str = '') -> int:
    """`value` as an int if it is a whole number >= `minimum` (2.0 passes as 2).

    A count cannot be swept (traced): it `why`. Raises as `check_range` does:
    TypeError for a non-number, ValueError for a fraction, a number < `minimum` or a
    traced value.
    """
    check_range(name, value, lambda v: v == int(v) and v >= minimum,
                f'an integer >= {minimum}', where=where, cannot_sweep=why)
    return int(value)


def positive_int(value, name: str, where: str, allowed: str = '') -> int:
    """`value` as an int if it is a positive integer (a Python or NumPy integer, not a bool).

    A width, window, axis size or count sets an array shape: a float would be truncated
    (8.7 -> 8) and 0 or a negative size fails deep inside JAX, so both are refused here.
    Raises TypeError (not an integer) or ValueError (not > 0) naming `where`'s `name`;
    `allowed` adds what else the argument takes (e.g. ' or None (...)').
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f'{where}: {name} must be a positive integer{allowed}, got {value!r} '
                        f'({type(value).__name__})')
    if value < 1:
        raise ValueError(f'{where}: {name} must be a positive integer{allowed}, got {value!r}')
    return int(value)


def positive_ints(value, name: str, where: str) -> tuple[int, ...]:
    """`value` as a tuple of ints if it is a sequence of positive integers (may be empty)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
        hint = f'; for one entry write ({value!r},)' if isinstance(value, numbers.Number) else ''
        raise TypeError(f'{where}: {name} must be a sequence of positive integers, '
                        f'got {value!r}{hint}')
    return tuple(positive_int(v, f'{name}[{i}]', where) for i, v in enumerate(value))
