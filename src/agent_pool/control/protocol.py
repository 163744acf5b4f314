"""Frames of the control protocol (pure): one JSON object per line, each way.

Request:  {"op": "status", ...arguments}
Response: {"ok": true, "data": ...} or {"ok": false, "error": "one line", "code": 1}

`subscribe` turns the connection into a stream: after its response, every line the
daemon sends is one event object (see daemon/event_catalog.py), until the daemon stops.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_FRAME: Final = 4 * 1024 * 1024
OPS: Final = frozenset({"status", "stop", "cancel", "retry", "ping", "subscribe"})
# A JSON escape of a UTF-16 surrogate; only a frame holding one needs the slow check.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


class ProtocolError(ValueError):
    """A frame that is not valid JSON, not an object, or too large."""


def encode(frame: dict[str, Any]) -> bytes:
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (a JSON "\ud800" echoed back, an undecodable file name) has
        # no UTF-8 form; as a \u escape it is still valid JSON, so the frame goes out.
        return json.dumps(frame, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(line)} bytes is over the limit of {MAX_FRAME}")
    try:
        # Decoded here, strictly: given bytes, json.loads would guess UTF-16 or -32 from
        # NUL bytes and let UTF-8-encoded surrogates through.
        frame = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    except ValueError as exc:
        # Only an integer over Python's limit of digits (4300) fails this way.
        raise ProtocolError("not usable JSON: a number has too many digits") from exc
    except RecursionError:
        raise ProtocolError("not usable JSON: nested too deeply") from None
    if not isinstance(frame, dict):
        raise ProtocolError("a frame must be a JSON object")
    return frame


def parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    frame = decode(line)
    if _SURROGATE_ESCAPE.search(line) and _holds_lone_surrogate(frame):
        # No handler could use such a string: it has no UTF-8 form (SQLite refuses it).
        raise ProtocolError("not text: a string holds a lone UTF-16 surrogate")
    op = frame.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    return op, {key: value for key, value in frame.items() if key != "op"}


def _holds_lone_surrogate(frame: dict[str, Any]) -> bool:
    pending: list[object] = [frame]
    while pending:  # a loop: the frame may be nested as deep as json.loads allowed
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def error(message: str, code: int = 1) -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code}
