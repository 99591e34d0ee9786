"""A `pmap` data-parallel path, kept for users who ask for it.

The sharded `jit` path (`neurokit.parallel.mesh`) is the primary one. Here
each device holds a replica of the train state, takes its contiguous slice of
each global batch (the same data order as one device), runs the rule's step
on it, and the per-device updates and metrics are averaged with `lax.pmean`
before the optimizer. A rule's step returns the mean-over-batch update, so the
average of equal-sized slices' updates is the full-batch update for any rule
whose update is a batch mean (backprop, FA/DFA, MF, PC). It is NOT for rules
that couple the examples of a batch (in-batch negatives, batch statistics),
nor for per-example randomness: every device gets the step's key, so random
draws are shaped by the slice, not the global batch — use the sharded path
there. A rule that steps the optimizer inside its pass (an `OptimizerRule`,
such as ipc) steps on its slice and the new parameters and optimizer states are
averaged: not the one-device run either (`neurokit.rules.registry.pmap_exact`).

Example:
  >>> epoch = pmap_epoch(rule, optimizer, 128)
  >>> rstate = replicate(state)
  >>> rstate, metrics = epoch(rstate, x, y, 0)       # metrics per device (all equal)
  >>> state = unreplicate(rstate)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from neurokit.rules.base import OptimizerRule, Rule
from neurokit.train import loop

AXIS = 'devices'


def replicate(tree, devices=None):
    """Stacks `len(devices)` copies of a pytree (a leading device axis); `pmap` places them."""
    n = len(devices or jax.local_devices())
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + jnp.shape(x)), tree)


def unreplicate(tree):
    """The first replica of a replicated pytree."""
    return jax.tree.map(lambda x: x[0], tree)


def mean_floats(tree):
    """pmean over devices for float leaves; integer leaves are equal everywhere.

    The `reduce` hook of `neurokit.train.make_train_step` (inside a `pmap` over `AXIS`).
    """
    return jax.tree.map(
        lambda x: jax.lax.pmean(x, AXIS) if jnp.issubdtype(x.dtype, jnp.inexact) else x, tree)



def device_slice(order, batch_size: int, n_dev: int):
    """This device's contiguous slice of every global batch of an epoch's `order` (inside `pmap`).

    Args:
      order: `(steps, batch_size)` example indices (`loop.epoch_order`).
      batch_size: the global batch size; must divide by `n_dev`.
      n_dev: number of devices of the pmap.

    Returns:
      `(steps, batch_size // n_dev)` indices.
    """
    local = batch_size // n_dev
    return jax.lax.dynamic_slice_in_dim(order, jax.lax.axis_index(AXIS) * local, local, 1)


def pmap_epoch(rule: Rule | OptimizerRule, optimizer, batch_size: int, devices=None):
    """`(replicated state, x, y, epoch) -> (replicated state, metrics)` under `jax.pmap`.

    Args:
      rule, optimizer, batch_size: as for `neurokit.train.make_epoch`; the
        global batch size must divide by the number of devices.
      devices: devices to use (default: all local devices).

    Returns:
      The pmapped epoch; `state` must hold one replica per device
      (`replicate(state, devices)`, checked: ValueError otherwise), `x`, `y`
      are whole data sets (broadcast to every device), `epoch` an int. Metrics
      come back with a leading device axis.
    """
    devices = devices or jax.local_devices()
    n_dev = len(devices)
    if batch_size % n_dev:
        raise ValueError(f'batch_size={batch_size} must divide by the {n_dev} devices')
    epoch_fn = loop.make_epoch(  # each device takes its slice of every batch
        rule, optimizer, batch_size, reduce=mean_floats,
        local_order=lambda order, bs: device_slice(order, bs, n_dev))

    pmapped = jax.pmap(epoch_fn, AXIS, in_axes=(0, None, None, None),
                       static_broadcasted_argnums=(), devices=devices)

    @functools.wraps(epoch_fn)
    def checked(state, x, y, epoch):
        check_replicas(state, n_dev)
        return pmapped(state, x, y, epoch)

    return checked


def check_replicas(state, n_dev: int) -> None:
    """Raises ValueError unless every leaf of `state` has a leading axis of `n_dev` replicas.

    pmap itself accepts fewer replicas than devices (it then runs on fewer
    devices, each still taking a 1/n_dev slice of every batch: the rest of the
    batch is silently skipped) and names no cause for an unreplicated state.
    """
    shapes = [(jax.tree_util.keystr(path), jnp.shape(x))
              for path, x in jax.tree_util.tree_flatten_with_path(state)[0]]
    bad = [(name, shape) for name, shape in shapes if shape[:1] != (n_dev,)]
    if not bad:
        return
    scalars = [(name, shape) for name, shape in bad if not shape]
    name, shape = (scalars or bad)[0]  # a scalar leaf shows best that nothing was replicated
    if not scalars and len({shape[:1] for _, shape in shapes}) == 1:
        got = f'a state of {shape[0]} replicas (state{name} has shape {shape})'
    else:
        got = f'a state that is not replicated (state{name} has shape {shape})'
    raise ValueError(f'pmap_epoch over {n_dev} devices got {got}; pass '
                     f'replicate(state, devices) with the {n_dev} devices the epoch uses '
                     '(default: all local devices)')
