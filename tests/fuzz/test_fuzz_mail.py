"""Fuzzing the mail parser: any bytes give a `Message` or one `MailError` line.

Every message the parser accepts must survive `compose_mail` and a second parse
unchanged, whatever spelling (quoting, block lists, anchors, CRLF, BOM) it came in.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_pool.errors import MailError
from agent_pool.mail import (
    HEADER_KEYS,
    WORK_TYPES,
    Message,
    MessageType,
    Priority,
    compose_mail,
    parse_mail,
)
from agent_pool.names import MESSAGE_ID_PATTERN, NAME_PATTERN
from tests.fuzz.budget import fuzz_settings

pytestmark = pytest.mark.faults

# A header that would crash libyaml's composer (C recursion, SIGSEGV) if ever composed.
BRACKET_BOMB = b"---\nid: " + b"[" * 60_000 + b"]" * 60_000 + b"\n---\n"


def parse_or_refuse(data: bytes) -> Message | None:
    """Parse; a refusal must be one `MailError` line, an acceptance must round-trip."""
    try:
        message = parse_mail(data)
    except MailError as exc:
        refusal = str(exc)
    else:
        assert isinstance(message, Message)
        again = parse_mail(compose_mail(message).encode("utf-8"))
        assert again == message
        return message
    assert refusal.strip(), "an empty error message"
    assert "\n" not in refusal, f"a multi-line error: {refusal!r}"
    return None


# --- fully random bytes ------------------------------------------------------------


@given(st.binary(max_size=4096))
@example(b"---\n---\n")
@example(b"\xef\xbb\xbf---\r\nid: a\r\n---\r\n")
@example(b"---\nid: \xff\n---\n")
@example(b"---\nid: a\x00\n---\n")
@fuzz_settings(300)
def test_random_bytes_give_a_message_or_a_mail_error(data: bytes) -> None:
    parse_or_refuse(data)


# --- random front matter -----------------------------------------------------------

ids = st.from_regex(MESSAGE_ID_PATTERN, fullmatch=True)
_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
names = st.from_regex(NAME_PATTERN, fullmatch=True)

YAML_SPECIALS = [
    "&anchor t-1",
    "*anchor",
    "*undefined",
    "&a [*a]",
    "&a {x: *a}",
    "!!python/object:os.system t-1",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!map {a: b}",
    "!!seq [a]",
    "!!str 0001",
    "!!int 12",
    "!custom value",
    "!<tag:yaml.org,2002:str> t-1",
    "[a, [b, [c]]]",
    "{a: b, c: [d]}",
    "[a: b]",
    "? complex",
    "|\n  block\n  scalar",
    ">-\n  folded\n  text",
    "'it''s quoted'",
    '"escapes \\x41 \\u263a \\0 \\N \\_ \\L \\P"',
    '"bad escape \\q"',
    "~",
    "null",
    "NULL",
    "''",
    '""',
    "yes",
    "no",
    "0001",
    "0x1F",
    "1e3",
    ".inf",
    ".NaN",
    "2026-11-24",
    "2026-11-24T10:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-13-45T99:99:99",
    "<<: *anchor",
    "%YAML 1.1",
    "---",
    "...",
    "- a\n- b",
    "\n  - a\n  - - b",
    "\ta",
    "a #comment",
    "a\u2028b",
    "\ufeffa",
    "[unclosed",
    "{unclosed: [",
    "@reserved",
    "`reserved",
]


@st.composite
def nested_flow(draw: st.DrawFn) -> str:
    # Mostly shallow; sometimes deep enough to have crashed libyaml's composer.
    depth = draw(st.integers(0, 120) | st.sampled_from([1_000, 40_000]))
    opener = draw(st.sampled_from(["[", "{a: ", "[{a: "]))
    closer = {"[": "]", "{a: ": "}", "[{a: ": "}]"}[opener]
    return opener * depth + "x" + closer * draw(st.integers(0, depth))


@st.composite
def nested_block(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 80))
    if draw(st.booleans()):
        return "- " * depth + "x"
    return "".join(f"\n{' ' * (level + 1)}k{level}:" for level in range(depth)) + " x"


# Any instant with any whole-minute offset, as ISO text: the calendar's edges included.
_ANY_OFFSET: st.SearchStrategy[tzinfo | None] = st.none() | _OFFSETS
iso_times = st.one_of(
    st.datetimes(timezones=_ANY_OFFSET),
    st.datetimes(max_value=datetime(1, 1, 1, 23, 59), timezones=_ANY_OFFSET),
    st.datetimes(min_value=datetime(9999, 12, 31), timezones=_ANY_OFFSET),
).map(datetime.isoformat)

header_values = st.one_of(
    ids,
    iso_times,
    names,
    st.sampled_from([kind.value for kind in MessageType]),
    st.sampled_from([level.value for level in Priority]),
    st.sampled_from(YAML_SPECIALS),
    st.lists(ids, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
    nested_flow(),
    nested_block(),
    st.text(max_size=40),
    st.integers(1, 5000).map(lambda length: "x" * length),
)
header_keys = st.one_of(
    st.sampled_from(HEADER_KEYS),
    st.sampled_from(["sender", "date", "<<", "? id", "[id]", "id ", "ID", '"id"', "&k id"]),
    st.text(max_size=12),
)


@st.composite
def header_lines(draw: st.DrawFn) -> list[str]:
    lines = []
    for key, value in draw(st.lists(st.tuples(header_keys, header_values), max_size=14)):
        separator = draw(st.sampled_from([": ", ":", ":\t", " : ", ":  "]))
        lines.append(f"{key}{separator}{value}")
    return lines


@st.composite
def mail_files(draw: st.DrawFn) -> bytes:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    opening = draw(st.sampled_from(["---", "--- ", "---\t", "----", "", "\ufeff---"]))
    closing = draw(st.sampled_from(["---", "--- ", "...", "", "---x"]))
    parts = [opening, *draw(header_lines()), closing]
    text = newline.join(parts) + newline + draw(st.text(max_size=200))
    data = text.encode("utf-8", "surrogatepass")
    # Byte-level damage: invalid UTF-8, a NUL, a cut in the middle of a character.
    damage = draw(st.sampled_from([None, b"\xff", b"\x00", b"\xc3", b"\xed\xa0\x80"]))
    if damage is not None:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + damage + data[at:]
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


@given(mail_files())
@example(BRACKET_BOMB)
@example(b"---\nid: " + b"- " * 40_000 + b"x\n---\n")
@example(b"---\nid: n-1\nfrom: a\nto: b\ntype: notify\ntimestamp: 0001-01-01T00:00:00+01:00\n---\n")
@example(b"---\nid: n-1\nfrom: a\nto: b\ntype: notify\ntimestamp: 9999-12-31T23:59:59-01:00\n---\n")
@example(b"---\nid: t\x01\n---\n")
@fuzz_settings(400)
def test_random_front_matter_gives_a_message_or_a_mail_error(data: bytes) -> None:
    parse_or_refuse(data)


# --- regressions -------------------------------------------------------------------


def test_deeply_nested_header_is_refused_without_crashing() -> None:
    # Before the fix libyaml's composer recursed in C and killed the process (SIGSEGV).
    with pytest.raises(MailError, match="nested too deeply"):
        parse_mail(BRACKET_BOMB)


def test_deep_nesting_bomb_of_a_whole_mebibyte_is_refused_at_once() -> None:
    # libyaml needs time quadratic in the depth; the check stops at the first level over.
    data = b"---\nid: " + b"[" * 1_000_000 + b"\n---\n"
    with pytest.raises(MailError, match="nested too deeply"):
        parse_mail(data, max_bytes=2 << 20)


def test_timestamp_without_a_utc_equivalent_is_a_mail_error() -> None:
    # Before the fix: OverflowError from datetime.astimezone.
    data = (
        b"---\nid: n-1\nfrom: a\nto: b\ntype: notify\ntimestamp: 0001-01-01T00:00:00+01:00\n---\n"
    )
    with pytest.raises(MailError, match=r"'timestamp'.*out of range"):
        parse_mail(data)


def test_control_character_in_header_is_one_error_line() -> None:
    # Before the fix: YAML's reader error, over two lines and naming "<unicode string>".
    with pytest.raises(MailError) as info:
        parse_mail(b"---\nid: t\x01\n---\n", source="postoffice/x.md")
    assert str(info.value) == (
        "postoffice/x.md: header is not valid YAML: "
        "character U+0001 is not allowed (control characters are not allowed)"
    )


def _billion_laughs(levels: int, fan_out: int, last_key: str) -> bytes:
    lines = ["---", "id: t-1", "from: a", "to: b", "type: task"]
    lines.append(f"x0: &l0 [{', '.join(['lol'] * fan_out)}]")
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(f"x{level}: &l{level} [{aliases}]")
    lines.append(f"{last_key}: *l{levels - 1}")
    return ("\n".join(lines) + "\n---\nbody\n").encode()


@pytest.mark.parametrize("last_key", ["depends-on", "contracts", "id", "unknown"])
def test_alias_bomb_is_refused_without_expanding(last_key: str) -> None:
    # 10 ** 12 "lol"s if the aliases were expanded; composed, each list exists once.
    bomb = _billion_laughs(levels=12, fan_out=10, last_key=last_key)
    tracemalloc.start()
    try:
        with pytest.raises(MailError):
            parse_mail(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_recursive_alias_in_a_list_is_refused() -> None:
    data = b"---\nid: t-1\nfrom: a\nto: b\ntype: task\ndepends-on: &a [*a]\n---\nbody\n"
    with pytest.raises(MailError, match="nested item"):
        parse_mail(data)


# --- valid messages in many spellings ----------------------------------------------

# Plain spellings that YAML reads as "no value": such ids must be quoted.
_NULL_WORDS = {"null", "Null", "NULL"}
# Far enough from the ends of the calendar that every offset converts to UTC.
_TIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


@st.composite
def messages(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(MessageType))
    own_id = draw(ids)
    other_ids = ids.filter(lambda value: value != own_id)
    work = kind in WORK_TYPES
    reply = draw(other_ids) if kind is MessageType.RESPONSE else draw(st.none() | other_ids)
    body_text = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=120
    )
    body = draw(body_text.filter(str.strip) if work else body_text)
    return Message(
        id=own_id,
        sender=draw(names),
        to=draw(names),
        type=kind,
        body=body,
        in_reply_to=reply,
        cancels=draw(other_ids) if kind is MessageType.CANCEL else None,
        priority=draw(st.sampled_from(Priority)),
        depends_on=tuple(draw(st.lists(other_ids, unique=True, max_size=3))) if work else (),
        contracts=tuple(draw(st.lists(ids, unique=True, max_size=3))),
        timestamp=draw(st.none() | _TIMES | _TIMES.map(lambda t: t.replace(tzinfo=UTC))),
    )


@st.composite
def scalar_spelling(draw: st.DrawFn, value: str, anchor: str) -> str:
    """`value` quoted, tagged or anchored (`anchor`: a name unique in the header)."""
    styles = ["single", "double", "tagged", "anchored"]
    if value not in _NULL_WORDS:
        styles.append("plain")
    style = draw(st.sampled_from(styles))
    if style == "single":
        return f"'{value}'"
    if style == "double":
        return f'"{value}"'
    if style == "tagged":
        return f"!!str '{value}'"
    return f"&{anchor} '{value}'"


@st.composite
def list_spelling(draw: st.DrawFn, values: tuple[str, ...], key: str, newline: str) -> str:
    items = [draw(scalar_spelling(value, f"{key}{index}")) for index, value in enumerate(values)]
    if not values:
        return draw(st.sampled_from(["[]", "", "~", "null"]))
    if len(values) == 1 and draw(st.booleans()):
        return items[0]  # a single value stands for a one-item list
    if draw(st.booleans()):
        return "[" + ", ".join(items) + "]"
    return "".join(f"{newline}  - {item}" for item in items)


@st.composite
def spelled_mails(draw: st.DrawFn) -> tuple[Message, bytes]:
    """A valid message and one of the many files that mean it."""
    message = draw(messages())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    fields: dict[str, str] = {
        "id": draw(scalar_spelling(message.id, "id")),
        "from": draw(scalar_spelling(message.sender, "from")),
        "to": draw(scalar_spelling(message.to, "to")),
        "type": draw(scalar_spelling(message.type.value, "type")),
    }
    if message.in_reply_to is not None:
        fields["in-reply-to"] = draw(scalar_spelling(message.in_reply_to, "in-reply-to"))
    if message.cancels is not None:
        fields["cancels"] = draw(scalar_spelling(message.cancels, "cancels"))
    if message.priority is not Priority.NORMAL or draw(st.booleans()):
        fields["priority"] = draw(scalar_spelling(message.priority.value, "priority"))
    if bool(message.depends_on) or draw(st.booleans()):
        fields["depends-on"] = draw(list_spelling(message.depends_on, "d", newline))
    if bool(message.contracts) or draw(st.booleans()):
        fields["contracts"] = draw(list_spelling(message.contracts, "c", newline))
    if message.timestamp is not None:
        offset = draw(_OFFSETS)
        stamp = message.timestamp.astimezone(offset).isoformat()
        fields["timestamp"] = draw(scalar_spelling(stamp, "timestamp"))
    keys = draw(st.permutations(list(fields)))
    lines = ["---"]
    for key in keys:
        comment = draw(st.sampled_from(["", "  # a comment", "\t# another"]))
        lines.append(f"{key}: {fields[key]}{comment}")
        if draw(st.integers(0, 5)) == 0:
            lines.append("# a comment line")
    lines.append("---")
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return message, (bom + newline.join(lines) + newline + message.body).encode("utf-8")


@given(spelled_mails())
@fuzz_settings(300)
def test_every_spelling_of_a_valid_message_parses_to_it(spelled: tuple[Message, bytes]) -> None:
    message, data = spelled
    assert parse_or_refuse(data) == message


@st.composite
def mutated_mails(draw: st.DrawFn) -> bytes:
    """A valid mail with one header line replaced by, or joined with, a random one."""
    lines = compose_mail(draw(messages())).split("\n")
    closing = lines.index("---", 1)
    at = draw(st.integers(1, closing))
    replace = at < closing and draw(st.booleans())
    # Replacing a line's value under its own key reaches the checks of that field.
    own_key = lines[at].partition(":")[0] if replace else None
    key = draw(st.sampled_from([own_key]) if own_key and draw(st.booleans()) else header_keys)
    separator = draw(st.sampled_from([": ", ":", " : "]))
    values = iso_times | header_values if key == "timestamp" else header_values
    line = f"{key}{separator}{draw(values)}"
    if replace:
        lines[at] = line
    else:
        lines.insert(at, line)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@given(mutated_mails())
@fuzz_settings(300)
def test_valid_mail_with_one_random_line_gives_a_message_or_a_mail_error(data: bytes) -> None:
    parse_or_refuse(data)
