"""The run folder: what a workdir may hold, resuming, and writes that never clobber results.

A workdir holds one run:
  config.json     the run's config, written once when the run starts
  metrics.jsonl   one line per finished epoch
  checkpoints/    orbax checkpoints (`neurokit.train.checkpoint`)
  tb/             TensorBoard event files
  summary.json    written last, when every epoch is done

Re-running the same command on the same workdir resumes it: the config must
match the stored one on every key that changes the numbers (keys in
`neurokit.config.RESUMABLE_KEYS` may differ). A finished run (summary.json
present) is left untouched: `run` returns its summary and the CLI says so and
exits 0.
"""
from __future__ import annotations

import json
import os
import uuid

from neurokit.config import RESUMABLE_KEYS
from neurokit.errors import WorkdirError
from neurokit.train.checkpoint import CHECKPOINTS

METRICS, SUMMARY, CONFIG, TENSORBOARD = 'metrics.jsonl', 'summary.json', 'config.json', 'tb'
NEW, RESUME, FINISHED = 'new', 'resume', 'finished'


def config_json(config) -> dict:
    """The config as plain JSON types (tuples become lists), as stored in config.json."""
    return json.loads(json.dumps(config.to_dict()))


def check(workdir: str, config=None) -> str:
    """Decides what `workdir` can take, changing nothing in it.

    Args:
      workdir: the run folder (need not exist).
      config: the config about to run; compared with a stored config.json.

    Returns:
      NEW (nothing there yet), RESUME (a run with the same config, not
      finished) or FINISHED (that run's summary.json exists).

    Raises:
      WorkdirError: not writable, not a directory, holds files of a run without
        config.json, or holds a run whose config differs (the message names
        the differing keys).
    """
    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise WorkdirError(f'workdir {path} is a file, not a directory; pass another --workdir')
    _check_writable(path)
    if not os.path.isdir(path):
        return NEW
    stored_path = os.path.join(path, CONFIG)
    if not os.path.exists(stored_path):
        for name in (METRICS, SUMMARY, CHECKPOINTS):
            if os.path.exists(os.path.join(path, name)):
                raise WorkdirError(f'workdir {path} holds {name} but no {CONFIG}, so it cannot be '
                                   'resumed; pass a new --workdir or remove the old one')
        return NEW
    try:
        with open(stored_path) as f:
            stored = json.load(f)
    except (OSError, ValueError) as e:
        raise WorkdirError(f'cannot read {stored_path} ({e}); pass a new --workdir') from None
    if config is not None:
        diff = config_diff(stored, config_json(config))
        if diff:
            shown = '; '.join(f'{k}: {a!r} in the workdir, {b!r} now' for k, a, b in diff[:6])
            more = f' (and {len(diff) - 6} more)' if len(diff) > 6 else ''
            raise WorkdirError(
                f'workdir {path} holds a run with a different config on '
                f'{", ".join(k for k, _, _ in diff)} ({shown}{more}); resume it with the same '
                'config or pass a new --workdir')
    return FINISHED if os.path.exists(os.path.join(path, SUMMARY)) else RESUME


def _check_writable(path: str) -> None:
    """Probes the folder (or its nearest existing parent) by creating and removing a file.

    `os.access` says yes to root even on read-only mounts, so this really writes.
    """
    probe = path
    while probe and not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        if os.path.exists(probe):  # an ancestor that is a file
            raise WorkdirError(f'workdir {path} cannot be created: {probe} is a file; '
                               'pass another --workdir')
        probe = parent
    name = os.path.join(probe, f'.neurokit-probe-{uuid.uuid4().hex}')
    try:
        with open(name, 'w'):
            pass
        os.remove(name)
    except OSError as e:
        raise WorkdirError(f'workdir {path} is not writable ({e.strerror} in {probe}); '
                           'pass a writable --workdir') from None


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

    Keys in `RESUMABLE_KEYS` are ignored; a key missing on one side counts as
    a difference.
    """
    a, b = _flatten(stored), _flatten(current)
    missing = object()
    diff = []
    for key in sorted(set(a) | set(b)):
        if key in RESUMABLE_KEYS:
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            diff.append((key, None if va is missing else va, None if vb is missing else vb))
    return diff


def read_jsonl(path: str) -> list:
    """The complete JSON lines of `path` ([] if absent); a torn last line is skipped."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            if not line.endswith('\n'):
                break  # torn by a kill mid-write
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


def truncate_metrics(path: str, epoch: int) -> list:
    """Keeps only the metrics lines of epochs <= `epoch` (the checkpointed one).

    Lines of epochs after the checkpoint were written before a kill; the resumed
    run writes them again, so each epoch appears exactly once.

    Returns:
      The records kept.
    """
    if not os.path.exists(path):
        return []
    records = read_jsonl(path)
    kept = [r for r in records if isinstance(r, dict) and r.get('epoch', 0) <= epoch]
    with open(path, 'rb') as f:
        raw = f.read()
    text = ''.join(json.dumps(r) + '\n' for r in kept)
    if text.encode() != raw:
        _atomic_write(path, text)
    return kept


def append_jsonl(path: str, record: dict) -> None:
    """Appends one JSON line and flushes it to disk."""
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str, record: dict) -> None:
    """Writes JSON atomically (temp file + rename), so a reader never sees half a file."""
    _atomic_write(path, json.dumps(record, indent=2) + '\n')


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _atomic_write(path: str, text: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
