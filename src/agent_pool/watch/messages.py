"""Messages the dashboard's worker threads post to the app (textual)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from agent_pool.watch.source import Snapshot


class SnapshotReady(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class StreamConnected(Message):
    def __init__(self, hello: dict[str, Any]) -> None:
        super().__init__()
        self.hello = hello


class StreamEvent(Message):
    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event


class StreamLost(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class ActionDone(Message):
    def __init__(self, text: str, *, failed: bool) -> None:
        super().__init__()
        self.text = text
        self.failed = failed


class TranscriptReady(Message):
    def __init__(self, task_id: str, lines: list[str]) -> None:
        super().__init__()
        self.task_id = task_id
        self.lines = lines
