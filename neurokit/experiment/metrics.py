"""Watching a run: TensorBoard event files and per-epoch progress on stderr.

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
import sys
import time

from neurokit.experiment import fs


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

    With several vmapped members (`members`), each member's values go to its own run,
    `<workdir>/tb/<member name>/` (e.g. `tb/learning_rate=0.001,seed=0/`), under the
    metric's own tag, so TensorBoard draws the members of one metric in one chart named
    by their settings; the root run keeps what all members share and each metric's
    `tag/mean` over them. With one member everything is in the root run.

    Args:
      workdir: the run folder.
      enabled: False makes every call a no-op (config.tensorboard).
      start_epoch: the epoch a resumed run starts after; TensorBoard drops
        points of later epochs written before the kill (`purge_step`), so each
        epoch shows once.
      members: the vmapped members' names (`member_names`); None for one member.
    """

    def __init__(self, workdir: str, enabled: bool = True, start_epoch: int = 0,
                 members: list | None = None):
        self._writer = None
        self._members = {}
        if enabled:
            from tensorboardX import SummaryWriter  # imported here: only runs that log pay for it
            folder = fs.path(workdir) / 'tb'
            purge = start_epoch + 1 if start_epoch else None
            self._writer = SummaryWriter(str(folder), purge_step=purge, flush_secs=30)
            self._members = {name: SummaryWriter(str(folder / name), purge_step=purge,
                                                 flush_secs=30)
                             for name in members or ()}

    def write(self, record: dict) -> None:
        if self._writer is None:
            return
        epoch = int(record['epoch'])
        shared = {k: v for k, v in record.items() if k != 'epoch'}
        names = list(self._members)
        if names:
            for key, value in list(shared.items()):
                if isinstance(value, (list, tuple)) and len(value) == len(names):
                    for name, v in zip(names, value):
                        _add(self._members[name], scalars({key: v}), epoch)
                    del shared[key]
                    if all(isinstance(v, numbers.Real) for v in value):
                        shared[f'{key}/mean'] = _mean(list(value))
        _add(self._writer, scalars(shared), epoch)
        for w in [self._writer, *self._members.values()]:
            w.flush()

    def close(self) -> None:
        for w in [self._writer, *self._members.values()]:
            if w is not None:
                w.close()
        self._writer, self._members = None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _add(writer, values: dict, epoch: int) -> None:
    for tag, value in values.items():
        if math.isfinite(value):  # NaN (an epoch of skipped steps): a gap, not a warning
            writer.add_scalar(tag, value, epoch)


def setting_names(values: list) -> list:
    """Each member's swept settings as a name, `alpha=20,learning_rate=0.001`: keys in
    sorted order, each by its last part unless two swept keys share it
    (`optimizer.weight_decay` and `rule_kwargs.weight_decay`: then the whole key).

    Args:
      values: per member, `{swept key: value}` (empty without a sweep).
    """
    keys = sorted(values[0]) if values else []
    last = [k.split('.')[-1] for k in keys]
    short = {k: name if last.count(name) == 1 else k for k, name in zip(keys, last)}
    return [','.join(f'{short[k]}={v[k]:g}' for k in keys) for v in values]


def member_names(values: list, seeds: list) -> list | None:
    """Names of a run's vmapped members for TensorBoard: the member's settings
    (`setting_names`) and its seed, `learning_rate=0.001,seed=0`; `seed=1`, ... for a run
    of seeds; None for one member.

    Args:
      values: per member, `{swept key: value}` (empty without a sweep).
      seeds: per member, its seed.
    """
    if len(seeds) < 2:
        return None
    return [','.join(([name] if name else []) + [f'seed={seed}'])
            for name, seed in zip(setting_names(values), seeds)]


class Progress:
    """Per-epoch progress on stderr: epoch, loss, accuracy, time per epoch, ETA.

    Mode 'auto' draws a bar redrawn in place when stderr is a terminal, and otherwise
    (a log file, `tee`, a pipe) prints one plain line per epoch, so a run written to a
    log is never silent; 'on' prints the plain lines everywhere; 'off' nothing.

    Args:
      total_epochs: epochs of the whole run.
      mode: 'auto', 'on' or 'off' (config.progress).
      start_epoch: epochs already done (a resumed run).
      stream: where to write (stderr).
    """

    BAR = 20  # characters of the bar
    EVERY = 30.0  # seconds between plain lines inside an epoch (calls of steps_per_call)

    def __init__(self, total_epochs: int, mode: str = 'auto', start_epoch: int = 0,
                 stream=None):
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, 'isatty', lambda: False)()
        self.enabled = mode in ('on', 'auto')
        self.in_place = mode == 'auto' and isatty
        self.total = total_epochs
        self.start = start_epoch
        self.t0 = self._last = time.perf_counter()
        self._open = False  # a bar is drawn and its line not ended yet

    def line(self, record: dict) -> str:
        """The progress line for a metrics record."""
        epoch = int(record['epoch'])
        done = epoch - self.start
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(done, 1) * (self.total - epoch)
        loss = _mean(record.get('train_loss'))
        acc = _mean(record.get('test_accuracy'))
        return (f'epoch {epoch}/{self.total}  loss {loss:.4f}  test acc {acc:.4f}  '
                f'{record.get("epoch_seconds", 0.0):.1f} s/epoch  ETA {_clock(eta)}')

    def _bar(self, epochs_done: float, text: str) -> str:
        filled = round(self.BAR * epochs_done / max(self.total, 1))
        return f'[{"#" * filled}{"." * (self.BAR - filled)}] {text}'

    def bar(self, record: dict) -> str:
        """The in-place form of `line`: a bar of the epochs done, then the line."""
        return self._bar(int(record['epoch']), self.line(record))

    def within(self, epoch: int, offset: int, steps: int, loss) -> None:
        """Shows progress inside epoch `epoch` (0-based) after `offset` of its `steps`
        steps (between calls of `steps_per_call` steps): redrawn in place on a terminal,
        else a plain line at most every `EVERY` seconds, so a long epoch shows life
        without flooding a log. `loss` is a callable, called only when a line is shown."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not self.in_place and now - self._last < self.EVERY:
            return
        self._last = now
        text = (f'epoch {epoch + 1}/{self.total}  step {offset}/{steps}  '
                f'loss {_mean(loss()):.4f}')
        if self.in_place:
            print(f'\r{self._bar(epoch + offset / steps, text)}\x1b[K', end='',
                  file=self.stream, flush=True)
            self._open = True
        else:
            print(text, file=self.stream, flush=True)

    def update(self, record: dict) -> None:
        """Shows the epoch that `record` ends."""
        if not self.enabled:
            return
        self._last = time.perf_counter()
        if self.in_place:
            # \r returns to the line's start, \x1b[K clears what a longer line left there
            print(f'\r{self.bar(record)}\x1b[K', end='', file=self.stream, flush=True)
            self._open = True
        else:
            print(self.line(record), file=self.stream, flush=True)

    def close(self) -> None:
        """Ends the bar's line, so that what is printed next starts on its own line."""
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False


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
