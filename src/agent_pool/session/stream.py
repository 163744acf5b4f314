"""Framing and parsing of `claude`'s stream-json output (pure: no process handling).

The output is one JSON object per line. Lines are framed with a size cap so that a
runaway line (a huge tool result echoed back) can never make the daemon hold it whole:
the over-long line is dropped and counted, and framing resumes at the next newline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

MAX_LINE_BYTES: Final = 1 << 20
_BLOCK: Final = 64 * 1024
# Cheap pre-filter: only lines containing this can be a result event.
_RESULT_MARK: Final = b'"result"'

Event = dict[str, Any]


class LineFramer:
    """Turns byte chunks into complete lines (without the newline), capped in size."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self.dropped = 0  # over-long lines thrown away so far
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line: discard up to the next newline

    @property
    def pending(self) -> int:
        """Bytes held for a line whose newline has not arrived yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return lines
            self._skipping = False
            start = newline + 1
        while (newline := chunk.find(b"\n", start)) >= 0:
            if self._buf:
                self._buf += chunk[start:newline]
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = chunk[start:newline]
            if len(line) > self.max_line:
                self.dropped += 1
            else:
                lines.append(line)
            start = newline + 1
        rest = len(chunk) - start
        if len(self._buf) + rest > self.max_line:
            # Stop buffering now rather than when the newline finally comes.
            self._buf.clear()
            self._skipping = True
            self.dropped += 1
        elif rest:
            self._buf += chunk[start:]
        return lines

    def flush(self) -> bytes | None:
        """The last line when the stream ended without a final newline, if any."""
        self._skipping = False
        if not self._buf:
            return None
        line = bytes(self._buf)
        self._buf.clear()
        return line


def parse_event(line: bytes) -> Event | None:
    """One stream-json event, or None for a blank line, invalid JSON or a non-object."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def read_result_event(
    log_path: Path, *, max_line: int = MAX_LINE_BYTES, block_size: int = _BLOCK
) -> Event | None:
    """The last `{"type": "result", ...}` event in a log, read backwards block by block.

    The result is normally the last line, so this reads one block of a log of any
    size. None when the file is missing or holds no result event.
    """
    try:
        log = log_path.open("rb")
    except FileNotFoundError:
        return None
    with log:
        for line in _lines_backwards(log, max_line, block_size):
            if _RESULT_MARK not in line:
                continue
            event = parse_event(line)
            if event is not None and event.get("type") == "result":
                return event
    return None


def _lines_backwards(log: BinaryIO, max_line: int, block_size: int) -> Iterator[bytes]:
    """Lines from the end of the file to its start; lines over `max_line` are skipped."""
    pos = log.seek(0, os.SEEK_END)
    tail = b""  # the end of a line whose start lies before the part read so far
    too_long = False  # `tail` belongs to an over-long line: skip it entirely
    while pos > 0:
        size = min(block_size, pos)
        pos -= size
        log.seek(pos)
        chunk = log.read(size)
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            if not too_long:
                tail = chunk + tail
                if len(tail) > max_line:
                    tail, too_long = b"", True
            continue
        if not too_long and len(pieces[-1]) + len(tail) <= max_line:
            yield pieces[-1] + tail
        too_long = False
        for piece in reversed(pieces[1:-1]):
            if len(piece) <= max_line:
                yield piece
        tail = pieces[0]
        if len(tail) > max_line:
            tail, too_long = b"", True
    if not too_long and tail:
        yield tail
