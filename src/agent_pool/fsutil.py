"""Crash-safe file writes.

Readers must never see a half-written file: data goes to a dotfile in the same folder
(readers skip dotfiles), is fsynced, and only then appears under its real name in one
step. The folder is fsynced afterwards so the new name itself survives a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o644
# O_NOFOLLOW: a planted symlink at the temp name cannot redirect the write; O_EXCL
# already refuses any existing name, this makes the intent explicit.
_TEMP_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)


def write_file_atomic(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Write `path` atomically, replacing any file already there."""
    temp = _write_temp(path, data, mode)
    try:
        temp.replace(path)
    except BaseException:
        _unlink_quietly(temp)
        raise
    fsync_dir(path.parent)


def write_file_atomic_exclusive(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Write `path` atomically, never touching an existing file.

    Raises `FileExistsError` if `path` exists (even as a dangling symlink). A hard link
    publishes the finished temp file under its final name only if that name is free,
    which `os.replace` cannot do.
    """
    temp = _write_temp(path, data, mode)
    try:
        os.link(temp, path)
    finally:
        _unlink_quietly(temp)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a folder; the write itself already succeeded.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    temp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(4)}")
    fd = os.open(temp, _TEMP_FLAGS, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp)
        raise
    os.close(fd)
    return temp


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
