"""Argument checks shared by constructors across the package (models, mesh, pipeline).

A leaf module: it imports nothing from neurokit, so any module can use it.
"""
from __future__ import annotations

import numbers


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
