"""Where a run's state, data and compiled functions live: one device, a sharded mesh, or pmap.

`neurokit.experiment.run` asks a `Placement` (built from the config's `parallel`,
`mesh`, `fsdp` keys) to place the data, initialise the state, and compile the
(vmapped, guarded) epoch and the evaluation. The epoch itself is the training
loop's own; the modes differ only in how it is compiled:

* 'none': plain `jit` on the default device (the single-device program);
* 'sharded': `jit` with shardings over a `(data, stage)` mesh: data sets
  replicated (or, with several processes, split over 'data' with each process
  holding only its rows), train state replicated or FSDP-split (the `num_seeds`
  member axis is never split), each gathered batch constrained to 'data';
* 'pmap': `jax.pmap` over the first `data` local devices, each taking its slice
  of every batch, updates averaged with `pmean` before the optimizer.

The state the run checkpoints and evaluates is `host_state(state)`: the same
pytree on every mode (pmap's device axis removed), so a checkpoint written on
8 devices restores on 1 and vice versa.

Example:
  >>> place = Placement.from_config(config)
  >>> x, y = place.put_train(dataset, n)
  >>> state = place.init(init_fn, keys)
  >>> epoch = place.compile_epoch(lambda **hooks: loop.make_epoch(..., **hooks), state, x, y)
"""
from __future__ import annotations

import jax
import numpy as np

from neurokit.experiment import config as config_lib
from neurokit.parallel import distributed
from neurokit.parallel import mesh as mesh_lib
from neurokit.parallel import pmap as pmap_lib

_VMAP_EPOCH = (0, None, None, None)
# Rules whose pmap run is not the single-device run up to rounding: ff and cff draw
# their negatives per device, ipc steps its own optimizer on each slice (BUILD_NOTES,
# "Data parallelism"; `tests.parallel.equivalence.batch_decomposable` is the check).
PMAP_NOT_EQUIVALENT = ('ff', 'cff', 'ipc')


class Placement:
    """Device placement of one run (see the module docstring).

    Attributes:
      mode: 'none', 'sharded' or 'pmap'.
      axes: `{'data': D, 'stage': S}`, the mesh axis sizes used.
      devices: number of devices the run computes on (`D * S`).
      mesh: the `Mesh` ('sharded'), else None.
      primary: whether this process writes the run's files (process 0).
    """

    def __init__(self, mode: str, axes: dict, fsdp: bool = False):
        self.mode, self.axes, self.fsdp = mode, dict(axes), fsdp
        self.devices = axes['data'] * axes['stage']
        self.processes = jax.process_count()
        self.primary = jax.process_index() == 0
        self.mesh = None
        self._pmap_devices = None
        if mode == 'sharded':
            self.mesh = mesh_lib.make_mesh(axes['data'], axes['stage'])
        elif mode == 'pmap':
            self._pmap_devices = jax.local_devices()[:axes['data']]

    @classmethod
    def from_config(cls, config) -> 'Placement':
        """Checks the config's mesh against the visible devices (ConfigError) and builds."""
        axes = config_lib.check_devices(config, jax.device_count(), jax.process_count())
        if config.parallel == 'pmap' and axes['data'] > jax.local_device_count():
            raise config_lib.ConfigError(
                f'--config.parallel=pmap uses local devices: {axes["data"]} asked, '
                f'{jax.local_device_count()} here')
        if axes['stage'] > 1:
            # The run's epoch is data-parallel only: a stage axis would repeat the same
            # work on `stage` times the devices (and report them as used).
            raise config_lib.ConfigError(
                f'config.mesh={config.mesh!r}: training runs split the batch over the data axis '
                'only, so stage>1 would repeat the same work on more devices; drop \'stage=\' '
                '(layer pipelining is the library API neurokit.parallel.pipeline)')
        return cls(config.parallel, axes, config.fsdp)

    def notes(self, config, n_available: int) -> list:
        """One-line notes on what this placement changes about the run, for stderr."""
        out = []
        if self.mode == 'pmap' and config.rule in PMAP_NOT_EQUIVALENT:
            out.append(f'--config.parallel=pmap with rule {config.rule}: each device computes its '
                       'slice of the batch alone (its own random negatives or own optimizer '
                       'steps), so the numbers differ from one device; use '
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

    def put_test(self, dataset):
        return self._put(dataset.x_test), self._put(dataset.y_test)

    def _put(self, a):
        a = np.asarray(a)
        if self.mode == 'none':
            return jax.device_put(a, jax.local_devices()[0])
        if self.mode == 'pmap':  # a copy on each device, as pmap's broadcast (in_axes=None) wants
            mesh = jax.sharding.Mesh(np.asarray(self._pmap_devices), (pmap_lib.AXIS,))
            return jax.device_put(a, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
        s = mesh_lib.replicated(self.mesh)
        return jax.make_array_from_callback(a.shape, s, lambda idx: a[idx])

    def _x_sharding(self):
        return (mesh_lib.batch_sharding(self.mesh) if self.processes > 1
                else mesh_lib.replicated(self.mesh))

    # ------------------------------------------------------------------ state

    def state_shardings(self, abstract_state):
        """Shardings of a vmapped (member axis first) train state ('sharded' only)."""
        return mesh_lib.state_shardings(abstract_state, self.mesh, fsdp=self.fsdp, leading=1)

    def init(self, init_fn, keys):
        """`init_fn(keys)` on one device, then placed as the mode keeps its host state.

        Initialising on one device (every process computes the same values from
        the same keys) and then placing is cheaper to compile than an SPMD init
        (seconds on many devices) and gives the single-device numbers exactly.
        """
        state = jax.jit(init_fn)(keys)
        if self.mode != 'sharded':
            return state
        host = jax.device_get(state)
        return jax.tree.map(lambda a, s: jax.make_array_from_callback(a.shape, s, lambda i: a[i]),
                            host, self.state_shardings(host))

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

    def compile_epoch(self, make_epoch, state, x, y):
        """Compiles `vmap(make_epoch(**hooks))` for this mode.

        Args:
          make_epoch: `(constrain=None, reduce=None, local_order=None) -> epoch_fn`
            with `epoch_fn(state, x, y, epoch) -> (state, metrics)`
            (`neurokit.train.make_epoch` with the rule, optimizer and guard bound).
          state, x, y: the host state and the placed data (shapes, shardings).

        Returns:
          `(device state, x, y, epoch) -> (device state, metrics)`.
        """
        if self.mode == 'none':
            fn = jax.vmap(make_epoch(), _VMAP_EPOCH)
            return jax.jit(fn, donate_argnums=0).lower(state, x, y, 0).compile()
        if self.mode == 'sharded':
            fn = jax.vmap(make_epoch(constrain=mesh_lib.batch_constraint(self.mesh)), _VMAP_EPOCH)
            s_shard = self.state_shardings(state)
            xs, rep = self._x_sharding(), mesh_lib.replicated(self.mesh)
            return jax.jit(fn, in_shardings=(s_shard, xs, xs, None),
                           out_shardings=(s_shard, rep),
                           donate_argnums=0).lower(state, x, y, 0).compile()
        n_dev = len(self._pmap_devices)
        fn = jax.vmap(make_epoch(reduce=pmap_lib.mean_floats,
                                 local_order=lambda order, bs: pmap_lib.device_slice(order, bs,
                                                                                     n_dev)),
                      _VMAP_EPOCH)
        compiled = jax.pmap(fn, pmap_lib.AXIS, in_axes=(0, None, None, None),
                            devices=self._pmap_devices, donate_argnums=0).lower(
            self.to_devices(state), x, y, 0).compile()

        def epoch(rstate, x, y, e):
            rstate, metrics = compiled(rstate, x, y, e)
            return rstate, jax.tree.map(lambda a: a[0], metrics)  # equal on every device

        return epoch

    def compile_eval(self, eval_fn, state, x, y):
        """Compiles `eval_fn(params, rule_state, x, y)` on the host state's placement."""
        if self.mode != 'sharded':
            return jax.jit(eval_fn).lower(state.params, state.rule_state, x, y).compile()
        s = self.state_shardings(state)
        rep = mesh_lib.replicated(self.mesh)
        return jax.jit(eval_fn, in_shardings=(s.params, s.rule_state, rep, rep),
                       out_shardings=rep).lower(state.params, state.rule_state, x, y).compile()

    def poison(self, x):
        """An all-NaN copy of `x` with its placement (test hook)."""
        return jax.jit(lambda a: a * np.nan, out_shardings=getattr(x, 'sharding', None))(x)

    def summary(self) -> dict:
        return {'devices': self.devices, 'mesh': dict(self.axes), 'parallel': self.mode,
                'processes': self.processes}


def fetch(tree):
    """Device values -> numpy, also for replicated arrays spread over several processes."""
    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(a.addressable_data(0))
        return np.asarray(a)
    return jax.tree.map(one, tree)
