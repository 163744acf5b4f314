"""Events: one record for everything the daemon does, logged and streamed.

Each event has a sequence number (per daemon run) and a time. It is encoded to JSON
once and that line is reused: appended to the daemon log (JSON lines, rotated, so an
operator can `grep` and `jq` it), kept in a ring of recent events, and offered to every
`subscribe` stream. A subscriber has a bounded buffer: when it reads too slowly, new
events are dropped *for it* and counted, and it is told how many it missed before the
next one it gets. Emitting never waits for a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent_pool.daemon.event_catalog import EVENT_TYPES

EventSink = Callable[["Event"], None]

RECENT_EVENTS: Final = 2000  # replayed to a subscriber that asks `since` a sequence number
SUBSCRIBER_BUFFER: Final = 5000  # events held for one slow subscriber before dropping
MISSED: Final = "stream.missed"


@dataclass(frozen=True)
class Event:
    type: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        # The fixed fields come last so that no data key can overwrite them.
        return {**self.data, "seq": self.seq, "time": round(self.time, 6), "type": self.type}


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, default=str)


class Subscription:
    """One subscriber's bounded queue of encoded event lines."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lines: deque[bytes] = deque()
        self._missed = 0
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, line: bytes) -> None:
        if len(self._lines) >= self._capacity:
            self._missed += 1
        else:
            self._note_missed()
            self._lines.append(line)
        self._ready.set()

    def miss(self, count: int) -> None:
        """Events lost before the stream began (older than the replay ring)."""
        self._missed += count
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def batches(self) -> AsyncIterator[bytes]:
        """Everything queued so far as one chunk, then wait for more; ends when closed
        and drained."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            # Drops happen only while the queue is full, so the gap follows what it holds.
            self._note_missed()
            if self._lines:
                chunk = b"".join(self._lines)
                self._lines.clear()
                yield chunk
            if self._closed and not self._lines:
                return

    def _note_missed(self) -> None:
        if self._missed:
            notice = {"type": MISSED, "missed": self._missed}
            self._lines.append(_encode(notice).encode() + b"\n")
            self._missed = 0


class _RotatingLog:
    """An append-only file of whole lines, rotated to `<name>.1` ... `<name>.N` past a size.

    One `write` per line on an O_APPEND descriptor: a crash never leaves half a line
    buffered, `tail -f` sees each event at once, and there is no logging-module overhead
    (events are the daemon's most frequent writes).
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self._path = path
        self.max_bytes = max_bytes
        self._backups = backups
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self.lost = 0  # lines that could not be written

    def _open(self) -> int:
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, line: bytes) -> None:
        """Append one line; a log that cannot grow (full disk) never stops the daemon:
        the line is counted as lost and still reaches subscribers."""
        try:
            if self._fd < 0:
                self._fd = self._open()
                self._size = os.fstat(self._fd).st_size
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            written = os.write(self._fd, line)
        except OSError:
            self.lost += 1
            return
        self._size += written

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1  # if reopening fails below, writes fail (and are counted) until it works
        for number in range(self._backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{number}")
            with contextlib.suppress(FileNotFoundError):
                older.replace(self._path.with_name(f"{self._path.name}.{number + 1}"))
        with contextlib.suppress(FileNotFoundError):
            self._path.replace(self._path.with_name(f"{self._path.name}.1"))
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


class EventLog:
    """Numbers events, keeps the latest in memory, logs them and feeds subscribers."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int = 3) -> None:
        self._seq = 0
        self._sinks: list[EventSink] = []
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT_EVENTS)
        self._subscriptions: set[Subscription] = set()
        self._file = _RotatingLog(path, max_bytes=max_bytes, backups=backups)

    @property
    def last_seq(self) -> int:
        return self._seq

    def set_max_bytes(self, max_bytes: int) -> None:
        """Apply a reloaded `[daemon] log_max_bytes` to the next rollover check."""
        self._file.max_bytes = max_bytes

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def emit(self, type_: str, now: float, **data: Any) -> Event:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"event type {type_!r} is not in the catalog (event_catalog.py)")
        self._seq += 1
        event = Event(type=type_, time=now, data=data, seq=self._seq)
        line = _encode(event.to_json()).encode() + b"\n"
        self._file.write(line)
        self._recent.append((event.seq, line))
        for subscription in self._subscriptions:
            subscription.offer(line)
        for sink in self._sinks:
            sink(event)
        return event

    def subscribe(
        self, since: int | None = None, *, capacity: int = SUBSCRIBER_BUFFER
    ) -> Subscription:
        """A new stream of events; with `since`, first the recent ones after it.

        A `since` older than the replay ring counts the gap as missed; one beyond the
        last event (from an earlier daemon run: sequence numbers restart) replays nothing.
        """
        subscription = Subscription(capacity)
        if since is not None:
            replay = [line for seq, line in self._recent if seq > since]
            oldest = self._recent[0][0] if self._recent else self._seq + 1
            if since < oldest - 1 and since < self._seq:
                subscription.miss(oldest - 1 - since)
            for line in replay:
                subscription.offer(line)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        subscription.close()

    def end_streams(self) -> None:
        """Let every stream deliver what it holds, then end (the daemon is stopping)."""
        for subscription in self._subscriptions:
            subscription.close()

    def close(self) -> None:
        self.end_streams()
        self._subscriptions.clear()
        self._file.close()
