"""Line framing with a size cap, event parsing, and finding the result in a log."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_pool.session import LineFramer, parse_event, read_result_event


def feed_all(framer: LineFramer, chunks: list[bytes]) -> list[bytes]:
    lines: list[bytes] = []
    for chunk in chunks:
        lines += framer.feed(chunk)
    return lines


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_lines_in_one_chunk() -> None:
    framer = LineFramer()
    assert framer.feed(b'{"a":1}\n{"b":2}\n\n') == [b'{"a":1}', b'{"b":2}', b""]
    assert framer.pending == 0


def test_line_split_across_chunks() -> None:
    framer = LineFramer()
    assert framer.feed(b'{"type":"ass') == []
    assert framer.pending == 12
    assert framer.feed(b'istant"}\n{"ty') == [b'{"type":"assistant"}']
    assert framer.feed(b'pe":"result"}\n') == [b'{"type":"result"}']


def test_byte_by_byte() -> None:
    data = b"one\ntwo\nthree\n"
    framer = LineFramer()
    assert feed_all(framer, [data[i : i + 1] for i in range(len(data))]) == [
        b"one",
        b"two",
        b"three",
    ]


def test_flush_returns_the_unterminated_last_line() -> None:
    framer = LineFramer()
    assert framer.feed(b"done\npartial") == [b"done"]
    assert framer.flush() == b"partial"
    assert framer.flush() is None


def test_line_at_the_cap_is_kept_and_one_over_is_dropped() -> None:
    framer = LineFramer(max_line=8)
    assert framer.feed(b"12345678\n123456789\nok\n") == [b"12345678", b"ok"]
    assert framer.dropped == 1


def test_over_long_line_is_never_held_and_framing_resumes() -> None:
    framer = LineFramer(max_line=100)
    assert framer.feed(b"first\n" + b"x" * 60) == [b"first"]
    assert framer.feed(b"x" * 60) == []
    # Dropped as soon as it passed the cap, not when its newline came.
    assert framer.dropped == 1
    assert framer.pending == 0
    for _ in range(100):
        assert framer.feed(b"x" * 1000) == []
        assert framer.pending == 0
    assert framer.feed(b"xx\nnext\nla") == [b"next"]
    assert framer.feed(b"st\n") == [b"last"]
    assert framer.dropped == 1


def test_flush_after_an_over_long_tail_gives_nothing() -> None:
    framer = LineFramer(max_line=4)
    framer.feed(b"ok\ntoo long")
    assert framer.flush() is None
    assert framer.feed(b"next\n") == [b"next"]


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineFramer(max_line=0)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=30),
    cap=st.integers(min_value=1, max_value=30),
)
def test_any_chunking_gives_the_same_lines(lines: list[bytes], cuts: list[int], cap: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    framer = LineFramer(max_line=cap)
    assert feed_all(framer, split_at(data, cuts)) == [line for line in lines if len(line) <= cap]
    assert framer.dropped == sum(len(line) > cap for line in lines)
    assert framer.pending == 0


@pytest.mark.parametrize(
    "line",
    [b"", b"   ", b"\r", b"not json", b"[1, 2]", b"42", b'"text"', b"null", b"\xff\xfe{", b"{bad"],
)
def test_parse_event_rejects_non_objects(line: bytes) -> None:
    assert parse_event(line) is None


def test_parse_event_reads_an_object() -> None:
    assert parse_event(b' {"type": "system", "subtype": "init"}\r') == {
        "type": "system",
        "subtype": "init",
    }


def test_parse_event_survives_deep_nesting() -> None:
    assert parse_event(b"[" * 100_000 + b"]" * 100_000) is None


def write_log(path: Path, events: list[dict[str, object]], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events) + tail)


def assistant(text: str) -> dict[str, object]:
    return {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}


def test_result_event_on_the_last_line(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    write_log(log, [{"type": "system"}, assistant("hi"), {"type": "result", "result": "ok"}])
    assert read_result_event(log) == {"type": "result", "result": "ok"}


def test_missing_or_empty_log(tmp_path: Path) -> None:
    assert read_result_event(tmp_path / "missing.jsonl") is None
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert read_result_event(tmp_path / "empty.jsonl") is None


def test_no_result_event(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    # Mentions "result" without being a result event.
    write_log(log, [assistant('the "result" is near'), {"type": "user", "result": 1}])
    assert read_result_event(log) is None


def test_last_of_several_results_and_trailing_garbage(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    events = [{"type": "result", "n": 1}, assistant("x"), {"type": "result", "n": 2}]
    write_log(log, events, tail=b'{"type": "assistant", "trunc')
    assert read_result_event(log) == {"type": "result", "n": 2}


def test_result_without_final_newline(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    log.write_bytes(b'{"type": "system"}\n{"type": "result", "n": 1}')
    assert read_result_event(log) == {"type": "result", "n": 1}


def test_result_on_the_first_line_only(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    write_log(log, [{"type": "result", "n": 0}, *[assistant("y" * 50)] * 100])
    assert read_result_event(log, block_size=64) == {"type": "result", "n": 0}


def test_large_log_with_over_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "big.jsonl"
    filler = json.dumps(assistant("z" * 1000)).encode() + b"\n"
    huge = json.dumps({"type": "result", "blob": "q" * (3 << 20)}).encode() + b"\n"
    with log.open("wb") as out:
        out.write(filler * 20_000)  # ~20 MB
        out.write(json.dumps({"type": "result", "n": "real"}).encode() + b"\n")
        out.write(huge)  # over the 1 MiB cap: skipped, never assembled
        out.write(filler * 10)
    assert read_result_event(log) == {"type": "result", "n": "real"}


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["result", "other", "long", "junk"]), max_size=12),
    block=st.integers(min_value=1, max_value=64),
    cap=st.integers(min_value=30, max_value=80),
)
def test_backwards_reading_matches_a_forward_scan(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], block: int, cap: int
) -> None:
    lines: list[bytes] = []
    for i, kind in enumerate(kinds):
        if kind == "result":
            lines.append(json.dumps({"type": "result", "i": i}).encode())
        elif kind == "other":
            lines.append(json.dumps({"type": "assistant", "i": i}).encode())
        elif kind == "long":
            lines.append(json.dumps({"type": "result", "pad": "p" * 90}).encode())
        else:
            lines.append(b'"result" junk')
    log = tmp_path_factory.mktemp("log") / "t.jsonl"
    log.write_bytes(b"\n".join(lines))
    expected = None
    for line in lines:
        event = parse_event(line)
        if len(line) <= cap and event is not None and event.get("type") == "result":
            expected = event
    assert read_result_event(log, max_line=cap, block_size=block) == expected
