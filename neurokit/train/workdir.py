"""Workdir checks and writes that never clobber earlier results."""
from __future__ import annotations

import json
import os

from neurokit.errors import WorkdirError

METRICS, SUMMARY = 'metrics.jsonl', 'summary.json'


def check(workdir: str) -> None:
    """Fails (without creating anything) if `workdir` cannot take a new run.

    Raises:
      WorkdirError: not writable, not a directory, or it already holds a run.
    """
    path = os.path.abspath(workdir)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise WorkdirError(f'workdir {path} is a file, not a directory; pass another --workdir')
        for name in (METRICS, SUMMARY):
            if os.path.exists(os.path.join(path, name)):
                raise WorkdirError(f'workdir {path} already holds a run ({name}); '
                                   'pass a new --workdir or remove the old one')
        probe = path
    else:
        probe = os.path.dirname(path)
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise WorkdirError(f'workdir {path} is not writable (no write permission on {probe}); '
                           'pass a writable --workdir')


def append_jsonl(path: str, record: dict) -> None:
    """Appends one JSON line and flushes it to disk."""
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str, record: dict) -> None:
    """Writes JSON atomically (temp file + rename), so a reader never sees half a file."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    os.replace(tmp, path)
