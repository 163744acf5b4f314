"""Durations and byte sizes as people write them in config files.

Pure parsing with no pydantic in sight: each parser takes whatever TOML produced and
returns a typed value or raises `ValueError` with a message a user can act on. The
models wrap these parsers; other code (CLI flags, tests) may call them directly.
"""

from __future__ import annotations

import math
import re
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Final

DURATION_HINT: Final = "use a number of seconds or forms like 45s, 10m, 1h30m, 2d"
BYTE_SIZE_HINT: Final = (
    "use a number of bytes or forms like 512B, 16KiB, 10MiB, 1GiB (KB = 1000, KiB = 1024)"
)

_NUMBER = r"\d+(?:\.\d+)?"
# Units must appear largest first and at most once, so "1h30m" is fine and "30m1h"
# (almost certainly a typo) is not. Regex backtracking tells "10m" from "10ms".
_DURATION: Final = re.compile(
    rf"(?:(?P<d>{_NUMBER})d)?(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?"
    rf"(?:(?P<s>{_NUMBER})s)?(?:(?P<ms>{_NUMBER})ms)?"
)
_MICROSECONDS_PER_UNIT: Final = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
}
_BARE_NUMBER: Final = re.compile(_NUMBER)

_BYTE_SIZE: Final = re.compile(rf"(?P<number>{_NUMBER})\s*(?P<unit>[A-Za-z]*)")
# Unit names are matched case-insensitively: nobody means kilobits in a config file.
_BYTES_PER_UNIT: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SHOWN_CHARS: Final = 40


def describe_value(value: object) -> str:  # noqa: PLR0911 - a flat switch on TOML types
    """Name a TOML value's type and show it briefly, e.g. `string '3'` or `boolean true`."""
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, date | time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


def _quote(text: str) -> str:
    # A pasted screenful of garbage must not turn the one-line error into a page.
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def parse_duration(value: object) -> timedelta:
    """A non-negative duration: seconds as a number, or a string like `1h30m`."""
    if isinstance(value, timedelta):
        # Lets validated models be rebuilt from their own values.
        if value < timedelta(0):
            raise ValueError(f"invalid duration {value}: must not be negative")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        # ValueError, not TypeError: it is what pydantic collects as a validation error.
        got = describe_value(value)
        raise ValueError(f"expected a duration, got {got} ({DURATION_HINT})")  # noqa: TRY004
    if isinstance(value, str):
        return _parse_duration_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"invalid duration {value}: must be a finite number of seconds")
    if value < 0:
        raise ValueError(f"invalid duration {value}: must not be negative")
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise ValueError(f"invalid duration {value}: too large") from None


def _parse_duration_text(text: str) -> timedelta:
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"invalid duration {_quote(text)}: it is empty ({DURATION_HINT})")
    if _BARE_NUMBER.fullmatch(stripped):
        microseconds = Decimal(stripped) * _MICROSECONDS_PER_UNIT["s"]
    else:
        match = _DURATION.fullmatch(stripped)
        parts = match.groupdict() if match else {}
        if not any(parts.values()):
            problem = "must not be negative" if stripped.startswith("-") else DURATION_HINT
            raise ValueError(f"invalid duration {_quote(text)}: {problem}")
        # Decimal keeps "1.1h" exact; floats would drift by a microsecond.
        microseconds = sum(
            (
                Decimal(number) * _MICROSECONDS_PER_UNIT[unit]
                for unit, number in parts.items()
                if number is not None
            ),
            start=Decimal(0),
        )
    try:
        return timedelta(microseconds=int(microseconds))
    except OverflowError:
        raise ValueError(f"invalid duration {_quote(text)}: too large") from None


def parse_timeout(value: object) -> timedelta | None:
    """A duration where `"none"` or zero means "no timeout" (returned as None)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    duration = parse_duration(value)
    return duration if duration > timedelta(0) else None


def parse_byte_size(value: object) -> int:
    """A non-negative number of bytes: an integer, or a string like `16KiB`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        got = describe_value(value)
        raise ValueError(f"expected a byte size, got {got} ({BYTE_SIZE_HINT})")  # noqa: TRY004
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid byte size {value}: must not be negative")
        return value
    match = _BYTE_SIZE.fullmatch(value.strip())
    factor = _BYTES_PER_UNIT.get(match["unit"].lower()) if match else None
    if match is None or factor is None:
        problem = "must not be negative" if value.strip().startswith("-") else BYTE_SIZE_HINT
        raise ValueError(f"invalid byte size {_quote(value)}: {problem}")
    size = Decimal(match["number"]) * factor
    if size != size.to_integral_value():
        raise ValueError(f"invalid byte size {_quote(value)}: not a whole number of bytes")
    return int(size)


def format_duration(value: timedelta) -> str:
    """The shortest config-style spelling of `value`, e.g. `1h30m` or `500ms`."""
    remaining = value // timedelta(microseconds=1)
    if remaining == 0:
        return "0s"
    sign = "-" if remaining < 0 else ""
    remaining = abs(remaining)
    pieces: list[str] = []
    for unit, size in _MICROSECONDS_PER_UNIT.items():
        count, remaining = divmod(remaining, size)
        if count:
            pieces.append(f"{count}{unit}")
    if remaining:
        pieces.append(f"{remaining}us")
    return sign + "".join(pieces)
