"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

An interrupted write leaves the previous file (or nothing), never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_path(path: str | os.PathLike) -> Path:
    """A new, empty temporary file beside ``path`` (its folder made if missing), to write and then
    :func:`put_in_place`; the caller removes it if it is not put in place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # the file the user asked for, not the temporary's name: "Read-only file system: 'out.csv'"
        if exc.errno is None:
            raise
        raise type(exc)(exc.errno, f"{exc.strerror} (writing into {path.parent})", str(path)) from None
    os.close(fd)
    return Path(tmp)


def put_in_place(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a written temporary file to ``path`` (mode 0666 & ~umask), replacing what was there."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True):
    """Yield a temporary path; on success it replaces ``path`` (mode 0666 & ~umask)."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; not overwriting it")
    tmp = temporary_path(path)
    try:
        yield tmp
        put_in_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_temporaries(path: str | os.PathLike) -> int:
    """Remove the temporary files an interrupted :func:`atomic_path` write of ``path`` left (``kill -9``).

    Call it before writing ``path`` again; returns how many were removed.
    """
    path = Path(path)
    removed = 0
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    import glob

    return glob.escape(text)
