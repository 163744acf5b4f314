"""A session's stream-json log as readable lines (`agent-pool logs`).

`render_transcript` is pure: events in, lines out, one event at a time, so a log of
any size streams through without being held. Long tool inputs and results are
abbreviated: a transcript shows what happened, the raw log keeps every byte.
Event types it does not know are skipped: the CLI adds new ones over time.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

from agent_pool.session.index import format_duration
from agent_pool.session.logfiles import open_log
from agent_pool.session.outcome import ResultEvent
from agent_pool.session.stream import MAX_LINE_BYTES, Event, LineFramer, parse_event

_READ_BLOCK: Final = 64 * 1024
# Longest assistant text block shown, in characters; the rest is counted, not shown.
MAX_TEXT_CHARS: Final = 4000
# Longest tool input value or tool result line shown inline.
MAX_INLINE_CHARS: Final = 80
MAX_RESULT_CHARS: Final = 160
# System events too frequent or too internal to be worth a line.
_QUIET_SYSTEM: Final = frozenset({"hook_started", "hook_response", "status"})


class LogEvents:
    """The events of a stream-json log file, read in blocks (never the whole file).

    An archived log (`.gz`) is decompressed as it is read. After iterating, `skipped`
    counts lines that were not events: invalid JSON, non-objects, or lines over the
    framer's size cap; `damaged` tells that an archive ended in unreadable data.
    """

    def __init__(self, path: Path, *, max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self.max_line = max_line
        self.skipped = 0
        self.damaged = False

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self) -> Generator[Event, None, None]:
        """The events, as a generator a caller may close early (which closes the file)."""
        framer = LineFramer(self.max_line)
        invalid = 0
        with open_log(self.path) as log:
            while chunk := self._read(log):
                for line in framer.feed(chunk):
                    event = parse_event(line)
                    if event is not None:
                        yield event
                    elif line.strip():
                        invalid += 1
            last = framer.flush()
            if last is not None:
                event = parse_event(last)
                if event is not None:
                    yield event
                elif last.strip():
                    invalid += 1
        self.skipped = invalid + framer.dropped

    def _read(self, log: BinaryIO) -> bytes:
        try:
            return log.read(_READ_BLOCK)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            # A cut or corrupt archive: show what could be read, and say so.
            self.damaged = True
            return b""


def render_transcript(events: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Readable lines for a session's events, in order.

    A line may hold newlines (a multi-line assistant text, indented); it never holds
    other control characters.
    """
    tool_names: dict[str, str] = {}  # tool_use id -> tool name, to label errors
    for event in events:
        for line in _render(event, tool_names):
            yield _printable(line)


def _render(event: Mapping[str, Any], tool_names: dict[str, str]) -> Iterator[str]:
    kind = event.get("type")
    if kind == "system":
        yield from _system(event)
    elif kind == "assistant":
        yield from _assistant(_content(event), tool_names)
    elif kind == "user":
        yield from _user(_content(event), tool_names)
    elif kind == "result":
        yield _result(ResultEvent.from_event(event))


def _system(event: Mapping[str, Any]) -> Iterator[str]:
    subtype = _str(event.get("subtype"))
    if subtype == "init":
        parts = [f"session {_str(event.get('session_id')) or '?'}"]
        parts.append(f"model {_str(event.get('model')) or '?'}")
        tools = event.get("tools")
        parts.append(f"{len(tools) if isinstance(tools, list) else 0} tools")
        servers = [
            f"{_str(server.get('name'))} ({_str(server.get('status'))})"
            for server in _list(event.get("mcp_servers"))
            if isinstance(server, Mapping)
        ]
        if servers:
            parts.append("mcp: " + ", ".join(servers))
        version = _str(event.get("claude_code_version"))
        if version:
            parts.append(f"claude {version}")
        yield "── " + " · ".join(parts)
    elif subtype == "api_retry":
        attempt, status = event.get("attempt"), event.get("error_status")
        yield f"· API retry (attempt {attempt}, status {status})"
    elif subtype and subtype not in _QUIET_SYSTEM:
        yield f"· system: {subtype}"


def _assistant(blocks: list[Any], tool_names: dict[str, str]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, str):
            yield "assistant: " + _indent(_cap(block.strip(), MAX_TEXT_CHARS))
            continue
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            yield "assistant: " + _indent(_cap(_str(block.get("text")).strip(), MAX_TEXT_CHARS))
        elif kind == "tool_use":
            name = _str(block.get("name")) or "?"
            tool_names[_str(block.get("id"))] = name
            yield f"→ {name}({_arguments(block.get('input'))})"
        elif kind in {"thinking", "redacted_thinking"}:
            yield f"(thinking: {len(_str(block.get('thinking')))} chars)"


def _user(blocks: list[Any], tool_names: dict[str, str]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, str):
            yield "user: " + _first_line(block)
        elif isinstance(block, Mapping) and block.get("type") == "tool_result":
            text = _result_text(block.get("content"))
            if block.get("is_error") is True:
                name = tool_names.get(_str(block.get("tool_use_id")))
                label = f"error ({name})" if name else "error"
                yield f"← {label}: {_first_line(text)}"
            else:
                yield f"← result: {_first_line(text)}"
        elif isinstance(block, Mapping) and block.get("type") == "text":
            yield "user: " + _first_line(_str(block.get("text")))


def _result(result: ResultEvent) -> str:
    status = "error" if result.is_error else result.subtype or "unknown"
    if result.is_error and result.subtype not in {"", "success"}:
        status += f" ({result.subtype})"
    parts = [
        f"result: {status}",
        f"{result.num_turns} turns",
        f"${result.total_cost_usd:.4f}",
        format_duration(result.duration_ms),
        f"{result.input_tokens} in / {result.output_tokens} out tokens",
    ]
    if result.api_error_status is not None:
        parts.append(f"API status {result.api_error_status}")
    if result.permission_denials:
        parts.append("denied: " + ", ".join(dict.fromkeys(result.permission_denials)))
    if result.is_error and result.result:
        parts.append(_first_line(result.result))
    return "══ " + " · ".join(parts)


def _arguments(value: object) -> str:
    if not isinstance(value, Mapping):
        return "" if value is None else _inline(value)
    return ", ".join(f"{key}={_inline(item)}" for key, item in value.items())


def _inline(value: object) -> str:
    """A tool input value on one short line: long or multi-line text becomes its size."""
    if isinstance(value, str):
        if "\n" in value or len(value) > MAX_INLINE_CHARS:
            return f"<{len(value)} chars>"
        return value
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= MAX_INLINE_CHARS else f"<{len(text)} chars of JSON>"


def _result_text(content: object) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for item in _list(content):
        if isinstance(item, Mapping):
            texts.append(_str(item.get("text")) or f"[{_str(item.get('type')) or 'block'}]")
    return "\n".join(texts)


def _first_line(text: str) -> str:
    """The first non-blank line, abbreviated, with how many more lines there were."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "(empty)"
    first = _cap(" ".join(lines[0].split()), MAX_RESULT_CHARS)
    return first + (f" (+{len(lines) - 1} lines)" if len(lines) > 1 else "")


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"… ({len(text) - limit} more chars)"


def _indent(text: str) -> str:
    # Continuation lines are indented, so a reader sees one block.
    return text.replace("\n", "\n  ")


def _printable(text: str) -> str:
    # A log can hold terminal escape sequences (colourful tool output): never replay them.
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)


def _content(event: Mapping[str, Any]) -> list[Any]:
    message = event.get("message")
    if not isinstance(message, Mapping):
        return []
    content = message.get("content")
    return [content] if isinstance(content, str) else _list(content)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
