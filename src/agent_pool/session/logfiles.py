"""Where a task's session logs live in an agent's `logs/` folder, and how to open them.

The supervisor writes `<task>.jsonl` (the latest attempt), moves earlier attempts
aside to `<task>.attempt-N.jsonl`, and sends the CLI's stderr to `<task>.stderr.log`.
Log upkeep later compresses old ones to `archive/<same name>.gz`. Readers
(`agent-pool logs`, `recall`) and upkeep share these names through this module.

Symlinks are never followed: a log is a regular file in its folder, nothing else.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

from agent_pool.names import is_valid_message_id

LOG_SUFFIX: Final = ".jsonl"
STDERR_SUFFIX: Final = ".stderr.log"
ATTEMPT_INFIX: Final = ".attempt-"
ARCHIVE_DIR: Final = "archive"
ARCHIVE_SUFFIX: Final = ".gz"
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

LogKind = Literal["log", "stderr"]


@dataclass(frozen=True, slots=True)
class SessionLogName:
    """A parsed session log file name (without any `.gz`)."""

    task_id: str
    attempt: int | None  # None: the latest attempt's log (or the stderr log)
    kind: LogKind

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Every task this file may belong to.

        Ids may hold dots, so `a.attempt-2.jsonl` is attempt 2 of `a` by the
        supervisor's convention, but also the latest log of a task named `a.attempt-2`.
        """
        if self.attempt is None:
            return (self.task_id,)
        return (self.task_id, f"{self.task_id}{ATTEMPT_INFIX}{self.attempt}")

    @property
    def suffix(self) -> str:
        return LOG_SUFFIX if self.kind == "log" else STDERR_SUFFIX


@dataclass(frozen=True, slots=True)
class TaskLog:
    """One attempt's stream-json log: `number` counts from 1 over the task's history."""

    number: int
    path: Path
    archived: bool


def parse_session_log_name(name: str) -> SessionLogName | None:
    """The task and attempt a file name in `logs/` stands for; None if it is no session log."""
    if name.endswith(STDERR_SUFFIX):
        stem = name.removesuffix(STDERR_SUFFIX)
        return SessionLogName(stem, None, "stderr") if is_valid_message_id(stem) else None
    if not name.endswith(LOG_SUFFIX):
        return None
    stem = name.removesuffix(LOG_SUFFIX)
    if not is_valid_message_id(stem):
        return None
    task_id, infix, number = stem.rpartition(ATTEMPT_INFIX)
    if infix and number.isdigit() and is_valid_message_id(task_id):
        return SessionLogName(task_id, int(number), "log")
    return SessionLogName(stem, None, "log")


def archive_name(name: str) -> str:
    return name + ARCHIVE_SUFFIX


def task_logs(logs_dir: Path, task_id: str) -> list[TaskLog]:
    """Every attempt's log of `task_id` in `logs_dir`, oldest first; archives come first.

    Live logs are ordered by name (attempts by number, `<task>.jsonl` last). Archived
    ones are ordered by their modification time, which archiving keeps: a task retried
    after its logs were archived starts its attempt numbers again, so in the archive
    only the time tells which run came first. `task_id` must be a validated message id.
    """
    archived = _logs_in(logs_dir / ARCHIVE_DIR, task_id, ARCHIVE_SUFFIX)
    archived.sort(key=lambda found: (found.mtime_ns, found.order))
    live = _logs_in(logs_dir, task_id, "")
    live.sort(key=lambda found: found.order)
    logs = [(found.path, True) for found in archived] + [(found.path, False) for found in live]
    return [TaskLog(number, path, flag) for number, (path, flag) in enumerate(logs, start=1)]


def stderr_log(logs_dir: Path, task_id: str) -> Path | None:
    """The task's stderr log, live or else archived; None when there is neither."""
    name = f"{task_id}{STDERR_SUFFIX}"
    for path in (logs_dir / name, logs_dir / ARCHIVE_DIR / archive_name(name)):
        if _regular_stat(path) is not None:
            return path
    return None


@contextlib.contextmanager
def open_log(path: Path) -> Iterator[BinaryIO]:
    """A log's bytes, decompressed when it is an archive (`.gz`); never via a symlink.

    A live log archived since it was found is read from the archive. Raises OSError
    (ELOOP) for a symlink, FileNotFoundError when it is gone.
    """
    archived = path.name.endswith(ARCHIVE_SUFFIX)
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        if archived:
            raise
        path = path.parent / ARCHIVE_DIR / archive_name(path.name)
        fd = os.open(path, _READ_FLAGS)
        archived = True
    with os.fdopen(fd, "rb") as raw:
        if not archived:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            yield unpacked  # type: ignore[misc]  # GzipFile is a binary stream


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    order: tuple[int, int]  # attempts by number, then the latest
    mtime_ns: int


def _logs_in(folder: Path, task_id: str, extra_suffix: str) -> list[_Found]:
    prefix = f"{task_id}{ATTEMPT_INFIX}"
    suffix = f"{LOG_SUFFIX}{extra_suffix}"
    candidates: list[tuple[Path, tuple[int, int]]] = []
    # Ids are [A-Za-z0-9._-] only: nothing in them is special to glob.
    for path in folder.glob(f"{prefix}*{suffix}"):
        number = path.name[len(prefix) : -len(suffix)]
        if number.isdigit():
            candidates.append((path, (0, int(number))))
    candidates.append((folder / f"{task_id}{suffix}", (1, 0)))  # the latest comes last
    found: list[_Found] = []
    for path, order in candidates:
        info = _regular_stat(path)
        if info is not None:
            found.append(_Found(path, order, info.st_mtime_ns))
    return found


def _regular_stat(path: Path) -> os.stat_result | None:
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info if stat.S_ISREG(info.st_mode) else None


__all__ = [
    "ARCHIVE_DIR",
    "ARCHIVE_SUFFIX",
    "ATTEMPT_INFIX",
    "LOG_SUFFIX",
    "STDERR_SUFFIX",
    "SessionLogName",
    "TaskLog",
    "archive_name",
    "open_log",
    "parse_session_log_name",
    "stderr_log",
    "task_logs",
]
