"""Watching a run: TensorBoard event files and a per-epoch progress line.

metrics.jsonl (written by `run`) stays the record of truth; the event files
mirror it for TensorBoard (`tensorboard --logdir <workdir>/tb`), written with
tensorboardX.

Example:
  with EventWriter(workdir, enabled=True, start_epoch=0) as tb:
    tb.write({'epoch': 1, 'train_loss': 0.5, 'test_accuracy': 0.8})
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import time


def scalars(record: dict, prefix: str = '') -> dict:
    """Flattens a metrics record into `{tag: float}`.

    Lists (one value per vmapped member, or per layer) become `tag/0`,
    `tag/1`, ...; a list of members also gets `tag/mean` (over the members that report a
    number: a member whose every step was skipped reports NaN).
    """
    out = {}
    for key, value in record.items():
        tag = f'{prefix}{key}'
        if isinstance(value, bool):
            continue
        if isinstance(value, numbers.Real):
            out[tag] = float(value)
        elif isinstance(value, (list, tuple)) and value:
            for i, v in enumerate(value):
                out.update(scalars({str(i): v}, f'{tag}/'))
            if all(isinstance(v, numbers.Real) for v in value):
                out[f'{tag}/mean'] = _mean(list(value))
    return out


class EventWriter:
    """TensorBoard scalars, one point per epoch, under `<workdir>/tb`.

    Args:
      workdir: the run folder.
      enabled: False makes every call a no-op (config.tensorboard).
      start_epoch: the epoch a resumed run starts after; TensorBoard drops
        points of later epochs written before the kill (`purge_step`), so each
        epoch shows once.
    """

    def __init__(self, workdir: str, enabled: bool = True, start_epoch: int = 0):
        self._writer = None
        if enabled:
            from tensorboardX import SummaryWriter  # imported here: only runs that log pay for it
            self._writer = SummaryWriter(os.path.join(workdir, 'tb'),
                                         purge_step=start_epoch + 1 if start_epoch else None,
                                         flush_secs=30)

    def write(self, record: dict) -> None:
        if self._writer is None:
            return
        epoch = int(record['epoch'])
        for tag, value in scalars({k: v for k, v in record.items() if k != 'epoch'}).items():
            if math.isfinite(value):  # NaN (an epoch of skipped steps): a gap, not a warning
                self._writer.add_scalar(tag, value, epoch)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Progress:
    """One line per epoch on stderr: epoch, loss, accuracy, time per epoch, ETA.

    Args:
      total_epochs: epochs of the whole run.
      mode: 'on', 'off' or 'auto' (on only when stderr is a terminal, so logs
        and test output stay quiet).
      start_epoch: epochs already done (a resumed run).
      stream: where to write (stderr).
    """

    def __init__(self, total_epochs: int, mode: str = 'auto', start_epoch: int = 0,
                 stream=None):
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, 'isatty', lambda: False)()
        self.enabled = mode == 'on' or (mode == 'auto' and isatty)
        self.total = total_epochs
        self.start = start_epoch
        self.t0 = time.perf_counter()

    def line(self, record: dict) -> str:
        """The progress line for a metrics record (also used by tests)."""
        epoch = int(record['epoch'])
        done = epoch - self.start
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(done, 1) * (self.total - epoch)
        loss = _mean(record.get('train_loss'))
        acc = _mean(record.get('test_accuracy'))
        return (f'epoch {epoch}/{self.total}  loss {loss:.4f}  test acc {acc:.4f}  '
                f'{record.get("epoch_seconds", 0.0):.1f} s/epoch  ETA {_clock(eta)}')

    def update(self, record: dict) -> None:
        if self.enabled:
            print(self.line(record), file=self.stream, flush=True)


def _mean(v):
    """The members' mean, over those with a number (a member whose every step of the
    epoch was skipped reports NaN); NaN if none has."""
    if isinstance(v, (list, tuple)):
        v = [x for x in v if x is not None and math.isfinite(x)]
        return sum(v) / len(v) if v else float('nan')
    return float('nan') if v is None else float(v)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}'
