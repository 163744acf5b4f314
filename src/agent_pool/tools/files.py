"""What every tool needs: argument checks, locked atomic writes, dated entry files.

Knowledge files can be written by several sessions at once (a shared expert serves
several pools), so every read-modify-write holds an exclusive `flock` on a lock file
next to the file it writes (`.state.md.lock`: a dotfile, which readers skip). The lock
file is never replaced, unlike the data file, which is written atomically so readers
never need the lock. Nothing is written before every argument has been checked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

from agent_pool.errors import InvalidNameError
from agent_pool.fsutil import write_file_atomic
from agent_pool.names import check_message_id, check_name
from agent_pool.tools.context import ToolContext, ToolError

KIB: Final = 1024
_LOCK_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# An entry line: `- 2026-11-24 10:15 UTC...`; anything else continues the entry above.
_ENTRY_START: Final = re.compile(r"- \d{4}-\d\d-\d\d \d\d:\d\d UTC")


def text_arg(value: object, name: str, *, max_bytes: int, allow_blank: bool = False) -> str:
    """`value` if it is text of at most `max_bytes` UTF-8 bytes, else a ToolError."""
    if not isinstance(value, str):
        raise ToolError(f"{name} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ToolError(f"{name} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"{name} is not valid text (a lone surrogate at character {exc.start})"
        ) from None
    if not allow_blank and not value.strip():
        raise ToolError(f"{name} is empty")
    if size > max_bytes:
        raise ToolError(f"{name} is {size} bytes; the limit is {max_bytes} bytes")
    return value


def name_arg(value: object, name: str) -> str:
    try:
        return check_name(value, name)  # type: ignore[arg-type]  # non-str is reported
    except InvalidNameError as exc:
        raise ToolError(exc.message) from None


def message_id_arg(value: object, name: str) -> str:
    try:
        return check_message_id(value, name)  # type: ignore[arg-type]  # non-str is reported
    except InvalidNameError as exc:
        raise ToolError(exc.message) from None


def utc_minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for writing `path`, across processes (released on close)."""
    fd = os.open(path.with_name(f".{path.name}.lock"), _LOCK_FLAGS, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_text(path: Path, *, limit: int) -> str:
    """The file's text (empty when missing), at most `limit` bytes of it, cut visibly."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
            rest = os.fstat(handle.fileno()).st_size - limit
    except FileNotFoundError:
        return ""
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace")
    return data[:limit].decode("utf-8", errors="ignore") + f"\n[... {rest} more bytes not shown]\n"


def write_text_locked(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        write_file_atomic(path, text.encode("utf-8"))


def write_marker(ctx: ToolContext, name: str, text: str) -> None:
    """Leave `name` in the session folder for the daemon and the hooks (if there is one)."""
    if ctx.session_dir is not None:
        write_file_atomic(ctx.session_dir / name, text.encode("utf-8"))


def format_entry(moment: datetime, text: str, prefix: str = "") -> str:
    """`- 2026-11-24 10:15 UTC<prefix>: text`, continuation lines indented under it."""
    lines = text.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "\n".join([lines[0], *(f"  {line}" if line.strip() else "" for line in lines[1:])])
    return f"- {utc_minute(moment)}{prefix}: {body}\n"


def split_entries(text: str) -> tuple[str, list[str]]:
    """The text before the first entry (a heading), and the entries, oldest first."""
    head: list[str] = []
    entries: list[str] = []
    for line in text.splitlines(keepends=True):
        if _ENTRY_START.match(line):
            entries.append(line)
        elif entries:
            entries[-1] += line
        else:
            head.append(line)
    return "".join(head), entries


def append_entry(path: Path, entry: str, *, cap: int, heading: str = "") -> tuple[list[str], int]:
    """Append `entry` to the file under its lock, dropping the oldest entries over `cap`.

    Returns every entry now in the file (oldest first) and how many were dropped.
    The newest entry is always kept, whatever its size.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        try:
            current = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            current = heading
        head, entries = split_entries(current)
        if entries and not entries[-1].endswith("\n"):
            entries[-1] += "\n"
        elif not entries and head and not head.endswith("\n"):
            head += "\n"
        entries.append(entry)
        size = len(head.encode("utf-8")) + sum(len(item.encode("utf-8")) for item in entries)
        dropped = 0
        while size > cap and len(entries) > 1:
            size -= len(entries.pop(0).encode("utf-8"))
            dropped += 1
        write_file_atomic(path, (head + "".join(entries)).encode("utf-8"))
    return entries, dropped
