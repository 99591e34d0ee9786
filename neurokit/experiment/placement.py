"""Where a run's state, data and compiled functions live: one device, a sharded mesh, pmap,
or a sweep's members split over devices.

`neurokit.experiment.run` asks a `Placement` (built from the config's `parallel`,
`mesh`, `fsdp` and `sweep` keys) to place the data, initialise the state, and
compile the (vmapped over members, guarded) epoch and the evaluation. The epoch
itself is the training loop's own; the modes differ only in how it is compiled:

* 'none': plain `jit` on the default device (the single-device program);
* 'sharded': `jit` with shardings over a `(data, stage)` mesh: data sets
  replicated (or, with several processes, split over 'data' with each process
  holding only its rows), train state replicated or FSDP-split (the `num_seeds`
  member axis is never split), each gathered batch constrained to 'data';
* 'pmap': `jax.pmap` over the first `data` local devices, each taking its slice
  of every batch, updates averaged with `pmean` before the optimizer;
* a sweep (`--config.sweep`): the members, not the batch, are split over the
  mesh's `data` axis (`member_devices`); each device trains its members alone on
  replicated data, so the numbers are the one-device sweep's up to float rounding.
  `mode` stays 'none' or 'sharded' (what summary.json reports) and `split_members`
  is True.

Every compiled function takes the members' swept values `hp` after the state
(`{}` for a run without a sweep: the members differ by seed only).

The state the run checkpoints and evaluates is `host_state(state)`: the same
pytree on every mode (pmap's device axis removed), so a checkpoint written on
8 devices restores on 1 and vice versa.

Example:
  >>> place = Placement.from_config(config, num_members)
  >>> x, y = place.put_train(dataset, n)
  >>> hp = place.put_members(arrays)
  >>> state = place.init(init_fn, keys, hp)
  >>> epoch = place.compile_epoch(make_epoch, state, hp, x, y)
"""
from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from neurokit.experiment import config as config_lib
from neurokit.experiment.errors import ConfigError
from neurokit.parallel import distributed
from neurokit.parallel import mesh as mesh_lib
from neurokit.parallel import pmap as pmap_lib
from neurokit.rules import registry as rule_registry

# the compiled epoch's arguments: (state, hp, x, y, epoch, start), and a chunk's the epoch's
# order too; state, hp (and the order) carry the members, and so do the host feed's batches
_VMAP_EPOCH = (0, 0, None, None, None, None)
_VMAP_CHUNK = (0, 0, None, None, None, None, 0)
_VMAP_BATCHES = (0, 0, 0, 0, None, None)


class Placement:
    """Device placement of one run (see the module docstring).

    Attributes:
      mode: 'none', 'sharded' or 'pmap'.
      axes: `{'data': D, 'stage': S}`, the mesh axis sizes used.
      devices: number of devices the run computes on (`D * S`).
      mesh: the `Mesh` ('sharded', or a sweep's), else None.
      split_members: whether the members (a sweep's), not the batch, are split over 'data'.
      primary: whether this process writes the run's files (process 0).
    """

    def __init__(self, mode: str, axes: dict, fsdp: bool = False, split_members: bool = False):
        self.mode, self.axes, self.fsdp = mode, dict(axes), fsdp
        self.split_members = split_members
        self.devices = axes['data'] * axes['stage']
        self.processes = jax.process_count()
        self.primary = jax.process_index() == 0
        self.mesh = None
        self._pmap_devices = None
        self._notes = []
        if split_members:  # as many devices from every process, in process order
            per = self.devices // self.processes
            devices = [d for p in range(self.processes)
                       for d in [d for d in jax.devices() if d.process_index == p][:per]]
            self.mesh = Mesh(np.asarray(devices), (mesh_lib.DATA,))
        elif mode == 'sharded':
            self.mesh = mesh_lib.make_mesh(axes['data'], axes['stage'])
        elif mode == 'pmap':
            self._pmap_devices = jax.local_devices()[:axes['data']]

    @classmethod
    def from_config(cls, config, num_members: int = 1) -> 'Placement':
        """Checks the config's device keys against the visible devices and builds.

        Args:
          config: a validated config.
          num_members: members of the run (a sweep's grid times its seeds).

        Raises:
          ConfigError: a mesh that does not fit the devices, a stage axis, or (a sweep)
            device settings that do not apply to splitting members (`member_devices`).
        """
        if config.sweep:
            devices, note = member_devices(config, num_members, jax.device_count(),
                                           jax.process_count())
            mode = 'none' if config.parallel == 'none' else 'sharded'
            place = cls(mode, {mesh_lib.DATA: devices, mesh_lib.STAGE: 1}, split_members=True)
            place._notes = [note] if note else []
            return place
        axes = config_lib.check_devices(config, jax.device_count(), jax.process_count())
        if config.parallel == 'pmap' and axes['data'] > jax.local_device_count():
            raise ConfigError(
                f'--config.parallel=pmap uses local devices: {axes["data"]} asked, '
                f'{jax.local_device_count()} here')
        if axes['stage'] > 1:
            # The run's epoch is data-parallel only: a stage axis would repeat the same
            # work on `stage` times the devices (and report them as used).
            raise ConfigError(
                f'config.mesh={config.mesh!r}: training runs split the batch over the data axis '
                'only, so stage>1 would repeat the same work on more devices; drop \'stage=\' '
                '(layer pipelining is the library API neurokit.parallel.pipeline)')
        return cls(config.parallel, axes, config.fsdp)

    def notes(self, config, n_available: int) -> list:
        """One-line notes on what this placement changes about the run, for stderr."""
        out = list(self._notes)
        if self.mode == 'pmap' and not rule_registry.pmap_exact(config.rule):
            out.append(f'--config.parallel=pmap with rule {config.rule}: each device computes its '
                       'slice of the batch alone (its own random negatives, or its optimizer '
                       'steps on its slice alone), so the numbers differ from one device; use '
                       '--config.parallel=sharded for the single-device numbers')
        dropped = n_available - self.train_rows(n_available)
        if dropped:
            out.append(f'{dropped} of {n_available} training examples are left out so that each '
                       f'of the {self.devices} devices gets as many rows (multi-process run); '
                       '--config.train_limit to a multiple of the device count avoids it')
        return out

    # ------------------------------------------------------------------ data

    def train_rows(self, n: int) -> int:
        """How many of `n` training examples a run uses: all, except that a
        multi-process run drops the remainder so that every device gets as many rows."""
        return n - n % self.devices if self.processes > 1 else n

    def put_train(self, dataset, n: int):
        """The first `n` training examples on the devices (`train_rows(n)` of them)."""
        if self.processes > 1:  # each process reads only its rows
            return distributed.load_shard(dataset, self.mesh, train_limit=n)
        return self._put(dataset.x_train[:n]), self._put(dataset.y_train[:n])

    # ------------------------------------------------------------------ host feed

    def _batches_sharding(self):
        """The host feed's batches `(members, K, batch, ...)`: the batch axis over 'data'."""
        return NamedSharding(self.mesh, P(None, None, mesh_lib.DATA))

    def batch_rows(self, batch_size: int) -> slice:
        """The rows of every global batch that this process's devices hold, and so read
        (the host feed): all of them on one device; on a mesh, this process's devices'
        contiguous part of the 'data' axis.

        Raises:
          ConfigError: the batch does not split evenly over the 'data' devices.
        """
        if self.mode == 'none':
            return slice(0, batch_size)
        data = self.axes[mesh_lib.DATA]
        if batch_size % data:
            raise ConfigError(f'--config.feed=host splits each batch of {batch_size} over the '
                              f'{data} devices of the data axis; use a batch_size that divides '
                              f'by {data}')
        index = self._batches_sharding().addressable_devices_indices_map((1, 1, batch_size))
        parts = sorted({(i[2].start or 0, i[2].stop or batch_size) for i in index.values()})
        if any(a[1] != b[0] for a, b in zip(parts, parts[1:])):
            raise ConfigError("this process's devices hold rows of each batch that are not "
                              'contiguous on the mesh; build the mesh with jax.make_mesh')
        return slice(parts[0][0], parts[-1][1])

    def put_batches(self, x: np.ndarray, y: np.ndarray, batch_size: int):
        """This process's rows of K global batches, `(members, K, rows, ...)` (`batch_rows`),
        as the global batches `(members, K, batch_size, ...)`: each process places its
        rows on its own devices (`jax.make_array_from_process_local_data`), so no example
        crosses hosts."""
        if self.mode == 'none':
            device = jax.local_devices()[0]
            return jax.device_put(x, device), jax.device_put(y, device)
        sharding = self._batches_sharding()
        return tuple(jax.make_array_from_process_local_data(
            sharding, a, a.shape[:2] + (batch_size,) + a.shape[3:]) for a in (x, y))

    def batches_like(self, x, y):
        """Abstract global batches (shape, dtype and placement) to compile the feed with."""
        sharding = (None if self.mode == 'none' else self._batches_sharding())
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding) for a in (x, y))

    @property
    def eval_shards(self) -> int:
        """How many parts an evaluation set is split into (`make_evaluate`'s `shards`): the
        'data' axis size for a sharded run, else 1 (a sweep splits members, not examples)."""
        return self.axes['data'] if self.mode == 'sharded' and not self.split_members else 1

    def put_eval(self, x, y, batch_size: int):
        """An evaluation set (test or validation): split over 'data' for a sharded run
        (`mesh.eval_arrays`: each device evaluates its part, the counts are summed), else
        whole on every device."""
        if self.eval_shards > 1:
            return mesh_lib.eval_arrays(x, y, self.mesh, batch_size)
        return self._put(x), self._put(y)

    def put_members(self, arrays: dict):
        """The members' swept values (name -> array with the member axis first)."""
        if self.split_members:
            return jax.tree.map(lambda a: _global(a, self._split()), arrays)
        return arrays  # {} for a run: nothing to place

    def _split(self):
        return NamedSharding(self.mesh, P(mesh_lib.DATA))

    def _put(self, a):
        a = np.asarray(a)
        if self.split_members:
            return _global(a, NamedSharding(self.mesh, P()))
        if self.mode == 'none':
            return jax.device_put(a, jax.local_devices()[0])
        if self.mode == 'pmap':  # a copy on each device, as pmap's broadcast (in_axes=None) wants
            mesh = Mesh(np.asarray(self._pmap_devices), (pmap_lib.AXIS,))
            return jax.device_put(a, NamedSharding(mesh, P()))
        s = mesh_lib.replicated(self.mesh)
        return jax.make_array_from_callback(a.shape, s, lambda idx: a[idx])

    def _x_sharding(self):
        return (mesh_lib.batch_sharding(self.mesh) if self.processes > 1
                else mesh_lib.replicated(self.mesh))

    # ------------------------------------------------------------------ state

    def state_shardings(self, abstract_state):
        """Shardings of a vmapped (member axis first) train state ('sharded' only)."""
        return mesh_lib.state_shardings(abstract_state, self.mesh, fsdp=self.fsdp, leading=1)

    def init(self, init_fn, keys, hp):
        """`init_fn(keys, hp)`, placed as the mode keeps its host state.

        A sharded run initialises straight onto the mesh (`out_shardings`: no state passes
        through one device or the host, so a state larger than one device fits; random
        bits do not depend on the sharding, so the values are one device's). A sweep
        initialises each member on its device.
        """
        if self.split_members:
            keys = _global(np.asarray(keys), self._split())
            return jax.jit(init_fn, out_shardings=self._split())(keys, hp)
        if self.mode != 'sharded':
            return jax.jit(init_fn)(keys, hp)
        shardings = self.state_shardings(jax.eval_shape(init_fn, keys, hp))
        return jax.jit(init_fn, out_shardings=shardings)(keys, hp)

    def to_devices(self, state):
        """Host state -> the state the compiled epoch takes (pmap: one replica per device)."""
        if self.mode == 'pmap':
            return pmap_lib.replicate(state, self._pmap_devices)
        return state

    def host_state(self, state):
        """The compiled epoch's state -> the host state (checkpointed, evaluated)."""
        if self.mode == 'pmap':
            return pmap_lib.unreplicate(state)
        return state

    # ------------------------------------------------------------------ compile

    def put_order(self, orders):
        """The members' data orders of an epoch (`loop.epoch_order`, member axis first) where
        the chunks of `steps_per_call` steps take them."""
        if self.split_members:
            return _global(np.asarray(orders), self._split())
        if self.mode == 'sharded':
            return jax.device_put(orders, mesh_lib.replicated(self.mesh))
        return orders

    def compile_epoch(self, make_epoch, state, hp, x, y, steps=None, orders=None, decode=None):
        """Compiles `vmap(make_epoch(**hooks))` over the members for this mode.

        Args:
          make_epoch: `(steps=None, constrain=None, reduce=None, local_order=None) ->
            member_epoch` with `member_epoch(state, hp, x, y, epoch, start) -> (state,
            metrics)` for ONE member (`neurokit.train.make_epoch` with its rule, optimizer
            and guard bound).
          state, hp, x, y: the host state, the members' values and the placed data.
          steps: None for the whole epoch, else a chunk of that many steps from `start`,
            which also takes the epoch's `orders` (`put_order`; an example to compile with).
          decode: the host feed (`make_epoch(batches=True)`): `x`, `y` are the members'
            batches of the chunk (`batches_like`), and `decode` turns each batch's stored
            inputs into the model's (`data.ArraySource.decode`), on the devices.

        Returns:
          `(device state, hp, x, y, epoch, start[, orders]) -> (device state, metrics)`,
          every leaf of the state and the metrics with the member axis first.
        """
        if decode is not None:
            return self._compile_batches(make_epoch, state, hp, x, y, steps, decode)
        chunk = steps is not None
        axes = _VMAP_CHUNK if chunk else _VMAP_EPOCH
        args = (state, hp, x, y, 0, 0) + ((orders,) if chunk else ())
        if self.split_members:
            split = self._split()
            fn = jax.vmap(make_epoch(steps=steps), axes)
            return jax.jit(fn, donate_argnums=0, out_shardings=split).lower(*args).compile()
        if self.mode == 'none':
            fn = jax.vmap(make_epoch(steps=steps), axes)
            return jax.jit(fn, donate_argnums=0).lower(*args).compile()
        if self.mode == 'sharded':
            fn = jax.vmap(make_epoch(steps=steps, constrain=mesh_lib.batch_constraint(self.mesh)),
                          axes)
            s_shard = self.state_shardings(state)
            xs, rep = self._x_sharding(), mesh_lib.replicated(self.mesh)
            return jax.jit(fn, in_shardings=(s_shard, rep, xs, xs, None, None)
                           + ((rep,) if chunk else ()),
                           out_shardings=(s_shard, rep), donate_argnums=0).lower(*args).compile()
        n_dev = len(self._pmap_devices)
        fn = jax.vmap(make_epoch(steps=steps, reduce=pmap_lib.mean_floats,
                                 local_order=lambda order, bs: pmap_lib.device_slice(order, bs,
                                                                                     n_dev)),
                      axes)
        compiled = jax.pmap(fn, pmap_lib.AXIS, in_axes=(0, None, None, None, None, None)
                            + ((None,) if chunk else ()),
                            devices=self._pmap_devices, donate_argnums=0).lower(
            self.to_devices(state), *args[1:]).compile()

        def epoch(rstate, *rest):
            rstate, metrics = compiled(rstate, *rest)
            return rstate, jax.tree.map(lambda a: a[0], metrics)  # equal on every device

        return epoch

    def _compile_batches(self, make_epoch, state, hp, x, y, steps, decode):
        """`compile_epoch` for the host feed ('none' or 'sharded')."""
        def prepare(batch):
            return {**batch, 'x': decode(batch['x'])}

        if self.mode == 'none':
            fn = jax.vmap(make_epoch(steps=steps, batches=True, constrain=prepare),
                          _VMAP_BATCHES)
            return jax.jit(fn, donate_argnums=0).lower(state, hp, x, y, 0, 0).compile()
        constraint = mesh_lib.batch_constraint(self.mesh)
        fn = jax.vmap(make_epoch(steps=steps, batches=True,
                                 constrain=lambda batch: constraint(prepare(batch))),
                      _VMAP_BATCHES)
        s_shard, rep = self.state_shardings(state), mesh_lib.replicated(self.mesh)
        xs = self._batches_sharding()
        return jax.jit(fn, in_shardings=(s_shard, rep, xs, xs, None, None),
                       out_shardings=(s_shard, rep), donate_argnums=0).lower(
            state, hp, x, y, 0, 0).compile()

    def compile_eval(self, eval_fn, state, hp, x, y):
        """Compiles `eval_fn(state, hp, x, y) -> accuracy per member` on the host state's
        placement."""
        if self.split_members:
            return jax.jit(eval_fn, out_shardings=self._split()).lower(state, hp, x, y).compile()
        if self.mode != 'sharded':
            return jax.jit(eval_fn).lower(state, hp, x, y).compile()
        rep = mesh_lib.replicated(self.mesh)
        xs = mesh_lib.batch_sharding(self.mesh) if self.eval_shards > 1 else rep
        return jax.jit(eval_fn, in_shardings=(self.state_shardings(state), rep, xs, xs),
                       out_shardings=rep).lower(state, hp, x, y).compile()

    def poison(self, x):
        """An all-NaN copy of `x` with its placement (test hook)."""
        return jax.jit(lambda a: a * np.nan, out_shardings=getattr(x, 'sharding', None))(x)

    def summary(self) -> dict:
        """What summary.json records about the devices."""
        return {'devices': self.devices, 'mesh': dict(self.axes), 'parallel': self.mode,
                'processes': self.processes}


def member_devices(config, members: int, num_devices: int, processes: int = 1):
    """How many devices a sweep of `members` members splits them over, and a note (or None)
    when the default mesh leaves devices idle.

    Raises:
      ConfigError: several processes, pmap, fsdp, a stage axis, or a `--config.mesh`
        data size that exceeds the devices or does not divide the members.
    """
    why = 'a sweep splits its members over the devices (each device trains its members alone)'
    if processes > 1:
        if config.parallel != 'sharded' or config.fsdp or config.mesh:
            raise ConfigError(f'a sweep over {processes} processes splits its members over '
                              "every process's devices, so it takes no --config.parallel, fsdp "
                              'or mesh; drop them')
        per_process = num_devices // processes
        fits = [d for d in range(processes, num_devices + 1, processes)
                if members % d == 0 and d // processes <= per_process]
        if not fits:
            raise ConfigError(f"the sweep's {members} members cannot be split evenly over "
                              f'{processes} processes; use a member count (grid x num_seeds) '
                              f'that divides by {processes}')
        data = max(fits)
        note = None if data == num_devices else (
            f"the sweep's {members} members run on {data} of the {num_devices} devices "
            f'({data // processes} per process)')
        return data, note
    if config.parallel == 'none':
        return 1, None
    if config.parallel == 'pmap' or config.fsdp:
        flag = '--config.parallel=pmap' if config.parallel == 'pmap' else '--config.fsdp=True'
        raise ConfigError(f'{flag} does not apply to config.sweep: {why}; drop {flag}')
    axes = config_lib.parse_mesh(config.mesh)
    if axes.get(mesh_lib.STAGE, 1) > 1:
        raise ConfigError(f'config.mesh={config.mesh!r}: {why}, so a stage axis does not apply; '
                          "drop 'stage='")
    if mesh_lib.DATA in axes:
        data = axes[mesh_lib.DATA]
        if data > num_devices:
            raise ConfigError(f'config.mesh={config.mesh!r} needs {data} devices but '
                              f'{num_devices} are visible; lower data=')
        if members % data:
            raise ConfigError(f'config.mesh={config.mesh!r}: the sweep\'s {members} members '
                              f'cannot be split evenly over {data} devices; use a data size '
                              f'that divides {members}')
        return data, None
    data = math.gcd(members, num_devices)
    note = None if data == num_devices else (
        f'the sweep\'s {members} members run on {data} of the {num_devices} devices (each '
        f'device takes as many members); a member count that is a multiple of {num_devices} '
        'uses them all')
    return data, note


def fetch(tree):
    """Device values -> numpy, also for arrays spread over several processes: a replicated
    one is read here, one split over processes (a sweep's members) is gathered from all of
    them (a collective: every process calls `fetch` on it)."""
    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            if a.sharding.is_fully_replicated:
                return np.asarray(a.addressable_data(0))
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)
    return jax.tree.map(one, tree)


def _global(a: np.ndarray, sharding):
    """`a` (the same in every process) as an array with `sharding`, which may span
    processes: each process places the parts of its own devices."""
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, sharding, lambda i: a[i])
