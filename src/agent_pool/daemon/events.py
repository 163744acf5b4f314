"""Events: one record for everything the daemon does, written to its log.

Each event has a sequence number and a time; the daemon log is a JSON-lines file, so
an operator can `grep` and `jq` it. Subscribers of the control socket get the same
records later.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EventSink = Callable[["Event"], None]


@dataclass(frozen=True)
class Event:
    type: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        # The fixed fields come last so that no data key can overwrite them.
        return {**self.data, "seq": self.seq, "time": round(self.time, 6), "type": self.type}


class EventLog:
    """Numbers events, keeps the latest in memory and appends them to the daemon log."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int = 3) -> None:
        self._seq = 0
        self._sinks: list[EventSink] = []
        self._logger = logging.getLogger(f"agent_pool.daemon.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._logger.addHandler(self._handler)

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def emit(self, type_: str, now: float, **data: Any) -> Event:
        self._seq += 1
        event = Event(type=type_, time=now, data=data, seq=self._seq)
        self._logger.info(json.dumps(event.to_json(), ensure_ascii=False, default=str))
        for sink in self._sinks:
            sink(event)
        return event

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()
