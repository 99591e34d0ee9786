"""Multi-host training: `jax.distributed` set-up and per-process data shards.

Every process runs the same program. `initialize` connects the processes
(explicit coordinator/count/id, or detected from the environment on Cloud
TPU pods, SLURM, Open MPI and Kubernetes); each process then loads only its
contiguous shard of the training set and `global_array` assembles the shards
into one array split over the mesh's 'data' axis. The sharded epoch of
`neurokit.parallel.mesh` then trains on all processes' devices as one
program; the data order and keys are those of a single-process run.

TPU pod slice (run the same command on every worker; the workdir must be a
folder every worker sees, e.g. a Filestore/NFS mount):
  gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all --command \\
    "cd neurokit && python -m experiments.train --config=experiments/configs/bp.py \\
     --workdir=/mnt/shared/runs/bp --config.distributed.enabled=True"
(with no coordinator given, `jax.distributed.initialize()` reads the TPU
metadata). Explicitly, e.g. 2 CPU processes on one machine:
  python -m experiments.train ... --config.distributed.enabled=True \\
    --config.distributed.coordinator_address=localhost:12355 \\
    --config.distributed.num_processes=2 --config.distributed.process_id=0   # and =1
"""
from __future__ import annotations

import math

import jax
import numpy as np

from neurokit.parallel.mesh import DATA, batch_sharding


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None,
               cpu_collectives: str | None = 'gloo', detect: bool = False) -> tuple[int, int]:
    """Connects this process to the others (once; later calls do nothing).

    Must run before any JAX computation. With no arguments, JAX detects the
    cluster (Cloud TPU, SLURM, Open MPI, Kubernetes); on a single machine
    without such an environment and no arguments, nothing is done.

    Args:
      coordinator_address: 'host:port' of process 0's coordinator service.
      num_processes: number of processes.
      process_id: this process's index in [0, num_processes).
      local_device_ids: restrict this process to these local devices.
      cpu_collectives: cross-process collectives on CPU ('gloo', 'mpi' or
        None to leave JAX's setting); CPU-only runs need one.
      detect: with no coordinator given, always call `jax.distributed.initialize()` and
        let JAX find the cluster (TPU VMs of every generation through their metadata,
        SLURM, Open MPI, Kubernetes, GPU clusters); it raises where it finds none. Without
        it, only an environment `_cluster_detected` recognises is joined.

    Returns:
      `(process_index, process_count)`.
    """
    if cpu_collectives:
        jax.config.update('jax_cpu_collectives_implementation', cpu_collectives)
    explicit = coordinator_address is not None or num_processes is not None
    if not jax.distributed.is_initialized():
        if explicit:
            jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                       local_device_ids)
        elif detect or _cluster_detected():
            jax.distributed.initialize()
    return jax.process_index(), jax.process_count()


def _cluster_detected() -> bool:
    """True where `jax.distributed.initialize()` can find its peers by itself."""
    import os
    env = os.environ
    return any(k in env for k in ('SLURM_JOB_ID', 'OMPI_COMM_WORLD_SIZE', 'TPU_WORKER_HOSTNAMES',
                                  'JAX_COORDINATOR_ADDRESS', 'KUBERNETES_SERVICE_HOST')) or \
        os.path.exists('/dev/accel0')  # a Cloud TPU VM


def any_process(flag: bool) -> bool:
    """Whether `flag` is True in any process of the job: the same answer everywhere.

    Every process must call it at the same point of the program (it is a collective); one
    process alone returns `flag`. The training loop decides to stop with it, so that a
    SIGTERM that reached one host stops every host at the same step.
    """
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
    return bool(np.any(np.asarray(flags)))


def multi_process_environment() -> bool:
    """True where the environment launched several processes of one job.

    Stricter than what `jax.distributed.initialize()` can detect: a
    single-task SLURM job, a single-host TPU VM or any Kubernetes pod runs one
    process and needs no coordinator, so a plain run there is left alone.
    Detected: a multi-host Cloud TPU slice (`TPU_WORKER_HOSTNAMES` lists
    several hosts), an `srun` step of several tasks, an Open MPI world of
    several ranks, or an explicit `JAX_COORDINATOR_ADDRESS`.
    """
    import os
    env = os.environ

    def more_than_one(key):
        try:
            return int(env.get(key, '1')) > 1
        except ValueError:
            return False

    return ('JAX_COORDINATOR_ADDRESS' in env
            or len([h for h in env.get('TPU_WORKER_HOSTNAMES', '').split(',') if h]) > 1
            or ('SLURM_STEP_ID' in env and more_than_one('SLURM_NTASKS'))
            or more_than_one('OMPI_COMM_WORLD_SIZE'))


def process_slice(num_examples: int, process_index: int | None = None,
                  process_count: int | None = None) -> slice:
    """This process's contiguous shard of a data set of `num_examples` examples.

    All shards have the same size (`num_examples // process_count`); the
    remainder is dropped so that the global array splits evenly.

    Args:
      num_examples: examples in the whole data set (>= process_count).
      process_index: this process, in [0, process_count); default `jax.process_index()`.
      process_count: number of processes (>= 1); default `jax.process_count()`.

    Raises:
      TypeError / ValueError: an argument out of range (the message names it).
    """
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    for name, value in (('num_examples', num_examples), ('process_index', index),
                        ('process_count', count)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'process_slice: {name} must be an integer, got {value!r} '
                            f'({type(value).__name__})')
    if count < 1:
        raise ValueError(f'process_slice: process_count must be >= 1, got {count}')
    if not 0 <= index < count:
        raise ValueError(f'process_slice: process_index must be in [0, process_count={count}), '
                         f'got {index}')
    if num_examples < count:
        raise ValueError(f'process_slice: num_examples={num_examples} leaves the {count} '
                         'processes no examples each; use at least one example per process')
    per = num_examples // count
    return slice(index * per, (index + 1) * per)


def global_array(local: np.ndarray, mesh):
    """One array split over 'data' from each process's shard (its rows, in process order).

    Args:
      local: this process's rows, `(n_local, ...)`; all processes the same size.
      mesh: the mesh (its devices ordered by process, as `make_mesh` does).

    Returns:
      A global `jax.Array` of shape `(n_local * process_count, ...)`.
    """
    local = np.asarray(local)
    shape = (local.shape[0] * jax.process_count(),) + local.shape[1:]
    return jax.make_array_from_process_local_data(batch_sharding(mesh), local, shape)


def load_shard(dataset, mesh, train_limit: int = 0):
    """This process's shard of a `Dataset`'s training set, as global arrays.

    The global arrays are split over the mesh's 'data' axis, so their row count
    must divide by its size as well as by the number of processes: the first
    `n - n % m` rows are kept, with `m = lcm(process_count, data axis size)`
    (the data axis size itself on a mesh of every device, as
    `Placement.train_rows` counts them).

    Args:
      dataset: a `neurokit.data.Dataset` (every process reads the same files and
        keeps only its rows; a loader that reads only its rows plugs in here).
      mesh: the mesh.
      train_limit: use only the first N examples (0: all).

    Returns:
      `(x, y)` global arrays split over 'data', of `n - n % m` rows.

    Raises:
      ValueError: fewer than `m` examples.
    """
    n = dataset.x_train.shape[0]
    n = min(n, train_limit) if train_limit else n
    m = math.lcm(jax.process_count(), mesh.shape[DATA])
    if n < m:
        limit = f' (train_limit={train_limit})' if train_limit else ''
        raise ValueError(f'load_shard: {n} training examples{limit} cannot be split evenly over '
                         f'the {mesh.shape[DATA]} devices of the data axis in '
                         f'{jax.process_count()} process(es); use at least {m}')
    rows = process_slice(n - n % m)
    return (global_array(dataset.x_train[rows], mesh),
            global_array(dataset.y_train[rows], mesh))
