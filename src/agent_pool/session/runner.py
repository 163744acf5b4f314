"""Starting, waiting for and stopping `claude` sessions, and following their logs.

Each session runs in its own process group (a new session, so pgid == pid), which is
what gets signalled: tools the agent started (a test runner, a dev server) die with
it. The child writes its stdout straight into the log file, so the log survives a
daemon crash and a restarted daemon can `adopt` the process and keep reading it.
Stopping escalates SIGTERM -> grace -> SIGKILL, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Protocol

from agent_pool.errors import AgentPoolError
from agent_pool.session.process import (
    ProcessIdentity,
    group_members,
    identify,
    is_alive,
    signal_group,
)
from agent_pool.session.stream import MAX_LINE_BYTES, Event, LineFramer, parse_event

LOG_MODE: Final = 0o600  # transcripts can hold secrets from the project
KILL_WAIT: Final = 5.0  # after SIGKILL: only a process stuck in the kernel takes longer
_GROUP_POLL: Final = 0.02  # while stopping: how often to look for group leftovers
_ADOPTED_POLL: Final = 0.1  # waiting on a process that is not our child, without pidfd
_LOG_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_READ_CHUNK: Final = 64 * 1024


class SessionStartError(AgentPoolError):
    """The `claude` process could not be started at all."""

    def __init__(self, binary: str, problem: str) -> None:
        super().__init__(f"cannot start session with {binary!r}: {problem}")
        self.binary = binary
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """Everything needed to start one session; `env` is the complete environment."""

    task_id: str
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    stdin: bytes
    log_path: Path
    stderr_path: Path


class RunningSession(Protocol):
    @property
    def identity(self) -> ProcessIdentity: ...

    async def wait(self) -> int | None:
        """The exit code (negative: killed by that signal), or None when unknown."""
        ...

    async def stop(self, grace: float) -> None:
        """Stop the whole process group: SIGTERM, up to `grace` seconds, then SIGKILL.

        Also kills what is left of the group after the leader exited. Idempotent, and
        cheap when everything has already exited.
        """
        ...


class _GroupSession:
    """Stop escalation shared by our own children and adopted processes."""

    def __init__(self, identity: ProcessIdentity, kill_wait: float) -> None:
        self._identity = identity
        self._kill_wait = kill_wait
        self._stop_lock = asyncio.Lock()

    @property
    def identity(self) -> ProcessIdentity:
        return self._identity

    def _leader_exited(self) -> bool:
        raise NotImplementedError

    async def _wait_leader(self, timeout: float) -> bool:
        """True once the leader has exited; False if `timeout` passed first."""
        raise NotImplementedError

    def _before_stop(self) -> None:
        """Hook: release anything that could block the leader's exit."""

    async def stop(self, grace: float) -> None:
        async with self._stop_lock:
            self._before_stop()
            if not self._group_running():
                return
            signal_group(self._identity.pgid, signal.SIGTERM)
            if await self._settle(grace):
                return
            if self._group_running():
                signal_group(self._identity.pgid, signal.SIGKILL)
                await self._settle(self._kill_wait)

    def _leftovers(self) -> list[int]:
        members = group_members(self._identity.pgid)
        leader = self._identity.pid
        if leader == self._identity.pgid and leader in members and self._leader_exited():
            # Our leader is gone, and while any member of its group lived its pid could
            # not be recycled: this is a new group that only shares the number.
            return []
        return members

    def _group_running(self) -> bool:
        return not self._leader_exited() or bool(self._leftovers())

    async def _settle(self, timeout: float) -> bool:
        """Wait up to `timeout` for the leader and every group member to be gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self._wait_leader(timeout):
            return False
        while self._leftovers():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(_GROUP_POLL, remaining))
        return True


class _ChildSession(_GroupSession):
    """A session this daemon spawned: asyncio reaps it and knows its exit code."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        identity: ProcessIdentity,
        stdin: bytes,
        kill_wait: float,
    ) -> None:
        super().__init__(identity, kill_wait)
        self._proc = proc
        self._feeder = asyncio.create_task(self._feed(stdin), name=f"stdin-{proc.pid}")

    async def _feed(self, data: bytes) -> None:
        # A task rather than inline in start(): a prompt larger than the pipe buffer
        # must not block start() on a child that is slow to read it.
        stdin = self._proc.stdin
        if stdin is None:
            return
        try:
            stdin.write(data)
            await stdin.drain()
            stdin.close()
            await stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            # The child exited (or closed stdin) early; its exit status says why.
            pass

    def _before_stop(self) -> None:
        stdin = self._proc.stdin
        if stdin is None:
            return
        transport = stdin.transport
        # abort() drops unsent prompt bytes; calling it on a transport that is already
        # shut down would report its loss twice, hence the guard.
        if not transport.is_closing() or transport.get_write_buffer_size() > 0:
            transport.abort()

    def _leader_exited(self) -> bool:
        return self._proc.returncode is not None

    async def _wait_leader(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def wait(self) -> int | None:
        code = await self._proc.wait()
        # Collect the feeder's outcome so it is never reported as unretrieved.
        await asyncio.gather(self._feeder, return_exceptions=True)
        return code


class _AdoptedSession(_GroupSession):
    """A session started by an earlier daemon: not our child, so no exit code."""

    def _leader_exited(self) -> bool:
        return not is_alive(self._identity)

    async def _wait_leader(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while is_alive(self._identity):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(_GROUP_POLL, remaining))
        return True

    async def wait(self) -> int | None:
        if not await self._wait_pidfd():
            while is_alive(self._identity):
                await asyncio.sleep(_ADOPTED_POLL)
        return None

    async def _wait_pidfd(self) -> bool:
        """Sleep until the process exits, woken by the kernel; False if unsupported."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return False
        try:
            fd: int = pidfd_open(self._identity.pid)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # e.g. ENOSYS on an old kernel or in a sandbox
        loop = asyncio.get_running_loop()
        try:
            # Checked after opening: the descriptor may already point at a new owner of
            # the pid, and then our process is gone anyway.
            if not is_alive(self._identity):
                return True
            exited: asyncio.Future[None] = loop.create_future()

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(fd, on_exit)
            try:
                await exited
            finally:
                loop.remove_reader(fd)
        finally:
            os.close(fd)
        return True


class ProcessRunner:
    """Starts sessions as real processes and adopts ones left by an earlier daemon."""

    def __init__(self, *, kill_wait: float = KILL_WAIT) -> None:
        self._kill_wait = kill_wait

    async def start(self, spec: SessionSpec) -> RunningSession:
        if not spec.argv or not spec.argv[0]:
            raise SessionStartError("", "the command line is empty")
        binary = spec.argv[0]
        stdout_fd = _open_log(spec.log_path, binary)
        try:
            stderr_fd = _open_log(spec.stderr_path, binary)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    cwd=spec.cwd,
                    env=dict(spec.env),
                    start_new_session=True,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=stdout_fd,
                    stderr=stderr_fd,
                )
            except OSError as exc:
                raise SessionStartError(binary, _describe_spawn_error(exc, spec)) from exc
            finally:
                os.close(stderr_fd)
        finally:
            # The child has its own copies; ours would only keep the files open.
            os.close(stdout_fd)
        found = identify(proc.pid)
        # The child may already have exited and been reaped: its start time is then
        # unknown, which `is_alive` treats as gone.
        start_time = found.start_time if found is not None else 0.0
        identity = ProcessIdentity(proc.pid, proc.pid, start_time)
        return _ChildSession(proc, identity, spec.stdin, self._kill_wait)

    def adopt(self, identity: ProcessIdentity) -> RunningSession:
        return _AdoptedSession(identity, self._kill_wait)


def _open_log(path: Path, binary: str) -> int:
    try:
        return os.open(path, _LOG_FLAGS, LOG_MODE)
    except OSError as exc:
        raise SessionStartError(binary, f"cannot open {path}: {exc.strerror}") from exc


def _describe_spawn_error(exc: OSError, spec: SessionSpec) -> str:
    binary = spec.argv[0]
    if exc.filename is not None and os.fsdecode(exc.filename) == os.fsdecode(spec.cwd):
        return f"working directory {spec.cwd}: {exc.strerror}"
    if isinstance(exc, FileNotFoundError):
        where = "" if os.sep in binary else " on PATH"
        return f"executable not found{where} (set [runner] claude_bin or AGENT_POOL_CLAUDE_BIN)"
    if isinstance(exc, PermissionError):
        return "not executable (permission denied)"
    return exc.strerror or str(exc)


class LogTail:
    """Follows a growing session log from a byte offset, yielding parsed events.

    Polls every `poll_interval` seconds, or sooner after `wake()`. After `finish()`
    (the writer has exited) it drains what is left, including a last line without a
    newline, and stops. Close it (or use `async with`) when abandoning it early.
    """

    def __init__(
        self,
        path: Path,
        *,
        offset: int = 0,
        poll_interval: float = 0.05,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        self._path = path
        self._read_pos = offset
        self._poll = poll_interval
        self._framer = LineFramer(max_line)
        self._ready: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._finished = False
        self._done = False
        self._file: BinaryIO | None = None

    @property
    def offset(self) -> int:
        """Where the first line not yet yielded starts: resume a tail from here."""
        return self._read_pos - self._framer.pending

    @property
    def dropped_lines(self) -> int:
        return self._framer.dropped

    def wake(self) -> None:
        self._wake.set()

    def finish(self) -> None:
        self._finished = True
        self._wake.set()

    def close(self) -> None:
        self._done = True
        if self._file is not None:
            self._file.close()
            self._file = None

    async def __aenter__(self) -> LogTail:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> LogTail:
        return self

    async def __anext__(self) -> Event:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            self._wake.clear()
            finished = self._finished  # read before the file: no late line is missed
            if self._read_chunk():
                continue
            if finished:
                last = self._framer.flush()
                if last is not None:
                    self._push(last)
                self.close()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
        return self._ready.popleft()

    def _read_chunk(self) -> bool:
        """Read one chunk (memory stays bounded however far behind we are)."""
        if self._file is None:
            try:
                self._file = self._path.open("rb")
            except FileNotFoundError:
                return False  # the session has not written anything yet
            self._file.seek(self._read_pos)
        chunk = self._file.read(_READ_CHUNK)
        if not chunk:
            return False
        self._read_pos += len(chunk)
        for line in self._framer.feed(chunk):
            self._push(line)
        return True

    def _push(self, line: bytes) -> None:
        event = parse_event(line)
        if event is not None:
            self._ready.append(event)
