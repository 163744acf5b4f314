"""The Messages API on the wire (pure): reading requests, writing SSE answers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from agent_pool.testing.model_script import Turn, Usage

TurnKind = Literal["text", "tool_use", "error", "hang"]

_CHUNK: Final = 64  # characters per text or JSON delta, so clients see a real stream


# --- reading requests and writing answers (pure) ------------------------------------------


def prompt_text(body: Mapping[str, Any]) -> str:
    """The text of the first user message of a Messages API request body ("" if none)."""
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(t for t in texts if isinstance(t, str))


def conversation_position(body: Mapping[str, Any]) -> int:
    """How many assistant messages the request already holds (`role: system` ignored)."""
    messages = body.get("messages")
    return sum(
        1
        for message in (messages if isinstance(messages, list) else [])
        if isinstance(message, dict) and message.get("role") == "assistant"
    )


def tool_names(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the tools a request offers, in order."""
    tools = body.get("tools")
    return tuple(
        t["name"]
        for t in (tools if isinstance(tools, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    )


def system_chars(body: Mapping[str, Any]) -> int:
    """The length of the request's system prompt, in characters."""
    system = body.get("system")
    if isinstance(system, str):
        return len(system)
    return len(_content_text(system))


def is_auxiliary(body: Mapping[str, Any]) -> bool:
    """Whether the CLI asks this for itself rather than as a turn of the conversation.

    The agent loop's requests offer the CLI's tools and, in 2.1.330, carry a
    `role: "system"` environment entry in `messages` (even under `--tools ""`); the
    CLI's tool-free side queries (session titles, summaries, prompt hooks) do neither.
    """
    messages = body.get("messages")
    has_system_entry = any(
        isinstance(m, dict) and m.get("role") == "system"
        for m in (messages if isinstance(messages, list) else [])
    )
    return not tool_names(body) and not has_system_entry


def estimate_tokens(size: int) -> int:
    """A rough token count for `size` bytes or characters of text (about 4 per token)."""
    return max(1, size // 4)


def new_id(prefix: str) -> str:
    """A fresh id in the API's style, e.g. `msg_…` or `toolu_…`."""
    return f"{prefix}_01{os.urandom(12).hex()}"


def render_stream(turn: Turn, *, model: str, input_tokens: int) -> bytes:
    """The SSE stream answering a text or tool turn, as the Messages API streams it."""
    blocks: list[tuple[dict[str, Any], str, str]] = []  # (start block, delta type, payload)
    if turn.message:
        blocks.append(({"type": "text", "text": ""}, "text_delta", turn.message))
    for call in turn.calls:
        start = {"type": "tool_use", "id": new_id("toolu"), "name": call.name, "input": {}}
        blocks.append((start, "input_json_delta", json.dumps(dict(call.input))))
    if not blocks:  # an empty text turn still needs one block
        blocks.append(({"type": "text", "text": ""}, "text_delta", ""))
    usage = turn.usage or Usage(
        input_tokens, estimate_tokens(sum(len(payload) for _, _, payload in blocks))
    )
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "message": {
                    "id": new_id("msg"),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                    },
                }
            },
        ),
        ("ping", {}),
    ]
    for index, (start, delta_type, payload) in enumerate(blocks):
        events.append(("content_block_start", {"index": index, "content_block": start}))
        key = "text" if delta_type == "text_delta" else "partial_json"
        for offset in range(0, max(len(payload), 1), _CHUNK):
            chunk = payload[offset : offset + _CHUNK]
            events.append(
                ("content_block_delta", {"index": index, "delta": {"type": delta_type, key: chunk}})
            )
        events.append(("content_block_stop", {"index": index}))
    events += [
        (
            "message_delta",
            {
                "delta": {
                    "stop_reason": "tool_use" if turn.calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": usage.output_tokens},
            },
        ),
        ("message_stop", {}),
    ]
    return "".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n" for name, data in events
    ).encode("utf-8")


def render_error(turn: Turn) -> bytes:
    """The JSON body of an error turn, in the API's error shape."""
    error = {"type": turn.error_type or "api_error", "message": turn.message}
    return json.dumps({"type": "error", "error": error}).encode("utf-8")


def parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE stream into (event name, parsed data) pairs; for tests and debugging."""
    events = []
    for frame in data.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        name, lines = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                lines.append(line[5:].removeprefix(" "))
        if lines:
            events.append((name, json.loads("\n".join(lines))))
    return events
