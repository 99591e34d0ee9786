"""Composition and scale: sweeps, data parallelism, pmap, multi-host, layer pipelining.

* `sweep`: N members differing in seed and hyperparameters as one vmapped program.
* `mesh`: `Mesh`/`NamedSharding` data parallelism (optionally FSDP) of the scanned epoch.
* `pmap`: the same data parallelism with `jax.pmap` + `lax.pmean`.
* `distributed`: `jax.distributed` set-up and per-process data shards.
* `pipeline`: block-local rules (`neurokit.rules.combine.chain`) with one block per device.
"""
from neurokit.parallel import distributed, mesh, pipeline, pmap, sweep
from neurokit.parallel.mesh import (batch_constraint, batch_sharding, make_mesh, put_dataset, put_state, replicated,
                                    sharded_epoch, state_shardings)
from neurokit.parallel.pmap import pmap_epoch, replicate, unreplicate
from neurokit.parallel.sweep import SweepResult, grid

__all__ = ['SweepResult', 'batch_constraint', 'batch_sharding', 'distributed', 'grid', 'make_mesh', 'mesh',
           'pipeline', 'pmap', 'pmap_epoch', 'put_dataset', 'put_state', 'replicate',
           'replicated', 'sharded_epoch', 'state_shardings', 'sweep', 'unreplicate']
