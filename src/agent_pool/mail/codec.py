"""Mail files: parse bytes into a `Message` and compose a `Message` back into text.

A mail file is an optional UTF-8 BOM, a `---` line, a YAML header, a `---` line and
the body, kept byte for byte. The header is read with YAML's *base* loader, which
yields only strings, lists and mappings: `to: no` stays "no" and `id: 0001` stays
"0001" instead of becoming False and 1. Types are then checked here, field by field,
so every mistake comes back as one line naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent_pool.errors import MailError
from agent_pool.mail.message import (
    HEADER_KEYS,
    REQUIRED_KEYS,
    Message,
    Priority,
    unknown_key_problem,
)

DEFAULT_MAX_BYTES: Final = 1 << 20

# The C parser when PyYAML was built with libyaml (about 10x faster), else pure Python.
_LOADER: Final[type[yaml.BaseLoader]] = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
# Only used to ask "would a normal YAML reader take this plain scalar as a string?".
_RESOLVER: Final = yaml.resolver.Resolver()
_STR_TAG: Final = "tag:yaml.org,2002:str"
# Plain (unquoted) scalars that mean "no value"; a quoted 'null' stays a string.
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})

_BOM: Final = "\ufeff"
_OPENING: Final = re.compile(r"---[ \t]*\r?\n")
_CLOSING: Final = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
# Characters that can always stand unquoted in a YAML plain scalar (ids and names).
_PLAIN_SAFE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A header needs two levels (the mapping and a list of ids). libyaml's composer recurses
# in C without a depth check, so some 30,000 nested `[` crash the whole process
# (SIGSEGV): nesting is bounded before anything is composed.
_MAX_NESTING: Final = 32
# Every nested collection opens with one of these indicators, so a header holding fewer
# of them than the limit cannot nest too deeply, and the event check can be skipped.
_NESTING_INDICATORS: Final = "[{-?:"


def parse_mail(
    data: bytes, *, source: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Message:
    """Parse one mail file. Raises `MailError` (naming `source`) on any problem."""
    if len(data) > max_bytes:
        raise MailError(f"mail is {len(data)} bytes, the limit is {max_bytes}", source)
    text = _decode(data, source)
    header, body = _split(text, source)
    raw = _read_header(header, source)
    try:
        return _build(raw, body)
    except MailError as exc:
        # The same problem, now naming the file it came from.
        raise MailError(exc.problem, source) from None


def compose_mail(msg: Message) -> str:
    """The canonical text of `msg`; `parse_mail(compose_mail(m).encode()) == m`."""
    lines = [
        "---",
        f"id: {_scalar_text(msg.id)}",
        f"from: {_scalar_text(msg.sender)}",
        f"to: {_scalar_text(msg.to)}",
        f"type: {msg.type.value}",
    ]
    if msg.in_reply_to is not None:
        lines.append(f"in-reply-to: {_scalar_text(msg.in_reply_to)}")
    if msg.cancels is not None:
        lines.append(f"cancels: {_scalar_text(msg.cancels)}")
    if msg.priority is not Priority.NORMAL:
        lines.append(f"priority: {msg.priority.value}")
    if msg.depends_on:
        lines.append(f"depends-on: {_list_text(msg.depends_on)}")
    if msg.contracts:
        lines.append(f"contracts: {_list_text(msg.contracts)}")
    if msg.timestamp is not None:
        stamp = msg.timestamp.astimezone(UTC).isoformat()
        lines.append(f"timestamp: {stamp.removesuffix('+00:00')}Z")
    lines.append("---")
    return "\n".join(lines) + "\n" + msg.body


def _decode(data: bytes, source: str | None) -> str:
    if not data.strip():
        raise MailError("mail is empty", source)
    if b"\x00" in data:
        raise MailError("mail is not text (it contains a NUL byte)", source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MailError(f"mail is not text (invalid UTF-8 at byte {exc.start})", source) from None
    return text.removeprefix(_BOM)


def _split(text: str, source: str | None) -> tuple[str, str]:
    opening = _OPENING.match(text)
    if opening is None:
        raise MailError("missing front matter: mail must start with a '---' line", source)
    closing = _CLOSING.search(text, opening.end())
    if closing is None:
        raise MailError("unterminated front matter: no closing '---' line", source)
    # The body is everything after the closing line, untouched (CRLF and all).
    return text[opening.end() : closing.start()], text[closing.end() :]


def _read_header(header: str, source: str | None) -> dict[str, Node]:
    try:
        _check_nesting(header, source)
        root = yaml.compose(header, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise MailError(f"header is not valid YAML: {_describe(exc)}", source) from None
    except yaml.reader.ReaderError as exc:
        # Its own text runs over two lines and names "<unicode string>", not the file.
        problem = f"character U+{exc.character:04X} is not allowed ({exc.reason})"
        raise MailError(f"header is not valid YAML: {problem}", source) from None
    except yaml.YAMLError as exc:
        raise MailError(f"header is not valid YAML: {' '.join(str(exc).split())}", source) from None
    if root is None:
        raise MailError("header is empty", source)
    if not isinstance(root, MappingNode):
        raise MailError("header is not a mapping of 'key: value' lines", source)
    fields: dict[str, Node] = {}
    for key_node, value_node in root.value:
        if not isinstance(key_node, ScalarNode):
            raise MailError("header keys must be plain words", source)
        key = key_node.value
        if key in fields:
            raise MailError(f"header key '{key}' appears more than once", source)
        fields[key] = value_node
    for key in fields:
        if key not in HEADER_KEYS:
            raise MailError(unknown_key_problem(key), source)
    return fields


def _check_nesting(header: str, source: str | None) -> None:
    if sum(header.count(char) for char in _NESTING_INDICATORS) <= _MAX_NESTING:
        return
    too_deep = MailError(f"header is nested too deeply (over {_MAX_NESTING} levels)", source)
    depth = 0
    # Parsing is lazy and stops at the first level too deep: libyaml takes time
    # quadratic in the depth, so reading a whole 1 MiB bracket bomb would hang.
    try:
        for event in yaml.parse(header, Loader=_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_NESTING:
                    raise too_deep
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        # Newer libyaml releases (PyYAML 6.0.4) stop deep nesting themselves, while
        # scanning ahead; say it the same way whichever release is installed.
        if "nesting depth" in str(exc):
            raise too_deep from None
        # Any other problem is reported by the full parse that follows, with its line.


def _describe(exc: yaml.MarkedYAMLError) -> str:
    # +2: YAML counts lines from 0 and the header starts on the file's second line.
    text = exc.problem or "syntax error"
    if exc.problem_mark is not None:
        text = f"line {exc.problem_mark.line + 2}: {text}"
    if exc.context and exc.context_mark is not None:
        text += f" ({exc.context} on line {exc.context_mark.line + 2})"
    return text


def _build(fields: dict[str, Node], body: str) -> Message:
    for key in REQUIRED_KEYS:
        if key not in fields:
            raise MailError(f"missing required field '{key}'")
    required = {key: _required(fields, key) for key in REQUIRED_KEYS}
    priority = _optional(fields, "priority")
    stamp = _optional(fields, "timestamp")
    return Message(
        id=required["id"],
        sender=required["from"],
        to=required["to"],
        type=required["type"],  # type: ignore[arg-type]  # Message coerces and reports
        body=body,
        in_reply_to=_optional(fields, "in-reply-to"),
        cancels=_optional(fields, "cancels"),
        priority=Priority.NORMAL if priority is None else priority,  # type: ignore[arg-type]
        depends_on=_id_list(fields, "depends-on"),
        contracts=_id_list(fields, "contracts"),
        timestamp=None if stamp is None else _timestamp(stamp),
    )


def _optional(fields: dict[str, Node], key: str) -> str | None:
    node = fields.get(key)
    if node is None:
        return None
    if not isinstance(node, ScalarNode):
        shape = "list" if isinstance(node, SequenceNode) else "mapping"
        raise MailError(f"field '{key}' must be a single value, not a {shape}")
    if _is_null(node):
        return None
    value: str = node.value
    return value


def _required(fields: dict[str, Node], key: str) -> str:
    value = _optional(fields, key)
    if value is None:
        raise MailError(f"field '{key}' is empty")
    return value


def _id_list(fields: dict[str, Node], key: str) -> tuple[str, ...]:
    node = fields.get(key)
    if node is None or isinstance(node, ScalarNode):
        # A single scalar is a one-element list; an empty value means none.
        single = _optional(fields, key)
        return () if single is None else (single,)
    if not isinstance(node, SequenceNode):
        raise MailError(f"field '{key}' must be a list of ids, not a mapping")
    items: list[str] = []
    for item in node.value:
        if not isinstance(item, ScalarNode) or _is_null(item):
            raise MailError(f"field '{key}' must be a list of ids (found an empty or nested item)")
        items.append(item.value)
    return tuple(items)


def _is_null(node: ScalarNode) -> bool:
    # Plain style is None from the Python parser and "" from libyaml.
    return not node.style and node.value in _NULLS


def _timestamp(value: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise MailError(
            f"invalid 'timestamp' {value!r}: use ISO 8601, e.g. 2026-11-24T10:00:00Z"
        ) from None
    if stamp.tzinfo is None:
        return stamp  # taken as UTC already
    try:
        # Converted here because a time at the edge of the calendar, with an offset
        # (0001-01-01T00:00+01:00), has no UTC equivalent: OverflowError otherwise.
        return stamp.astimezone(UTC)
    except OverflowError:
        raise MailError(f"invalid 'timestamp' {value!r}: out of range in UTC") from None


def _scalar_text(value: str) -> str:
    # Quote anything a standard YAML reader would turn into a bool, number, null or
    # date (`no`, `0001`, `null`), so other tools see the same strings we do.
    if _PLAIN_SAFE.fullmatch(value) and _resolved_tag(value) == _STR_TAG:
        return value
    return "'" + value.replace("'", "''") + "'"


def _list_text(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_scalar_text(value) for value in values) + "]"


def _resolved_tag(value: str) -> str:
    tag: str = _RESOLVER.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag
