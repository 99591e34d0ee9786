"""The epoch loop that runs and sweeps share: resume, record, checkpoint, preempt.

`resume` restores the newest checkpoint and trims metrics.jsonl to it;
`train_epochs` then calls the caller's `one_epoch` for each remaining epoch and,
after each, appends its metrics line, mirrors it to TensorBoard and the
progress line, and saves a checkpoint every `checkpoint_every` epochs and at
the end. `neurokit.experiment.run` is its one caller (a seed run is a sweep with an empty
grid).

SIGTERM (preemption) and Ctrl-C (SIGINT) set a flag; at the next epoch boundary
the loop saves a checkpoint and raises `Preempted` (the CLI exits with code 3). In a
multi-process run the processes agree on the flag at every boundary
(`parallel.distributed.any_process`): a signal that reached one host stops all of them
after the same epoch, and they save that epoch's checkpoint together. A
second Ctrl-C stops at once without saving (the last checkpoint stays). The
handlers are installed when the epoch loop starts: a SIGTERM during startup or
compilation ends the process at once, and a Ctrl-C there is a KeyboardInterrupt
(the CLI says so in one line and exits 130); there is nothing to save yet.
A write that fails (disk full, permissions changed mid-run) is a `WorkdirError`
naming the file; the last checkpoint stays intact.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from typing import Callable, NamedTuple

import numpy as np

from neurokit.experiment.errors import WorkdirError
from neurokit.experiment.placement import fetch
from neurokit.experiment import fs
from neurokit.experiment import workdir as wd
from neurokit.experiment.checkpoint import Checkpointer, Preempted
from neurokit.experiment.metrics import EventWriter, Progress, member_names
from neurokit.parallel.distributed import any_process


class Resumed(NamedTuple):
    """Where training starts: `epoch` epochs done (0: a new run), the state after them,
    their cumulative train seconds and their metrics records."""
    epoch: int
    state: object
    train_seconds: float
    records: list


class Finished(NamedTuple):
    """What `train_epochs` returns: the final (host) state, the last epoch's metrics
    record (None if no epoch ran or was recorded), and the time spent."""
    state: object
    record: dict | None
    train_seconds: float
    checkpoint_seconds: float
    loop_seconds: float


def resume(ckpt: Checkpointer, state, steps: int, metrics_path: str,
           primary: bool = True) -> Resumed:
    """Restores the newest checkpoint (shaped like `state`) and keeps the metrics lines
    up to it; without a checkpoint, `state` itself at epoch 0.

    Raises:
      WorkdirError: the checkpoint is damaged or sits at another step than its epoch
        ends at, or metrics.jsonl lacks lines up to it (nothing is changed). `ckpt`
        is closed first.
    """
    epoch, seconds = 0, 0.0
    try:
        restored = ckpt.restore_latest(like=state)
        if restored is not None:
            epoch, state, meta = restored
            seconds = _restored_seconds(meta, ckpt, epoch)
            _check_restored_step(state, epoch * steps, ckpt, epoch)
        if primary:  # refuses (changing nothing) if lines up to the epoch are missing
            records = wd.truncate_metrics(metrics_path, epoch, required=('test_accuracy',))
        else:
            records = [r for r in wd.read_jsonl(metrics_path) if r['epoch'] <= epoch]
    except BaseException:
        ckpt.close()
        raise
    return Resumed(epoch, state, seconds, records)


def train_epochs(config, workdir: str, ckpt: Checkpointer, start: Resumed,
                 one_epoch: Callable, primary: bool = True) -> Finished:
    """Trains epochs `start.epoch` .. `config.epochs - 1`; closes `ckpt` when done.

    Args:
      config: the run's config (epochs, checkpoint_every, progress, tensorboard).
      workdir: the run folder.
      ckpt: its checkpointer.
      start: from `resume`.
      one_epoch: `(epoch, state, last_saved) -> (state, record, seconds)`: trains
        epoch `epoch` (0-based) from `state`, evaluates, and returns the host state
        to checkpoint, the metrics record and the training seconds. It raises
        `TrainingError` for a non-finite loss (`last_saved` is the newest
        checkpointed epoch, for the message).
      primary: whether this process writes files (all processes save checkpoints).

    Raises:
      Preempted: SIGTERM or Ctrl-C arrived; a checkpoint was saved first.
      WorkdirError: a write failed.
    """
    metrics_path = fs.path(workdir) / wd.METRICS
    state, train_seconds = start.state, start.train_seconds
    record = start.records[-1] if start.records and start.epoch else None
    last_saved, checkpoint_seconds = start.epoch, 0.0

    def save(epoch):
        nonlocal checkpoint_seconds, last_saved
        t = time.perf_counter()
        fault_hook('during_checkpoint', epoch)
        # orbax/tensorstore raise many types for one cause (a full disk, a read-only folder)
        with writing(f'the checkpoint of epoch {epoch} in {ckpt.directory}', last_saved,
                     Exception):
            ckpt.save(epoch, state, {'train_seconds': train_seconds})  # every process calls it
        checkpoint_seconds += time.perf_counter() - t
        last_saved = epoch

    if primary and start.epoch:
        print(f'resuming from epoch {start.epoch} of {config.epochs} (checkpoint '
              f'{ckpt.directory / str(start.epoch)})', file=sys.stderr, flush=True)
    tensorboard = config.tensorboard and primary
    writer = EventWriter(workdir, tensorboard, start.epoch,
                         _member_names(config) if tensorboard else None)
    progress = Progress(config.epochs, config.progress if primary else 'off', start.epoch)
    t_loop = time.perf_counter()
    done = start.epoch
    fault_hook('before_start', start.epoch)  # a Ctrl-C here is a plain KeyboardInterrupt
    try:
        with stop_flag() as stop:
            stopping = False
            for epoch in range(start.epoch, config.epochs):
                fault_hook('before_epoch', epoch + 1)
                stopping = any_process(stop.requested)  # the same decision in every process
                if stopping:
                    break
                state, record, seconds = one_epoch(epoch, state, last_saved)
                train_seconds += seconds
                if primary:
                    with writing(metrics_path, last_saved):
                        wd.append_jsonl(metrics_path, record)
                writer.write(record)
                fault_hook('after_metrics', epoch + 1)
                done = epoch + 1
                every = config.checkpoint_every
                stopping = any_process(stop.requested)
                if done == config.epochs or (every and done % every == 0) or stopping:
                    save(done)
                fault_hook('after_checkpoint', epoch + 1)
                progress.update(record)
            if stopping:
                if done > last_saved:
                    save(done)
                if done < config.epochs:
                    by = stop.signal_name or "another process's SIGTERM or SIGINT"
                    raise Preempted(f'stopped by {by} after epoch {done} of '
                                    f'{config.epochs}; checkpoint saved in {ckpt.directory}')
    finally:
        progress.close()
        writer.close()
        ckpt.close()
    return Finished(state, record, train_seconds, checkpoint_seconds,
                    time.perf_counter() - t_loop)


def _member_names(config) -> list | None:
    """The vmapped members' names for TensorBoard (`metrics.member_names`), from the
    config's sweep grid and seeds."""
    if not config.sweep and config.num_seeds < 2:
        return None
    from neurokit.experiment.members import members  # the run driver's; only when needed
    return member_names(*members(config))


# ----------------------------------------------------------------------------- preemption


class _StopFlag:
    """SIGTERM or SIGINT sets `requested`; the training loop acts on it at the next epoch
    boundary. A second SIGINT (Ctrl-C pressed again) raises KeyboardInterrupt."""

    def __init__(self):
        self.requested = False
        self.signal_name = ''

    def __call__(self, signum, frame):
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            print('interrupt: saving a checkpoint after this epoch, then stopping (Ctrl-C again: '
                  'stop without saving)', file=sys.stderr, flush=True)
        self.requested = True
        self.signal_name = self.signal_name or signal.Signals(signum).name


@contextlib.contextmanager
def stop_flag():
    """Installs the SIGTERM/SIGINT handlers (main thread only) for the `with` block."""
    flag = _StopFlag()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, flag)
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ----------------------------------------------------------------------------- writes


def kept(last_saved: int) -> str:
    """What an error leaves behind, for its message."""
    return (f'the checkpoint of epoch {last_saved} is intact' if last_saved
            else 'no checkpoint was saved')


@contextlib.contextmanager
def writing(what: str, last_saved: int, errors=(OSError,)):
    """Turns an error in `errors` while writing `what` into one WorkdirError line."""
    try:
        yield
    except WorkdirError:
        raise  # already one line (it is an OSError too; a CheckpointOrderError says its own fix)
    except errors as e:
        detail = (e.strerror if isinstance(e, OSError) and e.strerror
                  else f'{type(e).__name__}: {" ".join(str(e).split())[:200]}')
        raise WorkdirError(f'cannot write {what} ({detail}); {kept(last_saved)}; free space or '
                           'fix permissions and run the same command again') from None


# ----------------------------------------------------------------------------- restore checks


def _restored_seconds(meta, ckpt, epoch) -> float:
    try:
        seconds = float(meta.get('train_seconds', 0.0))
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise WorkdirError(f'checkpoint {ckpt.directory / str(epoch)} is damaged: '
                           f'its meta item holds train_seconds={meta.get("train_seconds")!r}; '
                           f'{ckpt.fallback(epoch)}')
    return seconds


def _check_restored_step(state, expected, ckpt, epoch) -> None:
    """A checkpoint's state must sit where its epoch ends (the data order resumes from
    `state.step`); a folder renamed or copied over another would silently shift it."""
    got = np.atleast_1d(np.asarray(fetch(state.step)))
    if np.any(got != expected):
        raise WorkdirError(f'checkpoint {ckpt.directory / str(epoch)} holds a state '
                           f'at step {int(got[0])}, not {expected} where epoch {epoch} ends '
                           f'(moved or copied, or a different batch_size?); '
                           f'{ckpt.fallback(epoch)}')


# ----------------------------------------------------------------------------- tests


def fault_hook(phase, epoch):
    """Test-only fault injection: NEUROKIT_TEST_HOOK='EPOCH:PHASE:ACTION[:DELAY],...'.

    ACTION 'kill' sends SIGKILL, 'term' SIGTERM, 'int' SIGINT, to this process when the
    run reaches PHASE ('before_start' of the epoch it starts from, before the signal
    handlers are installed; 'before_epoch', 'after_metrics', 'after_checkpoint',
    'during_checkpoint') of EPOCH; 'during_checkpoint' fires from a timer
    DELAY seconds after the save starts, i.e. at an arbitrary point of it.
    """
    spec = os.environ.get('NEUROKIT_TEST_HOOK')
    if not spec:
        return
    for item in spec.split(','):
        parts = item.split(':')
        if int(parts[0]) != epoch or parts[1] != phase:
            continue
        sig = {'kill': signal.SIGKILL, 'term': signal.SIGTERM, 'int': signal.SIGINT}[parts[2]]
        if len(parts) > 3:
            timer = threading.Timer(float(parts[3]), os.kill, (os.getpid(), sig))
            timer.daemon = True  # a run that ends first is not held open by the timer
            timer.start()
        else:
            os.kill(os.getpid(), sig)


def poison_epoch():
    """Test-only: NEUROKIT_TEST_POISON_EPOCH=N feeds NaN inputs during epoch N."""
    v = os.environ.get('NEUROKIT_TEST_POISON_EPOCH')
    return int(v) if v else None
