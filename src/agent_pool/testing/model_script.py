"""The script of the scripted model server: conversations, turns, and their files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from agent_pool.errors import AgentPoolError

_T = TypeVar("_T")

TurnKind = Literal["text", "tool_use", "error", "hang"]

DEFAULT_FINAL_TEXT: Final = "done"
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
