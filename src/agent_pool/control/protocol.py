"""Frames of the control protocol (pure): one JSON object per line, each way.

Request:  {"op": "status", ...arguments}
Response: {"ok": true, "data": ...} or {"ok": false, "error": "one line", "code": 1}

`subscribe` turns the connection into a stream: after its response, every line the
daemon sends is one event object (see daemon/event_catalog.py), until the daemon stops.
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_FRAME: Final = 4 * 1024 * 1024
OPS: Final = frozenset({"status", "stop", "cancel", "retry", "ping", "subscribe"})


class ProtocolError(ValueError):
    """A frame that is not valid JSON, not an object, or too large."""


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(line)} bytes is over the limit of {MAX_FRAME}")
    try:
        frame = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(frame, dict):
        raise ProtocolError("a frame must be a JSON object")
    return frame


def parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    frame = decode(line)
    op = frame.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    return op, {key: value for key, value in frame.items() if key != "op"}


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def error(message: str, code: int = 1) -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code}
