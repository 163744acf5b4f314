"""The typed mail message and the rules every message obeys.

A frozen slotted dataclass with hand-written checks rather than a pydantic model: the
daemon parses tens of thousands of these, and the checks here are a handful of regex
matches. Errors name fields by their header keys (`from`, `in-reply-to`), because that
is what the person or agent who wrote the mail sees.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from agent_pool.errors import InvalidNameError, MailError
from agent_pool.names import MESSAGE_ID_PATTERN, NAME_PATTERN, check_message_id, check_name


class MessageType(StrEnum):
    TASK = "task"
    QUESTION = "question"
    RESPONSE = "response"
    NOTIFY = "notify"
    HANDOFF = "handoff"
    CANCEL = "cancel"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Scheduling rank: higher runs first (urgent 3 ... low 0)."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}

_TYPE_VALUES: Final = frozenset(kind.value for kind in MessageType)
_PRIORITY_VALUES: Final = frozenset(level.value for level in Priority)

# Header keys in canonical order (compose writes them so), and the attribute each sets.
HEADER_KEYS: Final = (
    "id",
    "from",
    "to",
    "type",
    "in-reply-to",
    "cancels",
    "priority",
    "depends-on",
    "contracts",
    "timestamp",
)
REQUIRED_KEYS: Final = ("id", "from", "to", "type")
_ATTRIBUTES: Final = {key: key.replace("-", "_") for key in HEADER_KEYS} | {"from": "sender"}
# Likely slips that string similarity alone would not catch.
_KEY_ALIASES: Final = {
    "sender": "from",
    "recipient": "to",
    "reply-to": "in-reply-to",
    "dependencies": "depends-on",
    "depends": "depends-on",
    "cancel": "cancels",
    "date": "timestamp",
    "time": "timestamp",
}

# Types that ask for work: only they may wait on other messages, and they need a body.
WORK_TYPES: Final = frozenset({MessageType.TASK, MessageType.QUESTION})


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One mail. Construction validates; an instance is always valid.

    `timestamp` is normalised to UTC; a naive datetime is taken to be UTC already.
    `type` and `priority` also accept their string values.
    """

    id: str
    sender: str
    to: str
    type: MessageType
    body: str = ""
    in_reply_to: str | None = None
    depends_on: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL
    contracts: tuple[str, ...] = ()
    cancels: str | None = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        _check_name(self.sender, "from")
        _check_name(self.to, "to")
        kind = _coerce_type(self.type)
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "priority", _coerce_priority(self.priority))
        self._check_references(kind)
        self._check_lists(kind)
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", _utc(self.timestamp))
        self._check_body(kind)

    @classmethod
    def from_header(cls, fields: Mapping[str, object]) -> Message:
        """Build a message from header keys (`from`, `in-reply-to`, ...) plus `body`.

        For callers that hold the fields as a mapping (the CLI, MCP tools). Values are
        Python values: lists or tuples for `depends-on`, a datetime for `timestamp`;
        None means absent.
        """
        for key in fields:
            if key not in _ATTRIBUTES and key != "body":
                raise MailError(unknown_key_problem(key))
        for key in REQUIRED_KEYS:
            if fields.get(key) is None:
                raise MailError(f"missing required field '{key}'")
        values = {_ATTRIBUTES.get(key, key): value for key, value in fields.items()}
        # Types are checked at run time by __post_init__, whatever the mapping holds.
        return cls(**{name: value for name, value in values.items() if value is not None})  # type: ignore[arg-type]

    def _check_references(self, kind: MessageType) -> None:
        if self.in_reply_to is not None:
            _check_id(self.in_reply_to, "in-reply-to")
            if self.in_reply_to == self.id:
                # A response gets its own id; reusing the task's id would collide with it.
                raise MailError("field 'in-reply-to' must not be the message's own id")
        elif kind is MessageType.RESPONSE:
            raise MailError("missing required field 'in-reply-to' (required on response mail)")
        if self.cancels is not None:
            if kind is not MessageType.CANCEL:
                raise MailError("field 'cancels' is only allowed on cancel mail")
            _check_id(self.cancels, "cancels")
            if self.cancels == self.id:
                raise MailError("field 'cancels' must not be the message's own id")
        elif kind is MessageType.CANCEL:
            raise MailError("missing required field 'cancels' (required on cancel mail)")

    def _check_lists(self, kind: MessageType) -> None:
        depends_on = _id_tuple(self.depends_on, "depends-on")
        object.__setattr__(self, "depends_on", depends_on)
        object.__setattr__(self, "contracts", _id_tuple(self.contracts, "contracts"))
        if depends_on:
            if kind not in WORK_TYPES:
                raise MailError("field 'depends-on' is only allowed on task and question mail")
            if self.id in depends_on:
                raise MailError(f"field 'depends-on' contains the message's own id {self.id!r}")

    def _check_body(self, kind: MessageType) -> None:
        if not isinstance(self.body, str):
            raise MailError("the body must be text")
        if kind in WORK_TYPES and not self.body.strip():
            raise MailError(f"the body of {kind} mail must not be empty")
        # Refuse what parse would refuse (NUL) or compose could not write (lone
        # surrogates), so `parse_mail(compose_mail(m)) == m` holds for every m. Both
        # checks run at C speed; a regex over a large body was ten times slower.
        if "\x00" in self.body:
            raise MailError("the body contains a NUL character, which is not allowed in mail")
        if not self.body.isascii():
            try:
                self.body.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise MailError(
                    f"the body is not valid text (a lone surrogate at character {exc.start})"
                ) from None


def _check_id(value: object, key: str) -> None:
    # Fast path first: the regex alone; the helper only runs to word the error.
    if isinstance(value, str) and MESSAGE_ID_PATTERN.fullmatch(value) is not None:
        return
    try:
        check_message_id(value, f"'{key}'")  # type: ignore[arg-type]  # non-str is reported
    except InvalidNameError as exc:
        raise MailError(exc.message) from exc


def _check_name(value: object, key: str) -> None:
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None:
        return
    try:
        check_name(value, f"'{key}'")  # type: ignore[arg-type]  # non-str is reported
    except InvalidNameError as exc:
        raise MailError(exc.message) from exc


def _coerce_type(value: object) -> MessageType:
    if isinstance(value, MessageType):
        return value
    if isinstance(value, str) and value in _TYPE_VALUES:
        return MessageType(value)
    raise MailError(f"unknown type {value!r} (expected one of: {' | '.join(MessageType)})")


def _coerce_priority(value: object) -> Priority:
    if isinstance(value, Priority):
        return value
    if isinstance(value, str) and value in _PRIORITY_VALUES:
        return Priority(value)
    raise MailError(f"unknown priority {value!r} (expected one of: {' | '.join(Priority)})")


def _id_tuple(values: object, key: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise MailError(f"field '{key}' must be a list of ids")
    seen: set[str] = set()
    for value in values:
        _check_id(value, key)
        if value in seen:
            raise MailError(f"field '{key}' lists {value!r} more than once")
        seen.add(value)
    return tuple(values)


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise MailError("field 'timestamp' must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def unknown_key_problem(key: str) -> str:
    """One line saying `key` is not a header key, with the likely intended one."""
    normal = key.strip().lower().replace("_", "-")
    guess = _KEY_ALIASES.get(normal) or (normal if normal in _ATTRIBUTES else None)
    if guess is None:
        close = difflib.get_close_matches(normal, HEADER_KEYS, n=1, cutoff=0.6)
        guess = close[0] if close else None
    hint = f"did you mean '{guess}'?" if guess else f"known keys: {', '.join(HEADER_KEYS)}"
    return f"unknown header key {key!r} ({hint})"
