"""A scripted stand-in for the Anthropic Messages API, for running the real `claude` offline.

The real Claude Code CLI, pointed at this server (see `claude_cli.hermetic_claude_env`),
plays a conversation written in advance: no account, no network, no tokens. It powers
`agent-pool demo` and the end-to-end tests, and users can script their own runs.

    script = Script(
        [
            Conversation("write the greeting", [
                Turn.tool("Write", {"file_path": "hello.txt", "content": "hi\\n"}),
                Turn.text("Wrote hello.txt."),
            ]),
            Conversation("", [Turn.text("Nothing to do.")]),  # the default
        ]
    )
    with ScriptedModelServer(script) as server:
        ...  # run `claude -p` with ANTHROPIC_BASE_URL=server.base_url

How a request finds its answer, so that concurrent sessions, retries and resumes are
deterministic:

- The conversation is the first one whose `match` is a substring of the text of the
  request's first user message (the prompt); a conversation with `match=""` is the
  default, tried after all others wherever it stands.
- The turn is picked by position: the number of assistant messages already in the
  request. Past the last scripted turn a final text turn (`Script.final_text`) answers,
  so every session ends.
- Requests the CLI makes for itself rather than for the conversation (see
  `is_auxiliary`) get a short text answer and never touch the script.

Every answer to `POST /v1/messages` is an SSE stream, as the CLI always asks for one.
Standard library only, and nothing heavy: the server starts in a few milliseconds.
Also runnable: `python -m agent_pool.testing.model_server --script FILE [--port N]
[--port-file F] [--log F]` serves until SIGTERM or SIGINT and prints only its base URL.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any, Final, Literal, Self, TypeVar

from agent_pool.errors import AgentPoolError

_T = TypeVar("_T")

TurnKind = Literal["text", "tool_use", "error", "hang"]

DEFAULT_FINAL_TEXT: Final = "done"
AUXILIARY_TEXT: Final = "ok"
_CHUNK: Final = 64  # characters per text or JSON delta, so clients see a real stream
_MAX_LINE: Final = 64 * 1024
_MAX_HEADERS: Final = 200
_MAX_BODY: Final = 64 * 1024 * 1024
_PROMPT_TAIL: Final = 200  # characters kept in a request record: the prompt ends the text
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class ScriptError(AgentPoolError):
    """A script is malformed; `where` is the key path of the mistake."""

    def __init__(self, where: str, problem: str, source: Path | None = None) -> None:
        place = [str(source)] if source else []
        super().__init__(": ".join([*place, *([where] if where else []), problem]))
        self.where = where
        self.problem = problem
        self.source = source


# --- the script ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts reported for one turn (the CLI prices them into `total_cost_usd`)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ToolCall:
    """One `tool_use` block: the tool's name as the CLI lists it and its JSON input."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One scripted assistant answer. Build it with `text`, `tool`, `tools`, `error`, `hang`.

    `message` is the text of a text turn, the optional leading text of a tool turn, or
    the error message of an error turn. `delay_s` waits before answering (a stopping
    server cuts it short). `usage` overrides the token counts, which otherwise are
    estimated from the sizes of the request and the answer.
    """

    kind: TurnKind
    message: str = ""
    calls: tuple[ToolCall, ...] = ()
    status: int = 200
    error_type: str = ""
    delay_s: float = 0.0
    usage: Usage | None = None

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ScriptError("delay_s", f"must not be negative, got {self.delay_s}")
        if (self.kind == "tool_use") != bool(self.calls):
            raise ScriptError("calls", "a tool turn, and only a tool turn, holds tool calls")
        if self.kind == "error" and not 400 <= self.status <= 599:
            raise ScriptError(
                "status", f"an error turn needs a 4xx or 5xx status, not {self.status}"
            )

    @classmethod
    def text(cls, text: str, *, delay_s: float = 0.0, usage: Usage | None = None) -> Turn:
        """Answer with one text block and stop reason `end_turn`."""
        return cls("text", message=text, delay_s=delay_s, usage=usage)

    @classmethod
    def tool(
        cls,
        name: str,
        input: Mapping[str, Any] | None = None,  # the API's own name
        *,
        text: str = "",
        delay_s: float = 0.0,
        usage: Usage | None = None,
    ) -> Turn:
        """Call one tool (optionally after some text); stop reason `tool_use`."""
        return cls.tools(
            [ToolCall(name, dict(input or {}))], text=text, delay_s=delay_s, usage=usage
        )

    @classmethod
    def tools(
        cls,
        calls: Sequence[ToolCall],
        *,
        text: str = "",
        delay_s: float = 0.0,
        usage: Usage | None = None,
    ) -> Turn:
        """Call several tools in one answer (optionally after some text)."""
        return cls("tool_use", message=text, calls=tuple(calls), delay_s=delay_s, usage=usage)

    @classmethod
    def error(
        cls,
        status: int = 500,
        message: str = "scripted error",
        *,
        error_type: str | None = None,
        delay_s: float = 0.0,
    ) -> Turn:
        """Answer with an HTTP error and an Anthropic error body instead of a stream."""
        kind = error_type or _ERROR_TYPES.get(status, "api_error")
        return cls("error", message=message, status=status, error_type=kind, delay_s=delay_s)

    @classmethod
    def hang(cls) -> Turn:
        """Never answer; the connection is closed only when the server stops."""
        return cls("hang")


@dataclass(frozen=True)
class Conversation:
    """The turns played to every session whose prompt contains `match` ("" = default)."""

    match: str
    turns: Sequence[Turn] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "turns", tuple(self.turns))


@dataclass(frozen=True)
class Script:
    """What the server answers: conversations told apart by prompt, turns by position."""

    conversations: Sequence[Conversation] = ()
    final_text: str = DEFAULT_FINAL_TEXT

    def __post_init__(self) -> None:
        object.__setattr__(self, "conversations", tuple(self.conversations))

    @classmethod
    def of(cls, *turns: Turn, final_text: str = DEFAULT_FINAL_TEXT) -> Script:
        """A script with a single default conversation."""
        return cls([Conversation("", turns)], final_text=final_text)

    def conversation_for(self, prompt: str) -> Conversation | None:
        """The conversation for a prompt: first non-empty match, else the default."""
        for conversation in self.conversations:
            if conversation.match and conversation.match in prompt:
                return conversation
        return next((c for c in self.conversations if not c.match), None)

    def turn_at(self, conversation: Conversation | None, position: int) -> Turn:
        """The turn at `position`, or the final text turn past the end."""
        if conversation is not None and 0 <= position < len(conversation.turns):
            return conversation.turns[position]
        return Turn.text(self.final_text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Path | None = None) -> Script:
        """Build a script from plain data (the JSON/TOML shape `to_dict` writes)."""
        return _Reader(source).script(data)

    @classmethod
    def load(cls, path: Path) -> Script:
        """Read a script from a `.json` or `.toml` file."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScriptError("", f"cannot read the script: {exc.strerror}", path) from exc
        try:
            if path.suffix == ".toml":
                import tomllib  # noqa: PLC0415  # only TOML scripts pay for it

                data: Any = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ScriptError("", f"not valid {path.suffix[1:] or 'JSON'}: {exc}", path) from exc
        if not isinstance(data, dict):
            raise ScriptError("", "the top level must be a table/object", path)
        return _Reader(path).script(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that `from_dict` reads back into an equal script."""
        return {
            "final_text": self.final_text,
            "conversations": [
                {"match": c.match, "turns": [_turn_to_dict(t) for t in c.turns]}
                for c in self.conversations
            ],
        }


def _turn_to_dict(turn: Turn) -> dict[str, Any]:
    out: dict[str, Any]
    if turn.kind == "text":
        out = {"text": turn.message}
    elif turn.kind == "tool_use":
        out = {"tools": [{"name": c.name, "input": dict(c.input)} for c in turn.calls]}
        if turn.message:
            out["text"] = turn.message
    elif turn.kind == "error":
        out = {"error": turn.status, "message": turn.message, "error_type": turn.error_type}
    else:
        out = {"hang": True}
    if turn.delay_s:
        out["delay_s"] = turn.delay_s
    if turn.usage is not None:
        out["usage"] = {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
        }
    return out


_TURN_KEYS: Final = frozenset(
    {"text", "tool", "input", "tools", "error", "message", "error_type", "hang", "delay_s", "usage"}
)


class _Reader:
    """Reads plain script data, naming the file and key path of the first mistake."""

    def __init__(self, source: Path | None) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ScriptError:
        return ScriptError(where, problem, self.source)

    def keys(self, item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise self.fail(where or "(top level)", f"unknown key(s): {', '.join(unknown)}")

    def get(self, item: Mapping[str, Any], key: str, kind: type[_T], where: str, default: _T) -> _T:
        return self.typed(item.get(key, default), kind, f"{where}.{key}" if where else key)

    def typed(self, value: object, kind: type[_T], where: str) -> _T:
        # bool is an int to Python, never to a script author.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(where, f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    def script(self, data: Mapping[str, Any]) -> Script:
        self.keys(data, frozenset({"conversations", "final_text"}), "")
        conversations = []
        for i, raw in enumerate(self.get(data, "conversations", list, "", [])):
            where = f"conversations[{i}]"
            item = self.typed(raw, dict, where)
            self.keys(item, frozenset({"match", "turns"}), where)
            turns = self.get(item, "turns", list, where, [])
            conversations.append(
                Conversation(
                    self.get(item, "match", str, where, ""),
                    [self.turn(t, f"{where}.turns[{j}]") for j, t in enumerate(turns)],
                )
            )
        return Script(conversations, self.get(data, "final_text", str, "", DEFAULT_FINAL_TEXT))

    def turn(self, raw: object, where: str) -> Turn:
        item = self.typed(raw, dict, where)
        self.keys(item, _TURN_KEYS, where)
        delay = item.get("delay_s", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise self.fail(f"{where}.delay_s", "expected a number of seconds")
        usage = None
        if "usage" in item:
            counts = self.get(item, "usage", dict, where, {})
            self.keys(counts, frozenset({"input_tokens", "output_tokens"}), f"{where}.usage")
            usage = Usage(
                self.get(counts, "input_tokens", int, f"{where}.usage", 0),
                self.get(counts, "output_tokens", int, f"{where}.usage", 0),
            )
        text = self.get(item, "text", str, where, "")
        try:  # the Turn's own checks (status, delay) name the field at fault
            if "tool" in item or "tools" in item:
                calls = self.calls(item, where)
                return Turn.tools(calls, text=text, delay_s=delay, usage=usage)
            if "error" in item:
                return Turn.error(
                    self.get(item, "error", int, where, 500),
                    self.get(item, "message", str, where, "scripted error"),
                    error_type=self.get(item, "error_type", str, where, "") or None,
                    delay_s=delay,
                )
            if self.get(item, "hang", bool, where, False):
                return Turn.hang()
            if "text" in item:
                return Turn.text(text, delay_s=delay, usage=usage)
        except ScriptError as exc:
            if exc.source is not None or exc.where.startswith(where):
                raise
            raise self.fail(f"{where}.{exc.where}", exc.problem) from exc
        raise self.fail(where, "a turn needs one of 'text', 'tool', 'tools', 'error' or 'hang'")

    def calls(self, item: Mapping[str, Any], where: str) -> list[ToolCall]:
        if "tool" in item:
            if "tools" in item:
                raise self.fail(where, "give either 'tool' (with 'input') or 'tools', not both")
            return [
                ToolCall(
                    self.get(item, "tool", str, where, ""), self.get(item, "input", dict, where, {})
                )
            ]
        calls = []
        for k, raw in enumerate(self.get(item, "tools", list, where, [])):
            here = f"{where}.tools[{k}]"
            call = self.typed(raw, dict, here)
            self.keys(call, frozenset({"name", "input"}), here)
            calls.append(
                ToolCall(
                    self.get(call, "name", str, here, ""), self.get(call, "input", dict, here, {})
                )
            )
        if not calls:
            raise self.fail(f"{where}.tools", "must list at least one tool call")
        return calls


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


# --- the server ---------------------------------------------------------------------------

ReplyKind = Literal[
    "text", "tool_use", "error", "hang", "final", "auxiliary", "count_tokens", "other"
]


@dataclass(frozen=True)
class RecordedRequest:
    """What the server saw and how it answered, one per HTTP request.

    `conversation` is the `match` of the chosen conversation (None when nothing matched
    or the request was not a conversation turn); `turn_index` is the position used to
    pick the turn; `reply` says what was sent ("final" = past the scripted turns).
    """

    method: str
    path: str
    model: str | None
    conversation: str | None
    turn_index: int | None
    message_count: int
    tools: tuple[str, ...]
    system_chars: int
    auxiliary: bool
    reply: ReplyKind
    status: int
    prompt: str
    at: float

    def to_json(self) -> str:
        """One JSON line for the request log."""
        return json.dumps({**self.__dict__, "tools": list(self.tools)}, ensure_ascii=False)


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        return connection == "keep-alive" or (self.version != "HTTP/1.0" and connection != "close")


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    record: RecordedRequest
    delay_s: float = 0.0
    hang: bool = False


class _BadRequestError(Exception):
    """The bytes on the connection are not an HTTP/1.x request we can read."""


def _read_request(rfile: io.BufferedIOBase, wfile: io.BufferedIOBase) -> _Request | None:
    """Read one HTTP/1.x request; None when the peer closed the connection first."""
    line = rfile.readline(_MAX_LINE + 1)
    while line in {b"\r\n", b"\n"}:  # stray blank lines between requests are allowed
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequestError(f"bad request line {line[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        raw = rfile.readline(_MAX_LINE + 1)
        if raw in {b"\r\n", b"\n", b""}:
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequestError(f"bad header line {raw[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequestError("too many header lines")
    if headers.get("expect", "").lower() == "100-continue":
        wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it before the body
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(rfile)
    else:
        length = int(headers.get("content-length", "0") or "0")
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequestError(f"unacceptable Content-Length {length}")
        body = rfile.read(length)
        if len(body) < length:
            return None  # the peer went away mid-body
    return _Request(parts[0].upper(), parts[1], parts[2], headers, body)


def _read_chunked(rfile: io.BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size = int(rfile.readline(_MAX_LINE + 1).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(_MAX_LINE + 1) not in {b"\r\n", b"\n", b""}:
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise _BadRequestError("chunked body too large")
        chunks.append(rfile.read(size))
        rfile.readline(_MAX_LINE + 1)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 529, the API's "overloaded", is not a standard status
        return "Overloaded" if status == 529 else "Error"


def _http_response(
    status: int, content_type: str, body: bytes, *, head: bool = False, close: bool = False
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        f"request-id: {new_id('req')}",
        "Cache-Control: no-cache",
        *(["Connection: close"] if close else []),
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head else body)


class ScriptedModelServer:
    """Serves a `Script` over HTTP on a background thread; a context manager.

    `base_url` (no `/v1`) goes into `ANTHROPIC_BASE_URL`. Every request is recorded in
    `requests` and, given `log_path`, appended to that file as a JSON line.
    """

    def __init__(
        self,
        script: Script,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.script = script
        self._address = (host, port)
        self._log_path = log_path
        self._log: IO[str] | None = None
        self._tcp: _TcpServer | None = None
        self._serving: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []

    # lifecycle

    def start(self) -> Self:
        """Bind, start serving on a background thread, and return self."""
        if self._tcp is not None:
            raise RuntimeError("the model server is already started")
        if self._log_path is not None:
            self._log = self._log_path.open("a", encoding="utf-8")
        self._stopping.clear()
        try:
            self._tcp = _TcpServer(self._address, self)
        except OSError:
            self._close_log()
            raise
        self._serving = threading.Thread(
            target=self._tcp.serve,
            name=f"model-server:{self.port}",
            daemon=True,
        )
        self._serving.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections (hanging turns end), wait for the threads."""
        tcp, serving = self._tcp, self._serving
        if tcp is None or serving is None:
            return
        self._stopping.set()
        tcp.wake()
        serving.join(timeout)
        tcp.close_connections(deadline=time.monotonic() + timeout)
        tcp.server_close()
        self._tcp = self._serving = None
        self._close_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # what callers read

    @property
    def port(self) -> int:
        if self._tcp is None:
            raise RuntimeError("the model server is not started")
        return int(self._tcp.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL for `ANTHROPIC_BASE_URL` (the CLI adds `/v1/...` itself)."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests recorded so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(
        self,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[RecordedRequest], bool] | None = None,
    ) -> list[RecordedRequest]:
        """Block until at least `count` recorded requests satisfy `where`; return them.

        Raises TimeoutError after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._requests if where is None or where(r)]
                left = deadline - time.monotonic()
                if len(found) >= count:
                    return found
                if left <= 0:
                    raise TimeoutError(f"saw {len(found)} of {count} requests in {timeout} s")
                self._changed.wait(left)

    # serving (called on connection threads)

    def _serve_connection(self, rfile: io.BufferedIOBase, wfile: io.BufferedIOBase) -> None:
        while not self._stopping.is_set():
            try:
                request = _read_request(rfile, wfile)
            except (_BadRequestError, ValueError):
                wfile.write(_http_response(400, "application/json", b"{}"))
                return
            if request is None:
                return
            answer = self._answer(request)
            self._record(answer.record)
            if answer.hang:
                self._stopping.wait()
                return
            if answer.delay_s and self._stopping.wait(answer.delay_s):
                return
            head = request.method == "HEAD"
            close = not request.keep_alive
            wfile.write(
                _http_response(
                    answer.status, answer.content_type, answer.body, head=head, close=close
                )
            )
            if close:
                return

    def _answer(self, request: _Request) -> _Answer:
        path = request.path.rstrip("/")
        is_post = request.method == "POST"
        body: dict[str, Any] = {}
        if is_post and path in {"/v1/messages", "/v1/messages/count_tokens"}:
            try:
                parsed = json.loads(request.body or b"{}")
            except ValueError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else {}
        model = body.get("model") if isinstance(body.get("model"), str) else None
        messages = body.get("messages")
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            model=model,
            conversation=None,
            turn_index=None,
            message_count=len(messages) if isinstance(messages, list) else 0,
            tools=tool_names(body),
            system_chars=system_chars(body),
            auxiliary=False,
            reply="other",
            status=200,
            prompt=prompt_text(body)[-_PROMPT_TAIL:],
            at=time.time(),
        )
        if not is_post or path not in {"/v1/messages", "/v1/messages/count_tokens"}:
            return _Answer(200, "application/json", b"{}", record)
        tokens = estimate_tokens(len(request.body))
        if path.endswith("count_tokens"):
            reply = json.dumps({"input_tokens": tokens}).encode()
            return _Answer(200, "application/json", reply, _replace(record, reply="count_tokens"))
        if is_auxiliary(body):
            stream = render_stream(
                Turn.text(AUXILIARY_TEXT), model=model or "", input_tokens=tokens
            )
            return _Answer(
                200,
                "text/event-stream",
                stream,
                _replace(record, auxiliary=True, reply="auxiliary"),
            )
        conversation = self.script.conversation_for(prompt_text(body))
        position = conversation_position(body)
        turn = self.script.turn_at(conversation, position)
        past_end = conversation is None or position >= len(conversation.turns)
        record = _replace(
            record,
            conversation=None if conversation is None else conversation.match,
            turn_index=position,
            reply="final" if past_end else turn.kind,
        )
        if turn.kind == "hang":
            return _Answer(200, "text/event-stream", b"", record, hang=True)
        if turn.kind == "error":
            return _Answer(
                turn.status,
                "application/json",
                render_error(turn),
                _replace(record, status=turn.status),
                delay_s=turn.delay_s,
            )
        stream = render_stream(turn, model=model or "", input_tokens=tokens)
        return _Answer(200, "text/event-stream", stream, record, delay_s=turn.delay_s)

    def _record(self, record: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(record)
            if self._log is not None:
                self._log.write(record.to_json() + "\n")
                self._log.flush()
            self._changed.notify_all()


def _replace(record: RecordedRequest, **changes: Any) -> RecordedRequest:
    return RecordedRequest(**{**record.__dict__, **changes})


class _TcpServer(socketserver.ThreadingTCPServer):
    """Threads per connection, tracked so that `stop` can cut and join every one."""

    allow_reuse_address = True
    daemon_threads = True  # never keep the interpreter alive; `stop` joins them anyway
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: ScriptedModelServer) -> None:
        self.owner = owner
        self._live: dict[threading.Thread, socket.socket] = {}
        self._live_lock = threading.Lock()
        super().__init__(address, _Handler)
        self._wake_r, self._wake_w = socket.socketpair()

    def serve(self) -> None:
        """Accept connections until `wake` (unlike `serve_forever`, without polling)."""
        while True:
            readable, _, _ = select.select([self.socket, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            self.handle_request()

    def wake(self) -> None:
        self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def process_request(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: Any,
    ) -> None:
        assert isinstance(request, socket.socket)  # noqa: S101  # a TCP server's requests
        thread = threading.Thread(
            target=self._run, args=(request, client_address), name="model-server-conn", daemon=True
        )
        with self._live_lock:  # registered before it runs: `stop` never misses one
            self._live[thread] = request
        thread.start()

    def _run(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client went away; nothing to answer
        finally:
            self.shutdown_request(request)
            with self._live_lock:
                self._live.pop(threading.current_thread(), None)

    def close_connections(self, deadline: float) -> None:
        with self._live_lock:
            live = dict(self._live)
        for sock in live.values():
            with contextlib.suppress(OSError):  # already closed by its thread
                sock.shutdown(socket.SHUT_RDWR)
        for thread in live:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(socketserver.StreamRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        self.server.owner._serve_connection(self.rfile, self.wfile)


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a script until SIGTERM or SIGINT; print the base URL as the only stdout line."""
    import argparse  # noqa: PLC0415  # only the command line needs these
    import signal  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m agent_pool.testing.model_server",
        description="Serve a scripted stand-in for the Anthropic Messages API.",
    )
    parser.add_argument("--script", type=Path, required=True, help="a .json or .toml script")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    try:
        script = Script.load(args.script)
    except ScriptError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ScriptedModelServer(script, host=args.host, port=args.port, log_path=args.log) as server:
        if args.port_file is not None:
            temp = args.port_file.with_name(f".{args.port_file.name}.{os.getpid()}.tmp")
            temp.write_text(f"{server.port}\n", encoding="utf-8")
            temp.replace(args.port_file)
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        while not stop.wait(1.0):
            pass  # a bounded wait keeps signal delivery prompt on every platform
    return 0


if __name__ == "__main__":
    sys.exit(main())
