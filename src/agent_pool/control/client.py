"""The CLI side of the control socket: small, synchronous and fast to import."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent_pool.control import protocol
from agent_pool.errors import AgentPoolError


class DaemonNotRunningError(AgentPoolError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the daemon is not running (no answer on {path}); start it with `agent-pool start`"
        )


class DaemonTimeoutError(AgentPoolError):
    """The daemon accepted the connection but did not answer in time (busy or stuck)."""


class ControlError(AgentPoolError):
    """The daemon answered with an error."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def request(path: Path, op: str, timeout: float = 10.0, **args: Any) -> Any:
    """Send one request and return its data, raising the daemon's error as ours."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunningError(path) from exc
        except OSError as exc:
            raise AgentPoolError(f"cannot reach the daemon on {path}: {exc.strerror}") from exc
        sock.sendall(protocol.encode({"op": op, **args}))
        buffer = bytearray()
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise AgentPoolError(f"the daemon closed the connection during {op!r}")
            buffer += chunk
            if len(buffer) > protocol.MAX_FRAME:
                raise AgentPoolError("the daemon's answer is too large")
    except TimeoutError as exc:
        raise DaemonTimeoutError(f"the daemon did not answer {op!r} within {timeout:g} s") from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        # Right after a daemon dies, a process it was forking can hold its listening
        # socket for an instant: the connection is accepted, then reset. Nobody answers.
        raise DaemonNotRunningError(path) from exc
    finally:
        sock.close()
    return _answer_data(protocol.decode(bytes(buffer)), op)


class DaemonStartError(AgentPoolError):
    """A daemon that was just started died or never answered."""


def wait_until_answering(
    path: Path, *, timeout: float, exited: Callable[[], int | None], poll: float = 0.01
) -> int:
    """Wait for a freshly started daemon to answer `ping`; returns its pid.

    `exited` reports the child's exit code once it has died (None while it lives), so a
    daemon that fails at start-up is reported at once instead of after the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        code = exited()
        if code is not None:
            raise DaemonStartError(f"the daemon exited with code {code} while starting")
        try:
            return int(request(path, "ping", timeout=1.0)["pid"])
        except (DaemonNotRunningError, DaemonTimeoutError):
            # Not up yet, or still busy starting (a loaded machine): ask again.
            if time.monotonic() > deadline:
                raise DaemonStartError(f"the daemon did not answer within {timeout:g} s") from None
            time.sleep(poll)


class EventStream:
    """A `subscribe` connection: `hello` is the daemon's answer, iteration yields events.

    Iteration ends when the daemon stops (or closes the stream). Use it as a context
    manager so the socket is closed however the reader stops.
    """

    def __init__(self, path: Path, *, since: int | None = None, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            try:
                self._sock.connect(str(path))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise DaemonNotRunningError(path) from exc
            args: dict[str, Any] = {} if since is None else {"since": since}
            self._sock.sendall(protocol.encode({"op": "subscribe", **args}))
            self._file = self._sock.makefile("rb")
            self.hello: dict[str, Any] = _answer_data(self._read_frame(), "subscribe") or {}
            self._sock.settimeout(None)  # events come when they come
        except BaseException:
            self._sock.close()
            raise

    def _read_frame(self) -> dict[str, Any] | None:
        line = self._file.readline(protocol.MAX_FRAME + 1)
        if not line:
            return None
        return protocol.decode(line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                frame = self._read_frame()
            except (ConnectionResetError, OSError):
                return
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._file.close()
        self._sock.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answer_data(frame: dict[str, Any] | None, op: str) -> Any:
    """The data of an answer frame, or the daemon's error raised as ours."""
    if frame is None:
        raise AgentPoolError(f"the daemon closed the connection during {op!r}")
    if not frame.get("ok"):
        raise ControlError(str(frame.get("error", "unknown error")), int(frame.get("code", 1)))
    return frame.get("data")
