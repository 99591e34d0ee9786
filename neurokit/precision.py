"""Mixed precision of the optimizer: float32 state for float16 parameters, and its check."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def in_float32(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` with its state and arithmetic in float32; updates come back in each
    parameter's dtype.

    For float16 parameters: Adam's `eps` (1e-8) and the squares of small gradients are
    below float16's smallest number, so `0 / (0 + 0)` makes the first step NaN.
    """
    up = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)

    def init(params):
        return inner.init(up(params))

    def update(updates, state, params=None):
        new, state = inner.update(up(updates), state, None if params is None else up(params))
        return jax.tree.map(lambda n, u: n.astype(u.dtype), new, updates), state

    return optax.GradientTransformation(init, update)


def has_float16(tree) -> bool:
    """Whether any leaf of `tree` is float16."""
    return any(getattr(a, 'dtype', None) == jnp.float16 for a in jax.tree.leaves(tree))


def check_optimizer_state(params, opt_state) -> None:
    """ValueError for float16 parameters whose optimizer keeps float16 state.

    Such an optimizer (optax.adam on float16 parameters) computes in float16, where
    Adam's eps and small squared gradients are 0: the first step is 0/0 = NaN and the
    run goes NaN without an error. `in_float32` keeps the state in float32.
    """
    if has_float16(params) and has_float16(opt_state):
        raise ValueError('float16 parameters with an optimizer that keeps float16 state: its '
                         'first Adam-like step is 0/0 = NaN; wrap it as '
                         'neurokit.precision.in_float32(optimizer) (optim.build(..., '
                         "param_dtype='float16') does), or use bfloat16")
