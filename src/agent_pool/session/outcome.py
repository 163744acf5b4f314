"""What a finished session achieved: the typed result event and the verdict (pure).

Truthful completion: a session succeeded only when the process exited 0, the CLI
wrote a result event, and that event reports a clean success with no denied tool.
Anything else is a failure with one short line saying why.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

_MAX_TEXT: Final = 200


def _str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _int(value: object) -> int | None:
    # bool is an int subclass; `true` is never a count.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _denied_tools(value: object) -> tuple[str, ...]:
    # The CLI lists {"tool_name", "tool_use_id", "tool_input"} objects; plain names
    # are accepted too. Unreadable entries still count as a denial.
    if not isinstance(value, list):
        return ()
    names: list[str] = []
    for entry in value:
        if isinstance(entry, Mapping):
            names.append(_str(entry.get("tool_name")) or "unknown tool")
        elif isinstance(entry, str) and entry:
            names.append(entry)
        else:
            names.append("unknown tool")
    return tuple(names)


@dataclass(frozen=True, slots=True)
class ResultEvent:
    """The final `{"type": "result"}` event of a `claude -p` run, typed."""

    subtype: str = ""
    is_error: bool = False
    result: str = ""
    total_cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0
    permission_denials: tuple[str, ...] = ()
    terminal_reason: str | None = None
    api_error_status: int | None = None
    session_id: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ResultEvent:
        """Tolerates missing keys and wrong types; never raises for a mapping."""
        usage = event.get("usage")
        if not isinstance(usage, Mapping):
            usage = {}
        terminal = event.get("terminal_reason")
        session_id = event.get("session_id")
        return cls(
            subtype=_str(event.get("subtype")),
            # Only an explicit `false` is a clean run: a missing or garbled flag is
            # never taken for success.
            is_error=event.get("is_error") is not False,
            result=_str(event.get("result")),
            total_cost_usd=_float(event.get("total_cost_usd")),
            input_tokens=_int(usage.get("input_tokens")) or 0,
            output_tokens=_int(usage.get("output_tokens")) or 0,
            num_turns=_int(event.get("num_turns")) or 0,
            duration_ms=_int(event.get("duration_ms")) or 0,
            permission_denials=_denied_tools(event.get("permission_denials")),
            terminal_reason=terminal if isinstance(terminal, str) else None,
            api_error_status=_int(event.get("api_error_status")),
            session_id=session_id if isinstance(session_id, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    success: bool
    reason: str | None = None  # one short line; None on success


def judge(
    exit_code: int | None, result: ResultEvent | None, *, stop_reason: str | None = None
) -> Verdict:
    """Success or the one reason it was not.

    `exit_code` is None when unknown (a session adopted after a daemon restart is not
    our child); then a clean result event alone decides. `stop_reason` is set when
    the daemon itself stopped the session (timeout, cancel, stall) and always wins.
    """
    if stop_reason:
        return Verdict(False, stop_reason)
    if exit_code is not None and exit_code < 0:
        return Verdict(False, f"killed by signal {_signal_name(-exit_code)}")
    if result is not None:
        reason = _result_problem(result)
        if reason is not None:
            return Verdict(False, reason)
    if exit_code is not None and exit_code != 0:
        return Verdict(False, f"exited with code {exit_code}")
    if result is None:
        return Verdict(False, "no result event in the session output")
    return Verdict(True)


def _result_problem(result: ResultEvent) -> str | None:
    text = _short(result.result)
    suffix = f": {text}" if text else ""
    if result.is_error and result.api_error_status is not None:
        return f"API error (status {result.api_error_status}){suffix}"
    if result.subtype == "error_max_turns":
        return f"exceeded max turns ({result.num_turns})"
    if result.is_error or result.subtype != "success":
        kind = f" ({result.subtype})" if result.subtype else ""
        return f"error result{kind}{suffix}"
    if result.permission_denials:
        unique = dict.fromkeys(result.permission_denials)  # ordered, without repeats
        return f"tool denied: {', '.join(unique)}"
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _short(text: str) -> str:
    """One line of at most about 200 characters."""
    line = " ".join(text.split())
    if len(line) <= _MAX_TEXT:
        return line
    return line[: _MAX_TEXT - 1].rstrip() + "…"
