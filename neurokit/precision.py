"""Mixed precision shared by the training loop and the rules that own an optimizer (ipc)."""
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
