"""Each agent's run index, `logs/index.md`: one Markdown table row per finished run.

The index is what a session searches (`search_index`) to find its own past work, and
what a person skims. Rows are appended, never rewritten: each row is one `write` on a
file opened with O_APPEND, so concurrent writers and a crash mid-run can at worst
lose a row, never interleave or tear one. Every cell is flattened to one line and `|`
is escaped, so no text can break the table.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

INDEX_NAME: Final = "index.md"
SUMMARY_MAX_CHARS: Final = 160
HEADER: Final = (
    "| finished (UTC) | task | from | type | status | attempts | turns | cost | duration "
    "| summary |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)
_FILE_MODE: Final = 0o644
# Read as well as append: the last byte tells whether a previous row was torn.
_APPEND_FLAGS: Final = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexRow:
    """One finished run. `summary` may be long or multi-line: the row shortens it."""

    finished_at: float  # seconds since the epoch
    task_id: str
    sender: str
    type: str
    status: str  # completed, failed, cancelled, ...
    attempts: int
    turns: int
    cost_usd: float
    duration_ms: int
    summary: str

    def render(self) -> str:
        """The table row, with its newline."""
        when = datetime.fromtimestamp(self.finished_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        cells = [
            when,
            self.task_id,
            self.sender,
            self.type,
            self.status,
            str(self.attempts),
            str(self.turns),
            f"${self.cost_usd:.4f}",
            format_duration(self.duration_ms),
            summary_line(self.summary),
        ]
        return "| " + " | ".join(_cell(cell) for cell in cells) + " |\n"


def summary_line(text: str | None, limit: int = SUMMARY_MAX_CHARS) -> str:
    """The first non-blank line of `text`, on one line, at most `limit` characters.

    Cut at a character (never inside one: these are str, not bytes) with an ellipsis.
    """
    first = next((line for line in (text or "").splitlines() if line.strip()), "")
    line = " ".join(_printable(first).split())
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"


def format_duration(duration_ms: int) -> str:
    seconds = max(duration_ms, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def append_index_row(logs_dir: Path, row: IndexRow) -> None:
    """Append `row` to `logs_dir/index.md`, creating the file with its header."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / INDEX_NAME
    line = row.render().encode("utf-8")
    try:
        fd = os.open(path, _APPEND_FLAGS | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        created = True
    except FileExistsError:
        fd = os.open(path, _APPEND_FLAGS)
        created = False
    try:
        data = HEADER.encode("utf-8") + line if created else _after_existing(fd, line)
        os.write(fd, data)
    finally:
        os.close(fd)


def search_index(logs_dir: Path, query: str, *, limit: int = 50) -> list[str]:
    """Rows of `logs_dir/index.md` containing `query` (case-insensitive), newest last.

    At most the `limit` latest matches; an empty query matches every row. The file is
    read line by line, so a long index costs no memory.
    """
    needle = query.strip().casefold()
    escaped = needle.replace("|", "\\|")
    matches: deque[str] = deque(maxlen=max(limit, 0))
    try:
        index = (logs_dir / INDEX_NAME).open(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return []
    with index:
        for raw in index:
            line = raw.rstrip("\n")
            if not _is_row(line):
                continue
            folded = line.casefold()
            if needle in folded or escaped in folded:
                matches.append(line)
    return list(matches)


def _after_existing(fd: int, line: bytes) -> bytes:
    """What to append to an existing index: a header if it is empty, a newline if torn."""
    size = os.fstat(fd).st_size
    if size == 0:
        return HEADER.encode("utf-8") + line
    if os.pread(fd, 1, size - 1) != b"\n":
        # A previous write was cut short: end that line so this row starts cleanly.
        return b"\n" + line
    return line


def _is_row(line: str) -> bool:
    return line.startswith("| ") and not line.startswith(("| finished (UTC) |", "|---"))


def _printable(text: str) -> str:
    # Control characters (escape sequences, NUL) would garble a terminal or the table.
    return "".join(char if char.isprintable() else " " for char in text)


def _cell(text: str) -> str:
    return " ".join(_printable(text).split()).replace("|", "\\|")
