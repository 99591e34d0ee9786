"""The one module that touches a workdir's file system: paths are `etils.epath.Path`s.

A workdir is a local folder or any location epath (and so orbax) accepts, such as
`gs://bucket/runs/bp`. Everything a run writes goes through epath; what only a local
(POSIX) file system offers is used only there, and only here:

* the lock that keeps a second run off a workdir (`lock`: an `flock` on the folder;
  object stores have no locks, so a run there is not guarded);
* `fsync` after an append or a replacing write (an object store's write is durable when
  it returns, and a replacing write is one object);
* the name-length limit and the append probe of `probe_writable`, and the dangling-link
  check of `broken_link`.

Other modules call `epath` methods (`exists`, `is_dir`, `read_text`, `/`) and these
functions; `tests/train/test_fs.py` checks that no `os.path`, `fcntl` or `open` on a
workdir path is left elsewhere.
"""
from __future__ import annotations

import fcntl
import os
import uuid

from etils import epath

__all__ = ['append_line', 'broken_link', 'is_local', 'lock', 'name_max', 'path',
           'probe_append', 'probe_writable', 'write_atomic']


def is_local(p) -> bool:
    """Whether `p` is a path of the local file system (not a `scheme://` URL)."""
    return '://' not in os.fspath(p)


def path(p) -> epath.Path:
    """`p` as an epath.Path; a local path made absolute (as `os.path.abspath`, links kept)."""
    text = os.fspath(p)
    return epath.Path(os.path.abspath(os.path.expanduser(text)) if is_local(text) else text)


def broken_link(p: epath.Path) -> str | None:
    """The target of `p` if it is a local symbolic link to nothing, else None."""
    if is_local(p) and os.path.islink(p) and not os.path.exists(p):
        return os.readlink(p)
    return None


def name_max(folder: epath.Path) -> int:
    """The longest file name the file system of `folder` takes (255 where unknown)."""
    if is_local(folder):
        try:
            return os.pathconf(os.fspath(folder), 'PC_NAME_MAX')
        except (OSError, ValueError):
            pass
    return 255


def probe_writable(folder: epath.Path) -> None:
    """Creates and removes a file in `folder` (OSError if it cannot). `os.access` says yes
    to root even on read-only mounts, so this really writes."""
    probe = folder / f'.neurokit-probe-{uuid.uuid4().hex}'
    probe.write_text('')
    probe.unlink()


def probe_append(file: epath.Path) -> None:
    """Opens an existing local file for appending, which changes nothing in it (OSError if
    it cannot be written); a no-op elsewhere, where files are replaced, not appended to."""
    if is_local(file):
        with open(file, 'a'):
            pass


def append_line(file: epath.Path, line: str) -> None:
    """Appends `line` (which ends in a newline) and makes it durable: an append and an
    fsync locally; elsewhere (no appends in object stores) the file is rewritten whole."""
    if is_local(file):
        with open(file, 'a') as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return
    old = file.read_text() if file.exists() else ''
    file.write_text(old + line)


def write_atomic(file: epath.Path, text: str) -> None:
    """Replaces `file` by `text` so that a reader never sees half of it: a temporary file,
    fsync and rename locally; one object write elsewhere."""
    if not is_local(file):
        file.write_text(text)
        return
    tmp = f'{os.fspath(file)}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, file)


class _Held:
    """A held lock: `release()` drops it (closing the descriptor drops an flock)."""

    def __init__(self, fd=None):
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock(folder: epath.Path):
    """An exclusive lock on the existing `folder` (an `flock` on the folder itself, so no
    file is added; the kernel drops it when the process dies), or None if another process
    holds it. Where the file system has no locks (object stores) the returned handle holds
    nothing."""
    if not is_local(folder):
        return _Held()
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return _Held(fd)
