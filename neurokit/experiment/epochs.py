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
    their cumulative train seconds and their metrics records; from a mid-epoch checkpoint,
    also `offset` steps of epoch `epoch` done and their metric sums (`MetricSums` JSON)."""
    epoch: int
    state: object
    train_seconds: float
    records: list
    offset: int = 0
    partial: dict | None = None


class MetricSums:
    """An epoch's training metrics so far, over its calls (`config.steps_per_call`).

    Per metric, the sum over calls of the call's mean times the steps it averaged (the
    steps taken: a step skipped under nan_policy='skip' is not), in float64; the epoch's
    mean is that sum over all steps taken. For one call per epoch this is the call's own
    mean, bit for bit. 'skipped_steps' is summed. A mid-epoch checkpoint keeps the sums
    (`to_json`), so a resumed epoch reports what the uninterrupted one does.
    """

    def __init__(self, sums=None, taken=None, seconds=0.0):
        self.sums = {k: np.asarray(v) for k, v in (sums or {}).items()}
        self.taken = None if taken is None else np.asarray(taken, np.float64)
        self.seconds = float(seconds)

    @classmethod
    def from_json(cls, d):
        return cls() if not d else cls(d['sums'], d['taken'], d['seconds'])

    def to_json(self) -> dict:
        return {'sums': {k: v.tolist() for k, v in self.sums.items()},
                'taken': None if self.taken is None else self.taken.tolist(),
                'seconds': self.seconds}

    def add(self, metrics: dict, taken, seconds: float) -> None:
        taken = np.asarray(taken, np.float64)
        for k, v in metrics.items():
            v = np.asarray(v)
            if k == 'skipped_steps':
                part = v.astype(np.int64)
            else:
                t = taken.reshape(taken.shape + (1,) * (v.ndim - taken.ndim))
                part = np.where(t > 0, v.astype(np.float64) * t, 0.0)
            self.sums[k] = self.sums[k] + part if k in self.sums else part
        self.taken = taken if self.taken is None else self.taken + taken
        self.seconds += seconds

    def means(self) -> dict:
        out = {}
        for k, v in self.sums.items():
            if k == 'skipped_steps':
                out[k] = v.tolist()
                continue
            t = self.taken.reshape(self.taken.shape + (1,) * (v.ndim - self.taken.ndim))
            with np.errstate(invalid='ignore', divide='ignore'):
                mean = np.where(t > 0, v / np.where(t > 0, t, 1.0), np.nan)
            out[k] = mean.astype(np.float32).tolist()  # the metrics' own precision
        return out


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
    epoch, seconds, offset, partial = 0, 0.0, 0, None
    try:
        restored = ckpt.restore_latest(like=state)
        if restored is not None:
            epoch, state, meta = restored
            seconds = _restored_seconds(meta, ckpt, epoch)
            _check_restored_step(state, epoch * steps, ckpt, epoch)
        mid = ckpt.partial.restore_latest(like=state) if ckpt.has_partial() else None
        if mid is not None and mid[0] > epoch * steps:  # a mid-epoch checkpoint after it
            step, mid_state, meta = mid
            _check_restored_step(mid_state, step, ckpt.partial, step)
            # the epochs before it finished (their metrics lines are checked below), though
            # with checkpoint_every > 1 not every one has an epoch checkpoint
            epoch, offset = divmod(step, steps)
            state, partial = mid_state, meta['sums']
            # the seconds before this epoch; its own so far travel with the sums
            seconds = _restored_seconds(meta, ckpt.partial, step) - float(partial['seconds'])
        if primary:  # refuses (changing nothing) if lines up to the epoch are missing
            records = wd.truncate_metrics(metrics_path, epoch, required=('test_accuracy',))
        else:
            records = [r for r in wd.read_jsonl(metrics_path) if r['epoch'] <= epoch]
    except BaseException:
        ckpt.close()
        raise
    return Resumed(epoch, state, seconds, records, offset, partial)


def train_epochs(config, workdir: str, ckpt: Checkpointer, start: Resumed,
                 one_epoch: Callable, primary: bool = True, steps: int = 0) -> Finished:
    """Trains epochs `start.epoch` .. `config.epochs - 1`; closes `ckpt` when done.

    Args:
      config: the run's config (epochs, checkpoint_every, progress, tensorboard).
      workdir: the run folder.
      ckpt: its checkpointer.
      start: from `resume`.
      one_epoch: `(epoch, state, last_saved, offset, partial, between) -> (state, record,
        seconds)`: trains epoch `epoch` (0-based) from `state`, from its step `offset`
        (with `partial`, the `MetricSums` JSON of the steps before it), evaluates, and
        returns the host state to checkpoint, the metrics record and the training
        seconds. Between its calls of `config.steps_per_call` steps it calls
        `between(offset, host_state, sums)`, which may save a mid-epoch checkpoint and
        raise `Preempted`. It raises `TrainingError` for a non-finite loss (`last_saved`
        is the newest epoch checkpoint known complete, for the message: with
        asynchronous saves, not one still being written).
      primary: whether this process writes files (all processes save checkpoints).
      steps: training steps per epoch (where a mid-epoch checkpoint sits).

    Raises:
      Preempted: SIGTERM or Ctrl-C arrived; a checkpoint was saved first.
      WorkdirError: a write failed.
    """
    metrics_path = fs.path(workdir) / wd.METRICS
    state, train_seconds = start.state, start.train_seconds
    record = start.records[-1] if start.records and start.epoch else None
    last_saved, checkpoint_seconds = start.epoch, 0.0
    saved_step = start.epoch * steps + start.offset  # the newest checkpoint's global step
    # config.async_checkpoints: a save's files are written in the background; `pending` names
    # the write in flight and `committed` is the newest epoch checkpoint known complete (what
    # an error message may call intact)
    committed, pending = start.epoch, None

    def settle():
        """Waits for the background write in flight; its error as one WorkdirError line."""
        nonlocal committed, pending
        if pending is not None:
            what, epoch = pending
            pending = None
            with writing(what, committed, Exception):
                ckpt.wait()
            committed = committed if epoch is None else epoch

    def save(epoch):
        nonlocal checkpoint_seconds, last_saved, saved_step, committed, pending
        t = time.perf_counter()
        settle()
        fault_hook('during_checkpoint', epoch)
        what = f'the checkpoint of epoch {epoch} in {ckpt.directory}'
        # orbax/tensorstore raise many types for one cause (a full disk, a read-only folder)
        with writing(what, committed, Exception):
            ckpt.save(epoch, state, {'train_seconds': train_seconds})  # every process calls it
        if ckpt.asynchronous:
            pending = (what, epoch)
        else:
            committed = epoch
        checkpoint_seconds += time.perf_counter() - t
        last_saved, saved_step = epoch, epoch * steps

    if primary and start.offset:
        step = start.epoch * steps + start.offset
        print(f'resuming from step {start.offset} of epoch {start.epoch + 1} of {config.epochs} '
              f'(checkpoint {ckpt.partial.directory / str(step)})', file=sys.stderr, flush=True)
    elif primary and start.epoch:
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

            def between(epoch, offset, host_state, sums):
                """After a call inside an epoch: agree on a stop; save mid-epoch on a stop
                or once `checkpoint_every_steps` steps have passed since the last save."""
                nonlocal saved_step, checkpoint_seconds, pending
                step = epoch * steps + offset
                progress.within(epoch, offset, steps, lambda: sums.means().get('loss'))
                fault_hook('after_call', step)
                stop_now = any_process(stop.requested)
                every = config.checkpoint_every_steps
                if stop_now or (every and step - saved_step >= every):
                    t = time.perf_counter()
                    settle()
                    what = f'the mid-epoch checkpoint of step {step} in {ckpt.partial.directory}'
                    with writing(what, committed, Exception):
                        ckpt.partial.save(step, host_state(), {
                            'train_seconds': train_seconds + sums.seconds,
                            'sums': sums.to_json()})
                    pending = (what, None) if ckpt.asynchronous else None
                    checkpoint_seconds += time.perf_counter() - t
                    saved_step = step
                    fault_hook('after_mid_checkpoint', step)
                if stop_now:
                    settle()
                    raise Preempted(f'stopped by {stop.by} at step {offset} of {steps} in epoch '
                                    f'{epoch + 1} of {config.epochs}; checkpoint saved in '
                                    f'{ckpt.partial.directory}')

            for epoch in range(start.epoch, config.epochs):
                fault_hook('before_epoch', epoch + 1)
                stopping = any_process(stop.requested)  # the same decision in every process
                if stopping:
                    break
                resumed = epoch == start.epoch and start.offset
                state, record, seconds = one_epoch(
                    epoch, state, committed, start.offset if resumed else 0,
                    start.partial if resumed else None,
                    lambda offset, host_state, sums, epoch=epoch: between(
                        epoch, offset, host_state, sums))
                train_seconds += seconds
                if primary:
                    with writing(metrics_path, committed):
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
            if stopping and done > last_saved:
                save(done)
            settle()  # the files of the last save are complete before the run ends
            if stopping:
                if done < config.epochs:
                    raise Preempted(f'stopped by {stop.by} after epoch {done} of '
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

    @property
    def by(self) -> str:
        """What stopped the run, for messages: this process's signal, or another's (the
        processes agree on a stop, `any_process`)."""
        return self.signal_name or "another process's SIGTERM or SIGINT"


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
    'during_checkpoint') of EPOCH, or, between calls of `steps_per_call` steps,
    'after_call' or 'after_mid_checkpoint' of the global step EPOCH; 'during_checkpoint'
    fires from a timer DELAY seconds after the save starts, i.e. at an arbitrary point of it.
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
