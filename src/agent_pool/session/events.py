"""Live session events (pure): what in a stream-json line is worth telling the operator.

Each stream-json line of a running session becomes at most one daemon event: a tool
call (name and a short view of its input), a piece of assistant text, or the result.
Bulky content is abbreviated here so the event stream stays small.
"""

from __future__ import annotations

from typing import Any, Final

MAX_TEXT: Final = 200


def _short(value: object, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_event(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    kind = event.get("type")
    if kind == "assistant":
        message = event.get("message")
        blocks = message.get("content") if isinstance(message, dict) else None
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                tool_input = block.get("input")
                brief = (
                    {key: _short(value, 80) for key, value in tool_input.items()}
                    if isinstance(tool_input, dict)
                    else {}
                )
                return "session.tool_call", {"tool": str(block.get("name")), "input": brief}
            if block.get("type") == "text":
                return "session.text", {"text": _short(block.get("text", ""))}
        return None
    if kind == "result":
        return "session.result", {
            "subtype": str(event.get("subtype")),
            "is_error": bool(event.get("is_error")),
            "cost_usd": event.get("total_cost_usd"),
            "turns": event.get("num_turns"),
        }
    return None
