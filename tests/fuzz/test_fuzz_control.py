"""Fuzzing the control protocol: frames, a live `ControlServer`, and the real daemon.

Whatever a client sends, each request line gets exactly one well-formed answer (or,
for a line over the size limit, one error and the end of the connection), and the
server goes on answering `ping` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_pool.control import protocol
from agent_pool.control.client import request
from agent_pool.control.server import ControlServer, Stream
from agent_pool.errors import UsageError
from tests.fuzz.budget import fuzz_settings
from tests.harness import Pool

pytestmark = pytest.mark.faults

ANSWER_TIMEOUT = 10.0

# --- request lines ---------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(),
    # Lone surrogates included: JSON may spell them as "\ud800" escapes.
    st.text(st.characters(), max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
ops = st.sampled_from(sorted(protocol.OPS)) | st.text(max_size=10) | json_values


@st.composite
def request_frames(draw: st.DrawFn, op_names: st.SearchStrategy[Any] = ops) -> dict[str, Any]:
    frame: dict[str, Any] = {} if draw(st.integers(0, 9)) == 0 else {"op": draw(op_names)}
    for name in draw(st.lists(st.sampled_from(["id", "since", "now", "x", ""]), max_size=3)):
        frame[name] = draw(json_values)
    return frame


def _json_line(frame: object, *, ascii_only: bool) -> bytes:
    # Without ensure_ascii a lone surrogate is written raw: bytes that are not UTF-8.
    return json.dumps(frame, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# Frames that once made `decode` raise something other than ProtocolError.
HUGE_INTEGER_LINE = b'{"op":"ping","x":' + b"1" * 5000 + b"}"
DEEP_ARRAY_LINE = b"[" * 20_000 + b"]" * 20_000

request_lines = st.one_of(
    st.builds(_json_line, request_frames(), ascii_only=st.booleans()),
    st.builds(_json_line, json_values, ascii_only=st.booleans()),
    st.binary(max_size=200),
    st.sampled_from([HUGE_INTEGER_LINE, DEEP_ARRAY_LINE, b"", b"\r", b"{}", b'{"op":"ping"}\r']),
).map(lambda line: line.replace(b"\n", b" "))


def expected_ok(line: bytes) -> bool | None:
    """Whether the small test handler below accepts `line` (None: not a request)."""
    try:
        op, args = protocol.parse_request(line)
    except protocol.ProtocolError:
        return None
    if op in ("ping", "stop"):
        return True
    if op == "subscribe":
        return _valid_since(args.get("since"))
    return isinstance(args.get("id"), str)


def _valid_since(since: object) -> bool:
    return since is None or (isinstance(since, int) and not isinstance(since, bool))


# --- decode and parse_request ------------------------------------------------------


@given(st.binary(max_size=300) | request_lines)
@example(HUGE_INTEGER_LINE)
@example(DEEP_ARRAY_LINE)
@example(b'\xff\xfe{\x00"\x00o\x00p\x00"\x00:\x00"\x00p\x00i\x00n\x00g\x00"\x00}\x00')
@example(b'{"op":"\xed\xa0\x80"}')
@fuzz_settings(400)
def test_parse_request_raises_only_protocol_error(line: bytes) -> None:
    try:
        op, args = protocol.parse_request(line)
    except protocol.ProtocolError as exc:
        refusal = str(exc)
    else:
        assert op in protocol.OPS
        assert "op" not in args
        return
    assert len(refusal.splitlines()) == 1, refusal


def test_huge_integer_is_a_protocol_error() -> None:
    # Before the fix: ValueError (Python's 4300-digit limit) escaped decode.
    with pytest.raises(protocol.ProtocolError, match="too many digits"):
        protocol.decode(HUGE_INTEGER_LINE)


def test_deep_nesting_is_a_protocol_error() -> None:
    # Before the fix: RecursionError escaped decode.
    with pytest.raises(protocol.ProtocolError, match="nested too deeply"):
        protocol.decode(DEEP_ARRAY_LINE)


def test_utf16_frame_is_not_json() -> None:
    # Before the fix json.loads guessed UTF-16 from the NUL bytes and accepted it.
    with pytest.raises(protocol.ProtocolError, match="not JSON"):
        protocol.decode('{"op":"ping"}'.encode("utf-16-le"))


def test_frame_with_a_lone_surrogate_still_encodes() -> None:
    # Before the fix: UnicodeEncodeError, and the server dropped the connection unanswered.
    line = protocol.encode(protocol.ok({"id": "\ud800", "name": "é"}))
    assert line.endswith(b"\n")
    assert protocol.decode(line) == {"ok": True, "data": {"id": "\ud800", "name": "é"}}


# --- a client that checks every answer ----------------------------------------------


def check_answer(raw: bytes) -> dict[str, Any]:
    assert raw.endswith(b"\n"), f"an answer frame is not a whole line: {raw[:200]!r}"
    frame = protocol.decode(raw)
    assert isinstance(frame.get("ok"), bool), frame
    if frame["ok"]:
        assert "data" in frame
    else:
        error = frame.get("error")
        assert isinstance(error, str), frame
        assert error.strip(), frame
        assert len(error.splitlines()) == 1, f"not one line: {error!r}"
        assert isinstance(frame.get("code"), int), frame
    return frame


@dataclass
class Exchange:
    """One connection's requests and the answers it got, checked line by line."""

    lines: list[bytes]
    one_write: bool
    final_newline: bool
    answers: list[dict[str, Any]] = field(default_factory=list)
    streamed: bool = False  # a `subscribe` turned the connection into a stream

    def run(self, path: Path) -> None:
        self.answers = []
        self.streamed = False
        requests = self.requests_sent()
        data = [line + b"\n" for line in self.lines]
        if not self.final_newline:
            data[-1] = data[-1][:-1]  # the server reads the last line up to EOF
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(ANSWER_TIMEOUT)
            sock.connect(str(path))
            with sock.makefile("rb") as reader:
                self._talk(sock, reader, data, len(requests))

    def _talk(self, sock: socket.socket, reader: Any, data: list[bytes], count: int) -> None:
        if self.one_write:
            sock.sendall(b"".join(data))
            sock.shutdown(socket.SHUT_WR)
            self._read_answers(reader, count)
            return
        for index, chunk in enumerate(data):
            sock.sendall(chunk)
            if index == len(data) - 1:
                sock.shutdown(socket.SHUT_WR)
            if chunk:  # an empty last line without "\n" is no request
                self._read_answers(reader, 1)
            if self.streamed:
                return

    def _read_answers(self, reader: Any, count: int) -> None:
        for _ in range(count):
            raw = reader.readline(protocol.MAX_FRAME + 1)
            assert raw, f"no answer to request {len(self.answers) + 1}: {self.lines!r:.300}"
            answer = check_answer(raw)
            self.answers.append(answer)
            if answer["ok"] and self._is_subscribe(len(self.answers) - 1):
                self.streamed = True
                return

    def _is_subscribe(self, index: int) -> bool:
        with contextlib.suppress(protocol.ProtocolError):
            return protocol.parse_request(self.lines[index])[0] == "subscribe"
        return False

    def requests_sent(self) -> list[bytes]:
        """The lines the server saw as requests (an empty last line without "\\n" is none)."""
        if self.lines and not self.final_newline and not self.lines[-1]:
            return self.lines[:-1]
        return self.lines


exchanges = st.builds(
    Exchange,
    lines=st.lists(request_lines, min_size=1, max_size=8),
    one_write=st.booleans(),
    final_newline=st.booleans(),
)


def ping_answers(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT)
        sock.connect(str(path))
        sock.sendall(protocol.encode({"op": "ping"}))
        with sock.makefile("rb") as reader:
            answer = check_answer(reader.readline())
    assert answer["ok"] is True


def hang_up_after(path: Path, data: bytes) -> None:
    """Send `data` and leave at once, without reading a single answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)


# --- a live ControlServer with a small handler --------------------------------------


async def _two_events() -> AsyncIterator[bytes]:
    yield b'{"type":"x.one"}\n'
    yield b'{"type":"x.two"}\n'


async def small_handler(op: str, args: dict[str, Any]) -> Any:
    if op == "ping":
        return {"pong": True}
    if op == "stop":
        return {"stopping": False}
    if op == "subscribe":
        since = args.get("since")
        if not _valid_since(since):
            raise UsageError("subscribe: 'since' must be an integer")
        return Stream(hello={"since": since}, chunks=_two_events(), close=lambda: None)
    task_id = args.get("id")
    if not isinstance(task_id, str):
        raise UsageError(f"{op} needs an 'id' string")
    return {"op": op, "id": task_id}  # echoed: lone surrogates must still go out


@dataclass
class LiveServer:
    path: Path
    problems: list[str]


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    """A ControlServer on its own loop in a thread; every loop error is kept."""
    # A short folder: a unix socket path is limited to ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="ap-fuzz-") as folder:
        path = Path(folder) / "control.sock"
        loop = asyncio.new_event_loop()
        problems: list[str] = []
        loop.set_exception_handler(lambda _loop, context: problems.append(str(context)))
        server = ControlServer(path, small_handler)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(server.close())
            loop.close()

        thread = threading.Thread(target=serve, name="control-server", daemon=True)
        thread.start()
        assert started.wait(10), "the control server did not start"
        try:
            yield LiveServer(path, problems)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        assert not thread.is_alive()
        assert problems == [], problems


@given(exchanges)
@example(Exchange([b'{"op":"cancel","id":"\\ud800"}'], one_write=True, final_newline=True))
@example(Exchange([HUGE_INTEGER_LINE, DEEP_ARRAY_LINE], one_write=False, final_newline=True))
@example(Exchange([b'{"op":"subscribe"}', b'{"op":"ping"}'], one_write=True, final_newline=True))
@example(Exchange([b'{"op":"ping"}', b""], one_write=False, final_newline=False))
@fuzz_settings(250, shared_fixture=True)
def test_live_server_answers_every_line_once(live_server: LiveServer, exchange: Exchange) -> None:
    exchange.run(live_server.path)
    sent = exchange.requests_sent()
    if not exchange.streamed:
        assert len(exchange.answers) == len(sent)
    for line, answer in zip(sent, exchange.answers, strict=False):
        expected = expected_ok(line)
        assert answer["ok"] is bool(expected), (line[:200], answer)
        if expected is None:
            assert answer["code"] == 2
    ping_answers(live_server.path)
    assert live_server.problems == []


@given(st.lists(request_lines, min_size=1, max_size=6), st.integers(0, 60))
@fuzz_settings(100, shared_fixture=True)
def test_live_server_survives_clients_that_hang_up(
    live_server: LiveServer, lines: list[bytes], cut: int
) -> None:
    data = b"\n".join(lines) + b"\n"
    hang_up_after(live_server.path, data[: len(data) - cut])
    ping_answers(live_server.path)


@pytest.mark.parametrize(
    "size",
    [protocol.MAX_FRAME - 1, protocol.MAX_FRAME, protocol.MAX_FRAME + 1, protocol.MAX_FRAME + 64],
)
def test_live_server_answers_or_cuts_off_a_line_near_the_size_limit(
    live_server: LiveServer, size: int
) -> None:
    line = b'{"op":"ping","pad":"' + b"x" * (size - 22) + b'"}'
    assert len(line) == size
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT)
        sock.connect(str(live_server.path))
        # Keep sending in a thread: the server may stop reading (and close) part-way.
        sender = threading.Thread(
            target=_send_quietly, args=(sock, line + b"\n" + b'{"op":"ping"}\n')
        )
        sender.start()
        frames = _read_until_closed(sock)
        sender.join(ANSWER_TIMEOUT)
    answers = [check_answer(frame) for frame in frames]
    if size + 1 > protocol.MAX_FRAME + 1:
        # Over the reader's limit: one error, then the connection is closed.
        assert [answer["ok"] for answer in answers] == [False]
        assert answers[0]["error"] == "request too large"
    else:
        # At the limit the reader takes the line, and `decode` refuses it.
        assert [answer["ok"] for answer in answers] == [size < protocol.MAX_FRAME, True]
    ping_answers(live_server.path)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)


def _read_until_closed(sock: socket.socket) -> list[bytes]:
    frames = []
    with sock.makefile("rb") as reader, contextlib.suppress(ConnectionResetError):
        while frame := reader.readline(protocol.MAX_FRAME + 1):
            frames.append(frame)
    return frames


def test_many_lines_in_one_write_get_answers_in_order(live_server: LiveServer) -> None:
    lines = [json.dumps({"op": "cancel", "id": f"t-{number}"}).encode() for number in range(500)]
    exchange = Exchange(lines, one_write=True, final_newline=True)
    exchange.run(live_server.path)
    assert [answer["data"]["id"] for answer in exchange.answers] == [
        f"t-{number}" for number in range(500)
    ]


# --- the real daemon ---------------------------------------------------------------

daemon_ops = st.sampled_from(["status", "cancel", "retry", "subscribe", "ping"])
daemon_ops |= st.text(max_size=8)


@st.composite
def daemon_exchanges(draw: st.DrawFn, known_ids: list[str]) -> Exchange:
    ids = st.sampled_from(known_ids) | json_values
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        frame = draw(request_frames(daemon_ops))
        if "id" in frame and draw(st.booleans()):
            frame["id"] = draw(ids)
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(request_lines.filter(lambda line: not _stops(line))))
        else:
            lines.append(_json_line(frame, ascii_only=draw(st.booleans())))
    return Exchange(lines, one_write=draw(st.booleans()), final_newline=True)


def _stops(line: bytes) -> bool:
    """Whether `line` is a well-formed `stop` (kept for the end of the daemon test)."""
    with contextlib.suppress(protocol.ProtocolError):
        return protocol.parse_request(line)[0] == "stop"
    return False


@pytest.mark.slow
def test_real_daemon_answers_random_requests_and_keeps_running(pool: Pool) -> None:
    pool.start()
    known_ids = [pool.post("backend", "Do a thing."), pool.post("frontend", "Another.")]
    socket_path = pool.layout.socket_path

    @given(daemon_exchanges(known_ids))
    @example(Exchange([b'{"op":"cancel","id":"\\ud800"}'], one_write=True, final_newline=True))
    @example(Exchange([b'{"op":"retry","id":"\\udfff"}'], one_write=True, final_newline=True))
    @example(Exchange([b'{"op":"subscribe","since":-1e999}'], one_write=True, final_newline=True))
    @fuzz_settings(200)
    def exchange_with_the_daemon(exchange: Exchange) -> None:
        exchange.run(socket_path)
        if not exchange.streamed:
            assert len(exchange.answers) == len(exchange.requests_sent())
        assert pool.daemon is not None
        assert pool.daemon.poll() is None, "the daemon died"
        assert request(socket_path, "ping")["pid"] == pool.daemon.pid

    exchange_with_the_daemon()

    # A `stop` whose `now` is any JSON value still stops the daemon cleanly.
    stopping = Exchange([b'{"op":"stop","now":[{"x":null},1e999,"\\u00e9"]}'], True, True)
    stopping.run(socket_path)
    assert stopping.answers[0]["ok"] is True
    assert pool.daemon is not None
    assert pool.daemon.wait(30) == 0
    pool.daemon = None
    output = pool.output[-1].read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in output, output


def test_a_handler_bug_is_answered_and_reported(tmp_path: Path) -> None:
    # Before the fix the exception escaped the connection's task: no answer, and every
    # later line on that connection went unanswered (the daemon's `cancel` of an id
    # SQLite cannot store did exactly this).
    async def buggy_handler(op: str, args: dict[str, Any]) -> Any:
        if op == "status":
            raise RuntimeError("boom\non two lines")
        return {"pong": True}

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        reports: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reports.append(ctx))
        server = ControlServer(tmp_path / "c.sock", buggy_handler)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "c.sock"))
        writer.write(b'{"op":"status"}\n{"op":"ping"}\n')
        answers = [check_answer(await reader.readline()) for _ in range(2)]
        writer.close()
        await writer.wait_closed()
        await server.close()
        return answers, reports

    answers, reports = asyncio.run(scenario())
    assert answers == [
        {
            "ok": False,
            "error": "internal error during 'status': RuntimeError: boom on two lines",
            "code": 1,
        },
        {"ok": True, "data": {"pong": True}},
    ]
    assert [type(report["exception"]) for report in reports] == [RuntimeError]


def test_a_request_with_a_lone_surrogate_is_refused() -> None:
    # Before the fix such an id reached the daemon's board, where SQLite raised
    # UnicodeEncodeError and the request went unanswered.
    with pytest.raises(protocol.ProtocolError, match="lone UTF-16 surrogate"):
        protocol.parse_request(b'{"op":"cancel","id":"\\ud800"}')
    assert protocol.parse_request(b'{"op":"cancel","id":"\\ud83d\\ude00"}')[1] == {
        "id": "\U0001f600"
    }
