"""One readable line per daemon event: `HH:MM:SS  type  key=value ...` (pure).

Used by `watch --plain` and by the dashboard's event feed. Values are shortened so a
line stays a line: a tool input or a failure reason can be kilobytes long, and the
full record is in the daemon log anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

MISSED: Final = "stream.missed"
MAX_VALUE_CHARS: Final = 60
# The envelope every event carries; the line shows time and type in their own columns.
_ENVELOPE: Final = frozenset({"seq", "time", "type"})
_TYPE_WIDTH: Final = 22


def format_event(
    event: Mapping[str, Any], *, now: float | None = None, tz: tzinfo | None = None
) -> str:
    """The line for `event`, its time in `tz` (local time by default).

    `now` stamps a line whose event has no time of its own (`stream.missed`).
    """
    stamp = event.get("time")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        stamp = now
    clock = "--:--:--" if stamp is None else datetime.fromtimestamp(stamp, tz).strftime("%H:%M:%S")
    kind = str(event.get("type", "?"))
    if kind == MISSED:
        count = event.get("missed", "?")
        noun = "event" if count == 1 else "events"
        return f"{clock}  {kind:<{_TYPE_WIDTH}}  missed {count} {noun} (read too slowly)"
    fields = " ".join(
        f"{key}={shorten(value)}" for key, value in event.items() if key not in _ENVELOPE
    )
    return f"{clock}  {kind:<{_TYPE_WIDTH}}  {fields}".rstrip()


def shorten(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """`value` on one line, at most `limit` characters (an ellipsis marks a cut)."""
    if isinstance(value, str):
        text = " ".join(value.split())
        if not text or any(char in text for char in " ="):
            text = json.dumps(text, ensure_ascii=False)  # keeps key=value pairs apart
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif value is None or isinstance(value, bool | int):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return clip(text, limit)


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis (no quoting)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
