"""Data parallelism with `jax.sharding`: a `Mesh`, shardings, a sharded epoch.

The batch is split over the `data` mesh axis and the parameters are
replicated (or, with `fsdp=True`, large weights are split over the same axis
and gathered by XLA where a layer needs them). The epoch is the training
loop's own scanned epoch (`neurokit.train.loop`) compiled with input/output
shardings; the only change inside is a sharding constraint on each gathered
batch, so the program, the data order and the per-step keys are those of a
single-device run and the results agree with it up to float reassociation in
the cross-device reductions.

Example:
  >>> mesh = make_mesh()                                   # all devices on 'data'
  >>> epoch = sharded_epoch(rule, optimizer, 128, mesh, state)
  >>> state = put_state(state, mesh)
  >>> x, y = put_dataset(x, y, mesh)
  >>> state, metrics = epoch(state, x, y, 0)
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from neurokit.checks import positive_int
from neurokit.rules.base import Rule
from neurokit.train import loop

DATA = 'data'
STAGE = 'stage'


def make_mesh(data: int | None = None, stage: int = 1, devices: Sequence | None = None) -> Mesh:
    """A mesh with axes ('data', 'stage').

    Args:
      data: size of the data-parallel axis; None: all devices left after `stage`.
      stage: size of the layer-parallel axis (1: no layer parallelism).
      devices: devices to use; default `jax.devices()` (all processes' devices).

    Returns:
      A `jax.sharding.Mesh` of shape (data, stage).

    Raises:
      TypeError: an axis size is not an integer.
      ValueError: an axis size is < 1, or the axes need more devices than given.
    """
    if data is not None:
        positive_int(data, 'data', 'make_mesh', ' or None (all devices left after stage)')
    positive_int(stage, 'stage', 'make_mesh', ' (1: no layer parallelism)')
    devices = list(jax.devices() if devices is None else devices)
    if data is None:
        if len(devices) % stage:
            raise ValueError(f'stage={stage} does not divide the {len(devices)} devices')
        data = len(devices) // stage
    if data * stage > len(devices):
        raise ValueError(f'mesh data={data} x stage={stage} needs {data * stage} devices; '
                         f'{len(devices)} available')
    # jax.make_mesh orders the devices by the physical topology (a TPU slice's torus), so
    # that the 'data' collectives run over neighbouring chips; Auto axes keep sharding
    # propagation as `jit` infers it (JAX's default is now Explicit)
    from jax.sharding import AxisType
    return jax.make_mesh((data, stage), (DATA, STAGE), axis_types=(AxisType.Auto,) * 2,
                         devices=devices[:data * stage])


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of an array held whole on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch: leading (example) axis split over 'data'."""
    return NamedSharding(mesh, P(DATA))


def batch_constraint(mesh: Mesh):
    """`batch -> batch` marking a gathered batch as split over 'data' (works under vmap).

    The hook for a training loop that gathers its batch inside a scanned epoch:
    `batch = constrain({'x': x[idx], 'y': y[idx]})`.
    """
    sharding = batch_sharding(mesh)
    return lambda batch: jax.lax.with_sharding_constraint(batch, sharding)


def _fsdp_spec(x, size: int, min_size: int):
    """Splits the largest axis divisible by the mesh size, for arrays of >= min_size elements."""
    if not hasattr(x, 'shape') or x.ndim == 0 or math.prod(x.shape) < min_size:
        return P()
    for axis in sorted(range(x.ndim), key=lambda a: -x.shape[a]):
        if x.shape[axis] % size == 0:
            spec = [None] * x.ndim
            spec[axis] = DATA
            return P(*spec)
    return P()


def state_shardings(state, mesh: Mesh, fsdp: bool = False, min_size: int = 2 ** 18,
                    leading: int = 0):
    """Shardings for a train state (or any pytree): replicated, or FSDP-split.

    Args:
      state: the pytree (arrays or `jax.ShapeDtypeStruct`s).
      mesh: the mesh.
      fsdp: split every array of at least `min_size` elements along its largest
        axis divisible by the 'data' axis size (params and their optimizer
        moments alike); XLA gathers them where they are used.
      min_size: threshold for `fsdp` (counted without the `leading` axes).
      leading: number of leading axes never split (e.g. 1 for the member axis
        of a vmapped `num_seeds` state: every device holds every member).

    Returns:
      A pytree of `NamedSharding` matching `state`.
    """
    size = mesh.shape[DATA]
    if not fsdp or size == 1:
        return jax.tree.map(lambda _: replicated(mesh), state)

    def spec(x):
        if not hasattr(x, 'shape') or x.ndim <= leading:
            return NamedSharding(mesh, P())
        inner = _fsdp_spec(jax.ShapeDtypeStruct(x.shape[leading:], x.dtype), size, min_size)
        return NamedSharding(mesh, P(*((None,) * leading + tuple(inner))))

    return jax.tree.map(spec, state)


def put_state(state, mesh: Mesh, fsdp: bool = False, min_size: int = 2 ** 18):
    """Places a train state on the mesh (see `state_shardings`)."""
    return jax.device_put(state, state_shardings(state, mesh, fsdp, min_size))


def put_dataset(x, y, mesh: Mesh, shard: bool = False):
    """Places a data set on the mesh.

    Args:
      x, y: host or device arrays of the whole data set.
      shard: False: a full copy on every device (small data sets, no traffic
        when a step gathers its batch); True: examples split over 'data'
        (the number of examples must divide by the axis size).
    """
    s = batch_sharding(mesh) if shard else replicated(mesh)
    return jax.device_put(x, s), jax.device_put(y, s)


def eval_arrays(x, y, mesh: Mesh, batch_size: int):
    """An evaluation set split over 'data' for `make_evaluate(rule, batch_size,
    shards=mesh.shape['data'])`: padded (labels -1, never counted) to the rows its layout
    needs (`loop.eval_layout`), each device holding one contiguous part. Every process
    passes the whole set and places the rows of its own devices."""
    x, y = np.asarray(x), np.asarray(y)
    shards = mesh.shape[DATA]
    per, nb = loop.eval_layout(x.shape[0], batch_size, shards)
    pad = shards * per * nb - x.shape[0]
    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
    y = np.concatenate([y, np.full((pad,), -1, y.dtype)])
    s = batch_sharding(mesh)
    return tuple(jax.make_array_from_callback(a.shape, s, lambda i, a=a: a[i]) for a in (x, y))


def sharded_epoch(rule: Rule, optimizer, batch_size: int, mesh: Mesh, state=None,
                  fsdp: bool = False, donate: bool = True, x_sharding=None,
                  fsdp_min_size: int = 2 ** 18):
    """The scanned training epoch, jitted with shardings over `mesh`.

    Same signature and results as `jax.jit(neurokit.train.make_epoch(...))`:
    `(state, x, y, epoch) -> (state, mean metrics)`.

    Args:
      rule, optimizer, batch_size: as for `loop.make_epoch`. The batch size must
        divide by the 'data' axis size.
      mesh: the mesh (`make_mesh`).
      state: an example train state (or its `jax.eval_shape`), needed only with
        `fsdp=True` to derive the parameter shardings.
      fsdp: shard large parameters and optimizer moments over 'data'.
      donate: donate the input state's buffers.
      x_sharding: sharding of the data set arrays; default replicated. Pass
        `batch_sharding(mesh)` for a data set split over processes.
      fsdp_min_size: arrays with fewer elements stay replicated under `fsdp`.

    Returns:
      A compiled-on-first-call function.
    """
    if batch_size % mesh.shape[DATA]:
        raise ValueError(f'batch_size={batch_size} must divide by the data axis size '
                         f'{mesh.shape[DATA]}')
    # the gather stays global (the data order of one device); the constraint tells XLA to
    # compute each step with the batch split over 'data'
    epoch_fn = loop.make_epoch(rule, optimizer, batch_size, constrain=batch_constraint(mesh))

    rep = replicated(mesh)
    if fsdp:
        if state is None:
            raise ValueError('sharded_epoch(fsdp=True) needs an example state')
        s_shard = state_shardings(state, mesh, fsdp=True, min_size=fsdp_min_size)
    else:
        s_shard = rep  # a sharding prefix: every leaf of the state replicated
    xs = x_sharding or rep
    return jax.jit(epoch_fn, in_shardings=(s_shard, xs, xs, None), out_shardings=(s_shard, rep),
                   donate_argnums=(0,) if donate else ())
