"""Orbax checkpoints of the whole `TrainState`, one per saved epoch, keeping the last K.

A checkpoint is the folder `<workdir>/checkpoints/<epoch>/` with two items:
`state` (the `TrainState` pytree: params, optimizer state, rule state, PRNG key
and step, i.e. the position in the data order) and `meta` (JSON: epoch,
cumulative train seconds). Orbax writes each one into a temporary folder and
renames it when complete, so a process killed mid-save leaves the previous
checkpoint as the latest; a half-written folder is never read back.

Saves are synchronous by default (complete when `save` returns). With
`asynchronous=True` (`--config.async_checkpoints`), `save` returns once the arrays are
copied off the devices and the files are written in the background while training goes
on; `wait` blocks until they are complete and raises what a background write raised.
The checksums are computed before `save` returns, from the state being saved.

Example:
  ckpt = Checkpointer(workdir, keep=3)
  ckpt.save(epoch, state, {'train_seconds': 12.5})
  epoch, state, meta = ckpt.restore_latest(like=state)
"""
from __future__ import annotations

import json
import logging
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from neurokit.experiment import fs
from neurokit.experiment.errors import CheckpointOrderError, WorkdirError

CHECKPOINTS = 'checkpoints'
PARTIAL = 'partial'  # <workdir>/checkpoints/partial/<global step>/: the newest mid-epoch one
# Meta keys `save` writes itself: a caller's value would override the epoch `restore`
# checks, or the checksums it verifies the arrays against.
RESERVED_META = ('epoch', 'checksums')


class Checkpointer:
    """Saves and restores `TrainState`s under `<workdir>/checkpoints`.

    Args:
      workdir: the run's folder.
      keep: how many of the newest checkpoints to keep (older ones are deleted
        after a newer one is complete).
      create: create the folder (False for read-only inspection).
      run: the folder is a training run's (`neurokit.experiment.run`, the CLI): error messages
        then also name its config.json and `--workdir`; otherwise they speak of this
        object's `restore`/`restore_latest` and `like=` only.
      asynchronous: write in the background (see the module docstring); `wait` (or
        `close`) before relying on the files.
    """

    def __init__(self, workdir: str, keep: int = 3, create: bool = True, run: bool = False,
                 asynchronous: bool = False, _directory=None):
        self.directory = _directory or fs.path(workdir) / CHECKPOINTS
        self._run, self._create, self._partial = run, create, None
        self.asynchronous = asynchronous
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=create, enable_async_checkpointing=asynchronous,
            cleanup_tmp_directories=True, read_only=not create)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=('state', 'meta'))
        # orbax removes half-written folders of earlier runs in a background task that only a
        # save waits for; a run that stops before saving (a bad checkpoint, an error) would
        # exit under it and print its "cannot schedule new futures after shutdown". Wait now.
        wait_cleanup = getattr(self._manager, '_maybe_await_cleanup_tmp_directory', None)
        if callable(wait_cleanup):
            wait_cleanup()

    def epochs(self) -> list:
        """The saved epochs, oldest first."""
        return sorted(self._manager.all_steps())

    def latest(self):
        """The newest saved epoch, or None."""
        return self._manager.latest_step()

    def save(self, epoch: int, state, meta: dict) -> None:
        """Writes `state` as the checkpoint of `epoch` (complete when this returns, unless
        `asynchronous`: then when `wait` returns; an earlier background write's error is
        raised here).

        The meta item also holds a checksum of every array (`checksums`), which
        `restore` verifies: orbax reads back a flipped bit in a data file without
        complaint.

        Epochs are saved in increasing order and a checkpoint is never replaced: an
        overwrite would leave no complete checkpoint of that epoch if the process died
        halfway, and a resume reads the newest epoch, so an older one saved after it
        would never be used (and `keep` would evict it first).

        Args:
          epoch: an integer >= 0 after the newest saved epoch (the checkpoint's
            folder name; `keep` evicts the smallest).
          state: the pytree to save.
          meta: JSON-serialisable values (plain Python numbers, strings, lists,
            dicts), other than the keys in `RESERVED_META`.

        Raises:
          TypeError, ValueError: a bad epoch or meta, or an epoch not after the
            newest saved one (checked before anything is written; the checkpoints
            there stay as they are).
        """
        epoch = _check_epoch(epoch)
        _check_meta(meta)
        self._check_after_latest(epoch)
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            meta=ocp.args.JsonSave({'epoch': epoch, 'checksums': checksums(state), **meta})),
            force=True)
        if not self.asynchronous:
            self._manager.wait_until_finished()

    def wait(self) -> None:
        """Blocks until every save (this one's and its mid-epoch one's) is complete on
        disk; raises what a background write raised."""
        self._manager.wait_until_finished()
        if self._partial is not None:
            self._partial.wait()

    def _check_after_latest(self, epoch: int) -> None:
        """CheckpointOrderError (a ValueError and a WorkdirError) unless `epoch` is after the
        newest saved epoch (the folder is read
        again first, so checkpoints deleted since, as the message advises, count as gone)."""
        latest = self.latest()
        if latest is None or epoch > latest:
            return
        self._manager.reload()
        latest = self.latest()
        if latest is None or epoch > latest:
            return
        folder = self.directory / str(epoch)
        # a replacement (or an older epoch) needs every checkpoint from `epoch` on gone
        paths = ', '.join(str(self.directory / str(e)) for e in self.epochs()
                          if e >= epoch)
        if epoch in self.epochs():
            raise CheckpointOrderError(
                f'Checkpointer.save: epoch {epoch} already has a checkpoint ({folder}), left as '
                f'it is; save under an epoch after {latest}, or delete {paths} first to replace '
                'it, or use another workdir')
        raise CheckpointOrderError(
            f'Checkpointer.save: epoch {epoch} is before the newest checkpoint, epoch {latest} '
            f'({self.directory / str(latest)}), which a resume would read instead, '
            f'so nothing was saved; save under an epoch after {latest}, or delete {paths} first '
            f'to go back to epoch {epoch}, or use another workdir')

    def restore(self, epoch: int, like=None):
        """Reads the checkpoint of `epoch`.

        Args:
          epoch: a saved epoch.
          like: a pytree of arrays (or `jax.ShapeDtypeStruct`s) with the
            state's structure, dtypes and shardings; None returns the raw
            nested structure as numpy arrays (for inspection and tests).

        Returns:
          `(state, meta)`.

        Raises:
          WorkdirError: the checkpoint is damaged or does not fit `like` (names
            the folder and what to do).
        """
        if like is None:
            state_args = ocp.args.StandardRestore()
        else:
            # Before the restore: orbax would cast a float32 array into a bfloat16 `like`
            # (whose checksums then differ, as if the files were damaged) and names a
            # shape mismatch only in its own terms.
            self._check_fits(epoch, like)
            state_args = ocp.args.StandardRestore(jax.tree.map(_abstract, like))
        undo_quiet = _quiet_failed_reads()
        try:
            out = self._manager.restore(epoch, args=ocp.args.Composite(
                state=state_args, meta=ocp.args.JsonRestore()))
            meta = dict(out['meta'])
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many unrelated types
            # the filters stay: the failed restore's stray reads may still report
            raise WorkdirError(self._restore_failed(epoch, e, like is not None)) from None
        undo_quiet()
        folder = self.directory / str(epoch)
        if meta.get('epoch', epoch) != epoch:
            raise WorkdirError(
                f'checkpoint {folder} holds the state of epoch {meta.get("epoch")!r}, not '
                f'{epoch} (moved or copied?); {self.fallback(epoch)}')
        stored = meta.get('checksums')  # absent in checkpoints of older versions
        if stored is not None and not isinstance(stored, dict):
            raise WorkdirError(f'checkpoint {folder} is damaged: its meta item holds no usable '
                               f'checksums; {self.fallback(epoch)}')
        # Verified against the structure of `like`; a raw restore (like=None) is for
        # inspection and comes back as plain dicts with other leaf paths.
        bad = checksums_differ(stored, out['state']) if like is not None and stored else []
        if bad:
            raise WorkdirError(
                f'checkpoint {folder} is damaged: {len(bad)} array(s) ({bad[0]}, ...) do not '
                f'match the checksums saved with them; {self.fallback(epoch)}')
        # With `like`, orbax rebuilds its containers (TrainState, optax's NamedTuples).
        return out['state'], meta

    def _check_fits(self, epoch: int, like) -> None:
        """WorkdirError if an array stored in the checkpoint has another dtype or shape
        than the same leaf of `like` (checkpoints whose metadata cannot be read are left
        to the restore, which reports them)."""
        folder = self.directory / str(epoch)
        try:
            handler = ocp.StandardCheckpointHandler()
            try:
                stored = handler.metadata(self._manager.directory / str(epoch) / 'state')
            finally:
                handler.close()
            stored = {getattr(x, 'name', None): x for x in jax.tree.leaves(stored)}
        except Exception:  # noqa: BLE001 - a damaged checkpoint: the restore says so
            return
        differ = []
        for path, x in jax.tree_util.tree_flatten_with_path(like)[0]:
            if not hasattr(x, 'shape') or not hasattr(x, 'dtype') or \
                    jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                continue
            s = stored.get(_orbax_name(path))
            if s is None or getattr(s, 'dtype', None) is None or getattr(s, 'shape', None) is None:
                continue  # a structure orbax itself refuses
            if np.dtype(s.dtype) != np.dtype(x.dtype) or tuple(s.shape) != tuple(x.shape):
                differ.append(f'{jax.tree_util.keystr(path)} is {np.dtype(s.dtype)}'
                              f'{list(s.shape)} there, {np.dtype(x.dtype)}{list(x.shape)} '
                              'in like')
        if differ:
            more = f' (and {len(differ) - 1} more)' if len(differ) > 1 else ''
            raise WorkdirError(
                f'checkpoint {folder} holds arrays of other dtypes or shapes than like=: '
                f'{differ[0]}{more}; the checkpoint itself is fine: restore it with like= a '
                'state of the model, dtype and optimizer it was saved with'
                + (' (if config.json was edited, put it back), or pass a new --workdir'
                   if self._run else ' (or like=None for the raw arrays)'))

    def fallback(self, epoch: int) -> str:
        """What to do when the checkpoint of `epoch` cannot be used (for error messages)."""
        folder = self.directory / str(epoch)
        older = [s for s in self.epochs() if s < epoch]
        if self._run:
            then = f'resume from epoch {older[-1]}' if older else 'start over'
            return f'delete {folder} to {then}, or pass a new --workdir'
        if older:
            return (f'restore({older[-1]}) reads the epoch before it; delete {folder} to make '
                    f'epoch {older[-1]} the newest')
        return f'no earlier checkpoint exists; delete {folder} to start over'

    def _restore_failed(self, epoch: int, e: Exception, with_like: bool) -> str:
        folder = self.directory / str(epoch)
        detail = ' '.join(str(e).split())[:200]
        if self._run:
            edited = 'if config.json was edited, put it back; '
        elif with_like:
            edited = ('if like= is a state of another model or optimizer, pass one of the model '
                      'it was saved with; ')
        else:
            edited = ''
        return (f'checkpoint {folder} cannot be restored ({type(e).__name__}: {detail}); '
                f'{edited}if the checkpoint is damaged, {self.fallback(epoch)}')

    def restore_latest(self, like=None):
        """`(epoch, state, meta)` of the newest checkpoint, or None if there is none."""
        epoch = self.latest()
        if epoch is None:
            return None
        state, meta = self.restore(epoch, like)
        return epoch, state, meta

    @property
    def partial(self) -> 'Checkpointer':
        """The mid-epoch checkpoints (`config.checkpoint_every_steps`, or a stop between
        calls of `config.steps_per_call` steps): a `Checkpointer` of
        `checkpoints/partial/`, keeping the newest only, whose ids are global steps."""
        if self._partial is None:
            self._partial = Checkpointer(None, keep=1, create=self._create, run=self._run,
                                         asynchronous=self.asynchronous,
                                         _directory=self.directory / PARTIAL)
        return self._partial

    def has_partial(self) -> bool:
        """Whether a mid-epoch checkpoint folder exists (without opening it)."""
        return (self.directory / PARTIAL).is_dir()

    def close(self) -> None:
        self._manager.close()
        if self._partial is not None:
            self._partial.close()


def _check_epoch(epoch) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
        raise TypeError(f'Checkpointer.save: epoch must be an integer >= 0, got {epoch!r} '
                        f'({type(epoch).__name__}); pass int(epoch)')
    if epoch < 0:
        raise ValueError(f'Checkpointer.save: epoch must be an integer >= 0, got {epoch}')
    return int(epoch)


def _check_meta(meta) -> None:
    """Refuses a meta that orbax's JSON save would fail on halfway (leaving a temporary
    folder that makes the next save of that epoch fail) or that overrides a reserved key."""
    if not isinstance(meta, dict):
        raise TypeError(f'Checkpointer.save: meta must be a dict, got {type(meta).__name__}; '
                        'pass {} for none')
    for key, value in meta.items():
        if not isinstance(key, str):
            raise TypeError(f'Checkpointer.save: meta key {key!r} is a {type(key).__name__}; '
                            'JSON keys are strings')
        if key in RESERVED_META:
            raise ValueError(f'Checkpointer.save: meta key {key!r} is reserved (the checkpointer '
                             f'writes {", ".join(RESERVED_META)} itself); rename it')
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f'Checkpointer.save: meta[{key!r}] is not JSON-serialisable '
                            f'({type(value).__name__}: {e}); pass plain Python values, e.g. '
                            'float(x) for an array scalar') from None


def _orbax_name(path) -> str:
    """The dotted name orbax gives the leaf at a key path (`opt_state.0.mu.layers.0.w`)."""
    parts = []
    for k in path:
        for attr in ('name', 'key', 'idx'):  # GetAttrKey, DictKey / FlattenedIndexKey, SequenceKey
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    return '.'.join(parts)


class _FailedReadFilter(logging.Filter):
    """Drops asyncio's reports of a failed restore's other reads (see `_quiet_failed_reads`)."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        # 'Task exception was never retrieved', 'Future exception was never retrieved'
        return not ('exception was never retrieved' in record.getMessage()
                    or _closed_loop(exc))


def _closed_loop(e) -> bool:
    return isinstance(e, RuntimeError) and str(e) == 'Event loop is closed'


def _quiet_failed_reads():
    """Silences the stray reports of a failed restore's other reads; returns the undo.

    When one array of a checkpoint cannot be read, orbax's restore fails while
    tensorstore is still finishing the other reads. Their ends then surface as
    unraisable "Event loop is closed" exceptions (the loop is closed by then) or as
    asyncio's logged "Task (or Future) exception was never retrieved" with a traceback
    (about one CLI run in five), burying the one-line error under tracebacks. Only those are
    dropped: other unraisable exceptions go to the previous hook, other asyncio records
    through. Undone after a restore that succeeded; kept after one that failed.
    Not caught: in about one CLI run in twenty, a bare "Event loop is closed" traceback
    printed from tensorstore's own threads, through neither hook nor logger; the
    one-line error still comes last.
    """
    previous = sys.unraisablehook
    log_filter = _FailedReadFilter()
    asyncio_log = logging.getLogger('asyncio')

    def hook(unraisable):
        if not _closed_loop(unraisable.exc_value):
            previous(unraisable)

    sys.unraisablehook = hook
    asyncio_log.addFilter(log_filter)

    def undo():
        sys.unraisablehook = previous
        asyncio_log.removeFilter(log_filter)

    return undo


@jax.jit
def _leaf_sums(leaves):
    out = []
    for x in leaves:
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if x.dtype == jnp.bool_:
            x = x.astype(jnp.uint8)
        bits = jnp.dtype(f'uint{8 * x.dtype.itemsize}')
        words = jax.lax.bitcast_convert_type(x, bits).reshape(-1)
        if words.dtype.itemsize == 8:  # uint64 (x64 mode): both halves
            words = jnp.concatenate([(words >> 32), words & 0xFFFFFFFF])
        words = words.astype(jnp.uint32)
        odd = jnp.arange(words.size, dtype=jnp.uint32) * 2 + 1
        # Sums wrap around 2**32. One flipped bit changes both; the position-weighted
        # one (odd weights) also changes when two words trade places.
        out.append(jnp.stack([jnp.sum(words), jnp.sum(words * odd)]))
    return out


def checksums(tree) -> dict:
    """`{leaf path: [sum, weighted sum]}` of each array leaf's bits (uint32, wrapping):
    equal for equal arrays whatever their sharding; a flipped bit changes them."""
    flat = [(jax.tree_util.keystr(path), x)
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
            if isinstance(x, (jax.Array, np.ndarray))]
    sums = _leaf_sums([x for _, x in flat])
    return {name: [int(v) for v in np.asarray(_local(s))] for (name, _), s in zip(flat, sums)}


def checksums_differ(stored: dict, tree) -> list:
    """The leaf paths whose arrays in `tree` do not match `stored` (paths on one side only
    are skipped: orbax itself refuses a structure that does not fit)."""
    now = checksums(tree)
    return [k for k in stored if k in now and now[k] != stored[k]]


def _local(x):
    """A replicated result as numpy, also when it spans processes."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x.addressable_data(0)
    return x


def _abstract(x):
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    if isinstance(x, np.ndarray):
        return jax.ShapeDtypeStruct(x.shape, x.dtype)
    return x


def has_checkpoints(workdir) -> bool:
    """Whether `workdir` holds at least one complete checkpoint (read-only check)."""
    folder = fs.path(workdir) / CHECKPOINTS
    return any(f.is_dir() and any(p.name.isdigit() for p in f.iterdir())
               for f in (folder, folder / PARTIAL))


class Preempted(Exception):
    """SIGTERM stopped the run at an epoch boundary after its checkpoint was saved.

    The CLI exits with `EXIT_CODE`; re-running the same command resumes.
    """

    EXIT_CODE = 3
