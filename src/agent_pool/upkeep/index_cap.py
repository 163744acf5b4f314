"""Capping an agent's run index (`logs/index.md`) to its newest rows.

Rows are appended at the end (`session/index.py`), so the oldest come first. The
capped index is written to a dotfile, fsynced and renamed over the old one: a reader
sees the old file or the new one, never a part. Rows appended to the old file while
it was being copied are carried over after the rename.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Final

from agent_pool.fsutil import fsync_dir
from agent_pool.session.index import HEADER, INDEX_NAME

INDEX_TEMP_PREFIX: Final = f".tmp-{INDEX_NAME}-"
_HEADER_LINES: Final = frozenset(HEADER.encode("utf-8").splitlines())
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_TEMP_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)
_APPEND_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def cap_index(logs_dir: Path, max_rows: int) -> int:
    """Keep only the newest `max_rows` rows of `logs_dir/index.md`; the rows dropped.

    What comes before the first row (the table header) is kept. The file is rewritten
    only when it has more rows than that. A missing index, or one that is a symlink or
    no regular file, is left alone (0).
    """
    if max_rows < 0:
        raise ValueError("max_rows must not be negative")
    path = logs_dir / INDEX_NAME
    try:
        index = os.fdopen(os.open(path, _READ_FLAGS), "rb")
    except (FileNotFoundError, NotADirectoryError):
        return 0
    except OSError as exc:
        if stat.S_ISLNK(_lstat_mode(path)):
            return 0  # never follow a symlink out of the folder
        raise exc from None
    with index:
        info = os.fstat(index.fileno())
        if not stat.S_ISREG(info.st_mode):
            return 0
        drop = sum(1 for line in index if _is_row(line)) - max_rows
        if drop <= 0:
            return 0
        index.seek(0)
        _rewrite(index, path, drop, stat.S_IMODE(info.st_mode))
    return drop


def _rewrite(index: BinaryIO, path: Path, drop: int, mode: int) -> None:
    temp = path.with_name(f"{INDEX_TEMP_PREFIX}{secrets.token_hex(4)}")
    fd = os.open(temp, _TEMP_FLAGS, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as out:
            dropped = 0
            for line in index:
                if dropped < drop:
                    if _is_row(line):
                        dropped += 1
                    elif dropped == 0:
                        out.write(line)  # the header, and anything else before the rows
                    continue  # other lines among the dropped rows go with them
                out.write(line)
        os.fsync(fd)
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    # `index` still reads the old file: rows appended to it since the copy ended.
    late = index.read()
    if late:
        append = os.open(path, _APPEND_FLAGS)
        try:
            view = memoryview(late)
            while view:
                view = view[os.write(append, view) :]
        finally:
            os.close(append)


def _is_row(line: bytes) -> bool:
    return line.startswith(b"| ") and line.rstrip(b"\r\n") not in _HEADER_LINES


def _lstat_mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except OSError:
        return 0
