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
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any, Final, Literal, Self

from agent_pool.testing.model_script import Script, ScriptError, Turn
from agent_pool.testing.model_wire import (
    conversation_position,
    estimate_tokens,
    is_auxiliary,
    new_id,
    prompt_text,
    render_error,
    render_stream,
    system_chars,
    tool_names,
)

TurnKind = Literal["text", "tool_use", "error", "hang"]

AUXILIARY_TEXT: Final = "ok"
_MAX_LINE: Final = 64 * 1024
_MAX_HEADERS: Final = 200
_MAX_BODY: Final = 64 * 1024 * 1024
_PROMPT_TAIL: Final = 200  # characters kept in a request record: the prompt ends the text


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
