"""Follow the daemon's event stream for as long as the dashboard runs, reconnecting.

`run` blocks (call it from a worker thread) and `stop` may be called from any thread:
it closes the live connection, which is what unblocks a reader waiting for events.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final, Protocol

from agent_pool.control.client import EventStream
from agent_pool.errors import AgentPoolError

RECONNECT_SECONDS: Final = 3.0
HELLO_TIMEOUT: Final = 5.0


class FollowerSink(Protocol):
    def connected(self, hello: dict[str, Any]) -> None: ...

    def event(self, event: dict[str, Any]) -> None: ...

    def disconnected(self, reason: str) -> None: ...


class EventFollower:
    def __init__(self, socket_path: Path, *, retry_every: float = RECONNECT_SECONDS) -> None:
        self._path = socket_path
        self._retry_every = retry_every
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stream: EventStream | None = None
        self._last_seq: int | None = None

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._stream is not None:
                self._stream.close()

    def run(self, sink: FollowerSink) -> None:
        """Deliver events until `stop`; report each outage once, then retry quietly."""
        since: int | None = None
        down = False
        while not self._stopping.is_set():
            try:
                stream = EventStream(self._path, since=since, timeout=HELLO_TIMEOUT)
            except AgentPoolError as exc:
                if not down:
                    sink.disconnected(exc.message)
                    down = True
                self._stopping.wait(self._retry_every)
                continue
            down = False
            ended_cleanly = self._follow(stream, sink)
            # Sequence numbers restart with each daemon run: after a clean stop the
            # next daemon is a new run, otherwise ask for what this reader missed.
            since = None if ended_cleanly else self._last_seq
            if not self._stopping.is_set():
                reason = "the daemon stopped" if ended_cleanly else "the event stream ended"
                sink.disconnected(reason)
                down = True

    def _follow(self, stream: EventStream, sink: FollowerSink) -> bool:
        """Pass on every event of one connection; True if the daemon said it stopped."""
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():  # stop() ran before the stream was registered
            stream.close()
        stopped = False
        hello_seq = stream.hello.get("seq")
        self._last_seq = hello_seq if isinstance(hello_seq, int) else None
        try:
            with stream:
                sink.connected(stream.hello)
                for event in stream:
                    seq = event.get("seq")
                    if isinstance(seq, int):
                        self._last_seq = seq
                    stopped = stopped or event.get("type") == "daemon.stopped"
                    sink.event(event)
        finally:
            with self._lock:
                self._stream = None
        return stopped
