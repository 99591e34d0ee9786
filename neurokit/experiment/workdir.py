"""The run folder: what a workdir may hold, resuming, and writes that never clobber results.

A workdir holds one run:
  config.json     the run's config, written once when the run starts
  metrics.jsonl   one line per finished epoch
  checkpoints/    orbax checkpoints (`neurokit.experiment.checkpoint`)
  tb/             TensorBoard event files
  summary.json    written last, when every epoch is done

While a run writes into it, the workdir folder itself is locked (`Lock`): a
second run on it is refused.

Re-running the same command on the same workdir resumes it: the config must
match the stored one on every key that changes the numbers (keys in
`neurokit.experiment.config.RESUMABLE_KEYS` may differ). A finished run (summary.json
present) is left untouched: `run` returns its summary and the CLI says so and
exits 0.
"""
from __future__ import annotations

import json

from etils import epath

from neurokit.experiment import fs
from neurokit.experiment.config import RESUMABLE_KEYS, fill_defaults, parse_sweep
from neurokit.experiment.errors import ConfigError, WorkdirError
from neurokit.experiment.checkpoint import CHECKPOINTS, has_checkpoints

METRICS, SUMMARY, CONFIG, TENSORBOARD = 'metrics.jsonl', 'summary.json', 'config.json', 'tb'
NEW, RESUME, FINISHED = 'new', 'resume', 'finished'
# what a finished run's summary.json must hold (the CLI prints these)
SUMMARY_KEYS = ('rule', 'dataset', 'epochs', 'test_accuracy', 'train_seconds',
                'samples_per_second', 'devices')


def config_json(config) -> dict:
    """The config as plain JSON types (tuples become lists), as stored in config.json."""
    return json.loads(json.dumps(config.to_dict()))


def check(workdir, config=None) -> str:
    """Decides what `workdir` can take, changing nothing in it.

    Args:
      workdir: the run folder (need not exist).
      config: the config about to run; compared with a stored config.json.

    Returns:
      NEW (nothing there yet), RESUME (a run with the same config, not
      finished) or FINISHED (that run's summary.json exists).

    Raises:
      WorkdirError: empty, not writable, not a directory, holds files of a run
        without config.json, holds a run whose config differs (the message names
        the differing keys), or holds files that cannot be read back
        (config.json, metrics.jsonl, a finished run's summary.json).
    """
    if not workdir or not str(workdir).strip():
        raise WorkdirError('the workdir is empty; pass --workdir=DIR')
    path = fs.path(workdir)
    target = fs.broken_link(path)
    if target is not None:
        raise WorkdirError(f'workdir {path} is a link to {target}, which does not '
                           'exist; pass another --workdir or create the link\'s target')
    if path.exists() and not path.is_dir():
        raise WorkdirError(f'workdir {path} is a file, not a directory; pass another --workdir')
    _check_writable(path)
    if not path.is_dir():
        return NEW
    for name, is_dir in ((CHECKPOINTS, True), (TENSORBOARD, True), (METRICS, False),
                         (SUMMARY, False), (CONFIG, False)):
        item = path / name
        if item.exists() and item.is_dir() != is_dir:
            raise WorkdirError(f'{item} should be a {"folder" if is_dir else "file"} but is not; '
                               'move it away or pass a new --workdir')
    stored_path = path / CONFIG
    if not stored_path.exists():
        for name in (METRICS, SUMMARY, CHECKPOINTS):
            if (path / name).exists():
                raise WorkdirError(f'workdir {path} holds {name} but no {CONFIG}, so it cannot be '
                                   'resumed; pass a new --workdir or remove the old one')
        return NEW
    try:
        stored = json.loads(stored_path.read_text())
    except (OSError, ValueError) as e:
        raise WorkdirError(f'cannot read {stored_path} ({e}); pass a new --workdir') from None
    if not isinstance(stored, dict):
        raise WorkdirError(f'{stored_path} does not hold a config (a JSON object); put the run\'s '
                           'config.json back or pass a new --workdir')
    if config is not None:
        diff = config_diff(stored, config_json(config))
        if diff and not _has_progress(path):
            # A run that stopped before its first checkpoint and metrics line (a failed
            # first epoch, a kill while compiling) left nothing to lose: start anew.
            return NEW
        if diff:
            shown = '; '.join(f'{k}: {a!r} in the workdir, {b!r} now' for k, a, b in diff[:6])
            more = f' (and {len(diff) - 6} more)' if len(diff) > 6 else ''
            raise WorkdirError(
                f'workdir {path} holds a run with a different config on '
                f'{", ".join(k for k, _, _ in diff)} ({shown}{more}); resume it with the same '
                'config or pass a new --workdir')
    summary_path = path / SUMMARY
    if summary_path.exists():
        read_summary(summary_path)
        return FINISHED
    read_jsonl(path / METRICS)  # a damaged metrics file stops the run here
    return RESUME


def _has_progress(path: epath.Path) -> bool:
    """Whether the run in `path` recorded anything: a checkpoint or a metrics line."""
    if (path / SUMMARY).exists() or has_checkpoints(path):
        return True
    metrics = path / METRICS
    return metrics.exists() and bool(metrics.read_bytes())


class Lock:
    """An exclusive lock on a workdir, from a run's first write to its end.

    Two runs started on one workdir would otherwise both write it (and orbax
    fails with a long traceback in the second). `acquire` is called where the
    run is about to write, after its slow startup, so it re-checks the workdir:
    another run may have changed it meanwhile. The lock is an `flock` on the
    folder itself, so no file is added to the workdir; the kernel drops it when
    the run ends or its process dies. Only process 0 of a multi-process run
    takes it, and only where the file system has locks (`fs.lock`: not object stores).

    Example:
      with Lock() as lock:
        ...                     # validate, load, compile
        lock.acquire(workdir, status, config)
        ...                     # write
    """

    def __init__(self):
        self._held = None

    def acquire(self, workdir, status: str, config=None) -> None:
        """Takes the lock on the (existing) `workdir`.

        Raises:
          WorkdirError: another run holds it, or the workdir no longer is what
            `check` said (`status`) when this run started.
        """
        path = fs.path(workdir)
        held = fs.lock(path)
        if held is None:
            raise WorkdirError(f'workdir {path} is in use by another run; wait for it to end or '
                               'pass another --workdir')
        self._held = held
        if check(workdir, config) != status:
            raise WorkdirError(f'workdir {path} changed while this run was starting (another '
                               'run wrote it); run the same command again')

    def release(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def start_writing(workdir, status: str, config, lock) -> None:
    """What a run does before its first write: create the workdir, take `lock` (a
    `Lock`; None in the processes of a multi-process run that do not write files),
    and, for a NEW run, write config.json."""
    fs.path(workdir).mkdir(parents=True, exist_ok=True)
    if lock is None:
        return
    lock.acquire(workdir, status, config)
    if status == NEW:
        write_json(fs.path(workdir) / CONFIG, config_json(config))


def read_summary(path) -> dict:
    """A finished run's summary.json; WorkdirError if it is damaged."""
    fix = (f'delete {path} to finish the run again from its last checkpoint, or pass a new '
           '--workdir')
    try:
        summary = read_json(path)
    except (OSError, ValueError) as e:
        raise WorkdirError(f'cannot read {path} ({" ".join(str(e).split())}); {fix}') from None
    missing = [k for k in SUMMARY_KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise WorkdirError(f'{path} lacks {", ".join(missing)}; {fix}')
    return summary


def _check_writable(path: epath.Path) -> None:
    """Probes the folder (or its nearest existing parent) by creating and removing a file,
    and likewise its checkpoints folder and the files a run appends to or replaces.

    An existing file is opened for appending (`fs.probe_append`), which changes nothing
    in it. A folder still to be created must have a name the file system takes.
    """
    probe, missing = path, []
    while not probe.is_dir():
        parent = probe.parent
        if parent == probe:
            break
        if probe.exists():  # an ancestor that is a file
            raise WorkdirError(f'workdir {path} cannot be created: {probe} is a file; '
                               'pass another --workdir')
        missing.append(probe.name)
        probe = parent
    name_max = fs.name_max(probe)
    too_long = [m for m in missing if len(m.encode()) > name_max]
    if too_long:
        raise WorkdirError(f'workdir {path} cannot be created: the folder name {too_long[0][:40]}... '
                           f'is {len(too_long[0].encode())} bytes, over the file system\'s limit '
                           f'of {name_max}; pass a shorter --workdir')
    _probe_folder(path, probe)
    if probe == path:
        for name in (CHECKPOINTS, TENSORBOARD):
            folder = path / name
            if folder.is_dir():
                _probe_folder(path, folder)
        for name in (METRICS, CONFIG):
            item = path / name
            if item.is_file():
                try:
                    fs.probe_append(item)
                except OSError as e:
                    raise WorkdirError(f'workdir {path} is not writable ({e.strerror}: {item}); '
                                       'make it writable or pass a new --workdir') from None


def _probe_folder(path: epath.Path, folder: epath.Path) -> None:
    try:
        fs.probe_writable(folder)
    except OSError as e:
        raise WorkdirError(f'workdir {path} is not writable ({e.strerror} in {folder}); '
                           'make it writable or pass a writable --workdir') from None


def _flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (k == 'rule_kwargs' and not v):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def config_diff(stored: dict, current: dict) -> list:
    """`[(key, stored value, current value)]` for keys that change the run.

    Keys in `RESUMABLE_KEYS` are ignored. Both sides are compared with the keys they lack
    filled in (`config.fill_defaults`): a config.json written before a key was added, or
    one that left a rule hyperparameter at its constructor's default, is the same run as
    a config that spells the value out; any other key missing on one side counts.
    """
    a, b = _flatten(fill_defaults(stored)), _flatten(fill_defaults(current))
    missing = object()
    diff = []
    for key in sorted(set(a) | set(b)):
        if key in RESUMABLE_KEYS:
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb and not (key == 'sweep' and _same_sweep(va, vb)):
            diff.append((key, None if va is missing else va, None if vb is missing else vb))
    return diff


def _same_sweep(a, b) -> bool:
    """Whether two sweep specs give the same members in the same order (`1e-3,3e-3` is
    `0.001, 0.003`); the order matters, as it is the order of the checkpoint's members."""
    try:
        return (isinstance(a, str) and isinstance(b, str)
                and list(parse_sweep(a).items()) == list(parse_sweep(b).items()))
    except ConfigError:
        return False


def read_jsonl(path) -> list:
    """The epoch records of a metrics file ([] if absent); a torn last line is skipped.

    A kill during `append_jsonl` can leave the last line without its newline;
    any other line must be a JSON object with an integer `epoch`.

    Raises:
      WorkdirError: a complete line is not such a record (names the line).
    """
    path = epath.Path(path)
    if not path.exists():
        return []
    records = []
    try:
        lines = path.read_text().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as e:
        raise WorkdirError(f'cannot read {path} ({e}); repair or replace the file') from None
    for i, line in enumerate(lines, 1):
        if not line.endswith('\n'):
            break  # torn by a kill mid-write (only ever the last line)
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and type(record.get('epoch')) is int):
            raise WorkdirError(f'{path} line {i} is not an epoch record (a JSON object with an '
                               'integer "epoch"); repair or remove that line')
        records.append(record)
    return records


def truncate_metrics(path, epoch: int, required=()) -> list:
    """Keeps only the metrics lines of epochs <= `epoch` (the checkpointed one).

    Lines of epochs after the checkpoint were written before a kill; the resumed
    run writes them again, so each epoch appears exactly once.

    Returns:
      The records kept.

    Raises:
      WorkdirError: the file does not hold exactly one line for each epoch up to
        `epoch` (cut short or edited), or a kept line lacks a key in `required`:
        resuming would lose them for good, so nothing is changed.
    """
    path = epath.Path(path)
    if not path.exists():
        if epoch:
            raise WorkdirError(f'{path} is missing but the checkpoint to resume from is epoch '
                               f'{epoch}; put the file back, or pass a new --workdir')
        return []
    records = read_jsonl(path)
    kept = [r for r in records if r['epoch'] <= epoch]
    found = [r['epoch'] for r in kept]
    if found != list(range(1, epoch + 1)):
        missing = sorted(set(range(1, epoch + 1)) - set(found))
        what = (f'lacks epoch(s) {_spans(missing)}' if missing
                else f'holds epochs {_spans(found)} out of order or twice')
        raise WorkdirError(f'{path} {what} up to the checkpoint of epoch {epoch} (cut short or '
                           'edited?); resuming would lose them, so nothing was changed: put the '
                           'file back, or pass a new --workdir')
    for r in kept:
        lacking = [k for k in required if k not in r]
        if lacking:
            raise WorkdirError(f'{path}: the line of epoch {r["epoch"]} lacks {", ".join(lacking)} '
                               '(edited?); resuming needs it, so nothing was changed: put the '
                               'file back, or pass a new --workdir')
    text = ''.join(json.dumps(r) + '\n' for r in kept)
    if text.encode() != path.read_bytes():
        fs.write_atomic(path, text)
    return kept


def _spans(epochs) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    out, start = [], None
    for i, e in enumerate(epochs):
        if start is None:
            start = e
        if i + 1 == len(epochs) or epochs[i + 1] != e + 1:
            out.append(f'{start}' if start == e else f'{start}-{e}')
            start = None
    return ', '.join(out)


def append_jsonl(path, record: dict) -> None:
    """Appends one JSON line and makes it durable (`fs.append_line`)."""
    fs.append_line(epath.Path(path), json.dumps(record) + '\n')


def write_json(path, record: dict) -> None:
    """Writes JSON atomically (`fs.write_atomic`), so a reader never sees half a file."""
    fs.write_atomic(epath.Path(path), json.dumps(record, indent=2) + '\n')


def read_json(path) -> dict:
    return json.loads(epath.Path(path).read_text())
