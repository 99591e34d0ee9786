"""Whether a value is traced: a sweep varies it inside one compiled program."""
from __future__ import annotations

import jax


def is_traced(value) -> bool:
    """True for a value a sweep (`neurokit.parallel.sweep`) varies inside one program.

    Such a value has no Python value at trace time: it cannot be range-checked
    (`value > 0`) or used to choose a code path (`if value:`). Constructors use
    it as it is and keep every transform it may switch on.
    """
    return isinstance(value, jax.core.Tracer)
