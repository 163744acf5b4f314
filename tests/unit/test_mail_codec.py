"""Parsing and composing mail files, including hostile and sloppy input."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_pool.errors import MailError
from agent_pool.mail import (
    REQUIRED_KEYS,
    WORK_TYPES,
    Message,
    MessageType,
    Priority,
    codec,
    compose_mail,
    parse_mail,
)
from agent_pool.names import MESSAGE_ID_PATTERN, NAME_PATTERN

BASE_HEADER = {"id": "t-0001", "from": "concierge", "to": "backend", "type": "task"}


def mail(
    header: dict[str, str | None] | None = None, body: str = "Do the thing.\n", **extra: str
) -> bytes:
    """A mail file from `key: raw YAML value` pairs (None values drop the key)."""
    fields = {**BASE_HEADER, **(header or {}), **extra}
    lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
    return ("---\n" + "\n".join(lines) + "\n---\n" + body).encode()


def problem(data: bytes, max_bytes: int = 1 << 20) -> str:
    with pytest.raises(MailError) as info:
        parse_mail(data, max_bytes=max_bytes)
    return str(info.value)


# --- the happy path ---------------------------------------------------------------


def test_parses_the_interface_example() -> None:
    data = b"""---
id: t-0001                 # comments are fine
from: concierge
to: backend
type: task
in-reply-to: t-0000
depends-on: [t-0000]
priority: urgent
contracts: [auth-api]
timestamp: 2026-11-24T10:00:00Z
---
Markdown body.
"""
    msg = parse_mail(data)
    assert msg == Message(
        id="t-0001",
        sender="concierge",
        to="backend",
        type=MessageType.TASK,
        body="Markdown body.\n",
        in_reply_to="t-0000",
        depends_on=("t-0000",),
        priority=Priority.URGENT,
        contracts=("auth-api",),
        timestamp=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    )


def test_optional_fields_default() -> None:
    msg = parse_mail(mail())
    assert msg.priority is Priority.NORMAL
    assert msg.depends_on == ()
    assert msg.contracts == ()
    assert msg.in_reply_to is None
    assert msg.cancels is None
    assert msg.timestamp is None


def test_empty_and_null_optional_values_mean_absent() -> None:
    msg = parse_mail(mail({"in-reply-to": "", "depends-on": "~", "contracts": "null"}))
    assert msg.in_reply_to is None
    assert msg.depends_on == ()
    assert msg.contracts == ()


def test_priority_rank_orders_urgent_first() -> None:
    ranked = sorted(Priority, key=lambda p: p.rank, reverse=True)
    assert ranked == [Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW]
    assert parse_mail(mail(priority="low")).priority is Priority.LOW


def test_body_is_kept_verbatim() -> None:
    body = "  leading\r\n---\r\n\ttrailing  \n\n\u00e9\u4e2d\U0001f600 no newline"
    assert parse_mail(mail(body=body)).body == body


def test_closing_line_at_end_of_file_gives_empty_body() -> None:
    data = b"---\nid: n-1\nfrom: a\nto: b\ntype: notify\n---"
    assert parse_mail(data).body == ""


# --- YAML implicit typing must not leak in ----------------------------------------


def test_to_no_stays_the_string_no() -> None:
    assert parse_mail(mail(to="no")).to == "no"


def test_id_0001_stays_a_string() -> None:
    assert parse_mail(mail(id="0001")).id == "0001"


def test_quoted_null_is_a_value_not_absence() -> None:
    assert parse_mail(mail(to="'null'")).to == "null"


def test_explicit_yaml_tags_do_not_change_the_value() -> None:
    assert parse_mail(mail(id="!!int 0001")).id == "0001"


def test_pure_python_yaml_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without libyaml the fallback loader marks plain scalars differently (None, not "").
    data = mail({"id": "0001", "to": "'null'", "in-reply-to": "", "depends-on": "[a, b]"})
    with_libyaml = parse_mail(data)
    monkeypatch.setattr(codec, "_LOADER", yaml.BaseLoader)
    assert parse_mail(data) == with_libyaml
    assert (with_libyaml.id, with_libyaml.to, with_libyaml.in_reply_to) == ("0001", "null", None)


# --- line endings and BOM ---------------------------------------------------------


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def test_crlf_file() -> None:
    msg = parse_mail(crlf(mail(body="line 1\nline 2\n")))
    assert msg.to == "backend"
    assert msg.body == "line 1\r\nline 2\r\n"


def test_bom_file() -> None:
    assert parse_mail(b"\xef\xbb\xbf" + mail()) == parse_mail(mail())


def test_bom_and_crlf_file() -> None:
    msg = parse_mail(b"\xef\xbb\xbf" + crlf(mail(body="x\n")))
    assert msg.id == "t-0001"
    assert msg.body == "x\r\n"


def test_delimiters_may_have_trailing_spaces() -> None:
    data = b"--- \nid: a\nfrom: b\nto: c\ntype: notify\n---\t\nbody"
    assert parse_mail(data).body == "body"


# --- malformed files --------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\r\n"])
def test_empty_file(data: bytes) -> None:
    assert "mail is empty" in problem(data)


def test_nul_bytes_are_not_text() -> None:
    assert "not text" in problem(mail(body="a\x00b"))


def test_random_binary_is_not_text() -> None:
    data = random.Random(7).randbytes(4096) + b"\x00"  # noqa: S311  # test data, not secrets
    assert "not text" in problem(data)


def test_invalid_utf8_is_not_text() -> None:
    assert "invalid UTF-8 at byte" in problem(mail(body="ok") + b"\xff\xfe")


def test_five_megabyte_body_is_over_the_default_limit() -> None:
    data = mail(body="x" * (5 << 20))
    assert f"mail is {len(data)} bytes, the limit is {1 << 20}" in problem(data)


def test_limit_is_configurable() -> None:
    data = mail()
    assert "the limit is 10" in problem(data, max_bytes=10)
    assert parse_mail(data, max_bytes=len(data)).id == "t-0001"


def test_missing_front_matter() -> None:
    assert "missing front matter" in problem(b"Just a note.\n")


def test_front_matter_must_come_first() -> None:
    assert "missing front matter" in problem(b"\n" + mail())


def test_unterminated_front_matter() -> None:
    assert "unterminated front matter" in problem(b"---\nid: a\nfrom: b\n")


def test_empty_header() -> None:
    assert "header is empty" in problem(b"---\n# nothing\n---\nbody")


@pytest.mark.parametrize("header", [b"- a\n- b\n", b"just words\n"])
def test_header_not_a_mapping(header: bytes) -> None:
    assert "header is not a mapping" in problem(b"---\n" + header + b"---\nbody")


def test_yaml_syntax_error_names_the_line() -> None:
    data = b"---\nid: a\nfrom: b\n  to: c\ntype: task\n---\nbody"
    message = problem(data)
    assert "header is not valid YAML: line 4:" in message
    assert "\n" not in message


def test_duplicate_header_key() -> None:
    data = b"---\nid: a\nfrom: b\nto: c\nto: d\ntype: notify\n---\n"
    assert "header key 'to' appears more than once" in problem(data)


def test_source_is_named_in_errors() -> None:
    with pytest.raises(MailError) as info:
        parse_mail(mail(to="Backend"), source="postoffice/t-0001.md")
    assert info.value.source == "postoffice/t-0001.md"
    assert str(info.value).startswith("postoffice/t-0001.md: invalid 'to' 'Backend'")


# --- header keys and fields -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("prio", "priority"),
        ("sender", "from"),
        ("in_reply_to", "in-reply-to"),
        ("From", "from"),
        ("dependson", "depends-on"),
    ],
)
def test_unknown_header_key_suggests(key: str, suggestion: str) -> None:
    message = problem(mail({key: "x"}))
    assert f"unknown header key '{key}' (did you mean '{suggestion}'?)" in message


def test_unknown_header_key_without_close_match_lists_keys() -> None:
    assert "unknown header key 'xyzzy' (known keys: id, from, to" in problem(mail(xyzzy="1"))


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_field(key: str) -> None:
    assert f"missing required field '{key}'" in problem(mail({key: None}))


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_empty_required_field(key: str) -> None:
    assert f"field '{key}' is empty" in problem(mail({key: ""}))


def test_unknown_type() -> None:
    assert "unknown type 'bogus' (expected one of: task | question" in problem(mail(type="bogus"))


def test_unknown_priority() -> None:
    assert "unknown priority 'asap'" in problem(mail(priority="asap"))


@pytest.mark.parametrize(
    "bad_id",
    ["'has space'", "../x", "/etc", ".hidden", "a" * 129, "'a/b'", "-dash"],
)
def test_bad_id(bad_id: str) -> None:
    assert "invalid 'id'" in problem(mail(id=bad_id))


@pytest.mark.parametrize("bad_to", ["../../etc", "a/b", "Backend", "'Back End'", "_x", "a" * 65])
def test_bad_recipient(bad_to: str) -> None:
    assert "invalid 'to'" in problem(mail(to=bad_to))


def test_bad_sender() -> None:
    assert "invalid 'from' '../boss'" in problem(mail({"from": "../boss"}))


@pytest.mark.parametrize("key", ["to", "type", "priority", "in-reply-to"])
def test_list_where_a_single_value_belongs(key: str) -> None:
    assert f"field '{key}' must be a single value, not a list" in problem(mail({key: "[a, b]"}))


def test_mapping_where_a_single_value_belongs() -> None:
    assert "field 'to' must be a single value, not a mapping" in problem(mail(to="{a: b}"))


def test_response_requires_in_reply_to() -> None:
    message = problem(mail(type="response"))
    assert "missing required field 'in-reply-to'" in message


def test_response_with_in_reply_to() -> None:
    msg = parse_mail(mail({"type": "response", "id": "r-1", "in-reply-to": "t-0001"}))
    assert msg.in_reply_to == "t-0001"


def test_in_reply_to_must_not_be_own_id() -> None:
    message = problem(mail({"type": "response", "in-reply-to": "t-0001"}))
    assert "'in-reply-to' must not be the message's own id" in message


def test_cancel_requires_cancels() -> None:
    assert "missing required field 'cancels'" in problem(mail(type="cancel", body=""))


def test_cancel_with_empty_body() -> None:
    msg = parse_mail(mail(type="cancel", cancels="t-0002", body=""))
    assert msg.cancels == "t-0002"
    assert msg.body == ""


def test_cancels_only_on_cancel_mail() -> None:
    assert "field 'cancels' is only allowed on cancel mail" in problem(mail(cancels="t-2"))


def test_depends_on_scalar_is_one_element() -> None:
    assert parse_mail(mail({"depends-on": "t-0000"})).depends_on == ("t-0000",)


def test_depends_on_flow_and_block_lists() -> None:
    assert parse_mail(mail({"depends-on": "[a, b]"})).depends_on == ("a", "b")
    assert parse_mail(mail({"depends-on": "\n  - a\n  - b"})).depends_on == ("a", "b")


def test_depends_on_own_id() -> None:
    message = problem(mail({"depends-on": "[t-0000, t-0001]"}))
    assert "field 'depends-on' contains the message's own id 't-0001'" in message


def test_depends_on_duplicates() -> None:
    assert "field 'depends-on' lists 'a' more than once" in problem(mail({"depends-on": "[a, a]"}))


def test_depends_on_only_on_work_mail() -> None:
    message = problem(mail({"type": "notify", "depends-on": "a"}))
    assert "field 'depends-on' is only allowed on task and question mail" in message


def test_depends_on_bad_entry() -> None:
    assert "invalid 'depends-on' '../x'" in problem(mail({"depends-on": "[a, ../x]"}))


@pytest.mark.parametrize("value", ["[a, [b]]", "[a, ~]", "{a: b}"])
def test_depends_on_wrong_shape(value: str) -> None:
    assert "field 'depends-on' must be a list of ids" in problem(mail({"depends-on": value}))


def test_contracts_are_ids() -> None:
    assert parse_mail(mail(contracts="[auth-api, billing.v2]")).contracts == (
        "auth-api",
        "billing.v2",
    )
    assert "invalid 'contracts'" in problem(mail(contracts="'a b'"))


@pytest.mark.parametrize("kind", ["task", "question"])
def test_work_mail_needs_a_body(kind: str) -> None:
    assert f"the body of {kind} mail must not be empty" in problem(mail(type=kind, body=" \n"))


@pytest.mark.parametrize("kind", ["notify", "handoff"])
def test_other_mail_may_have_an_empty_body(kind: str) -> None:
    assert parse_mail(mail(type=kind, body="")).body == ""


def test_timestamp_with_offset_is_normalised_to_utc() -> None:
    msg = parse_mail(mail(timestamp="2026-11-24T12:00:00+02:00"))
    assert msg.timestamp == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert msg.timestamp is not None
    assert msg.timestamp.tzinfo is UTC


def test_naive_timestamp_is_taken_as_utc() -> None:
    msg = parse_mail(mail(timestamp="2026-11-24T10:00:00"))
    assert msg.timestamp == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_bad_timestamp() -> None:
    assert "invalid 'timestamp' 'yesterday'" in problem(mail(timestamp="yesterday"))


# --- the model on its own ---------------------------------------------------------


def test_message_is_frozen_and_hashable() -> None:
    msg = parse_mail(mail())
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.to = "other"  # type: ignore[misc]
    assert hash(msg) == hash(parse_mail(mail()))


def test_message_rejects_text_compose_could_not_write() -> None:
    with pytest.raises(MailError, match="lone surrogate at character 1"):
        Message(id="a", sender="b", to="c", type=MessageType.NOTIFY, body="x\ud800")
    with pytest.raises(MailError, match="NUL character"):
        Message(id="a", sender="b", to="c", type=MessageType.NOTIFY, body="x\x00")


def test_message_accepts_string_enums() -> None:
    msg = Message(id="a", sender="b", to="c", type="notify", priority="high")  # type: ignore[arg-type]
    assert msg.type is MessageType.NOTIFY
    assert msg.priority is Priority.HIGH


# --- compose ----------------------------------------------------------------------


def test_compose_canonical_form() -> None:
    msg = Message(
        id="0001",
        sender="concierge",
        to="no",
        type=MessageType.QUESTION,
        body="Why?\n",
        in_reply_to="t-1",
        depends_on=("t-1", "null"),
        priority=Priority.HIGH,
        contracts=("auth-api",),
        timestamp=datetime(2026, 11, 24, 10, 0, 0, 5, tzinfo=UTC),
    )
    assert compose_mail(msg) == (
        "---\n"
        "id: '0001'\n"
        "from: concierge\n"
        "to: 'no'\n"
        "type: question\n"
        "in-reply-to: t-1\n"
        "priority: high\n"
        "depends-on: [t-1, 'null']\n"
        "contracts: [auth-api]\n"
        "timestamp: 2026-11-24T10:00:00.000005Z\n"
        "---\n"
        "Why?\n"
    )
    assert parse_mail(compose_mail(msg).encode()) == msg


def test_compose_omits_defaults() -> None:
    msg = Message(id="n-1", sender="a", to="b", type=MessageType.NOTIFY)
    assert compose_mail(msg) == "---\nid: n-1\nfrom: a\nto: b\ntype: notify\n---\n"


# --- properties -------------------------------------------------------------------

ids = st.from_regex(MESSAGE_ID_PATTERN, fullmatch=True)
names = st.from_regex(NAME_PATTERN, fullmatch=True)
# Arbitrary text plus the pieces most likely to confuse a front-matter splitter.
tricky = st.lists(
    st.sampled_from(["---", "--- ", "\n", "\r\n", "\r", " ", "\t", "id: x", "\ufeff", "\u00e9"]),
    max_size=12,
).map("".join)
bodies = st.one_of(tricky, st.text(st.characters(codec="utf-8", exclude_characters="\x00")))
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
timestamps = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(MessageType))
    own = draw(ids)
    others = ids.filter(lambda value: value != own)
    reply = draw(others if kind is MessageType.RESPONSE else st.none() | others)
    body = draw(bodies)
    if kind in WORK_TYPES and not body.strip():
        body = "work" + body
    return Message(
        id=own,
        sender=draw(names),
        to=draw(names),
        type=kind,
        body=body,
        in_reply_to=reply,
        depends_on=tuple(draw(st.lists(others, unique=True, max_size=4)))
        if kind in WORK_TYPES
        else (),
        priority=draw(st.sampled_from(Priority)),
        contracts=tuple(draw(st.lists(ids, unique=True, max_size=3))),
        cancels=draw(others) if kind is MessageType.CANCEL else None,
        timestamp=draw(st.none() | timestamps),
    )


@settings(max_examples=300, deadline=None)
@given(messages())
def test_compose_then_parse_round_trips(msg: Message) -> None:
    assert parse_mail(compose_mail(msg).encode()) == msg


@settings(deadline=None)
@given(messages())
def test_crlf_and_bom_headers_parse_the_same(msg: Message) -> None:
    text = compose_mail(msg)
    header, closing, body = text.partition("\n---\n")
    head = header + closing
    assert body == msg.body
    for variant in (
        head.replace("\n", "\r\n"),
        "\ufeff" + head,
        "\ufeff" + head.replace("\n", "\r\n"),
    ):
        assert parse_mail((variant + body).encode()) == msg


@settings(deadline=None)
@given(messages())
def test_standard_yaml_readers_see_the_same_strings(msg: Message) -> None:
    # Compose quotes values like `no` and `0001` so other tools do not retype them.
    header = compose_mail(msg).split("\n---\n", 1)[0].removeprefix("---\n")
    loaded = yaml.safe_load(header)
    assert (loaded["id"], loaded["from"], loaded["to"]) == (msg.id, msg.sender, msg.to)
    assert tuple(loaded.get("depends-on", ())) == msg.depends_on


# --- building from a mapping ------------------------------------------------------


def test_from_header_uses_header_keys() -> None:
    stamp = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    msg = Message.from_header(
        {
            "id": "t-1",
            "from": "concierge",
            "to": "backend",
            "type": "task",
            "depends-on": ["t-0"],
            "priority": "high",
            "contracts": [],
            "in-reply-to": None,
            "timestamp": stamp,
            "body": "Go.\n",
        }
    )
    assert msg == Message(
        id="t-1",
        sender="concierge",
        to="backend",
        type=MessageType.TASK,
        depends_on=("t-0",),
        priority=Priority.HIGH,
        timestamp=stamp,
        body="Go.\n",
    )


def test_from_header_reports_like_the_parser() -> None:
    with pytest.raises(MailError, match=r"unknown header key 'sender' \(did you mean 'from'\?\)"):
        Message.from_header({"id": "a", "sender": "b", "to": "c", "type": "notify"})
    with pytest.raises(MailError, match="missing required field 'to'"):
        Message.from_header({"id": "a", "from": "b", "type": "notify"})
    with pytest.raises(MailError, match="invalid 'depends-on' 'a b'"):
        Message.from_header(
            {"id": "a", "from": "b", "to": "c", "type": "task", "depends-on": ["a b"], "body": "x"}
        )
