"""A real daemon in a child process, driven the way a user drives it.

Tests synchronise on the board (read-only) and the control socket with deadlines;
nothing sleeps and hopes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

from agent_pool.board import TaskBoard, TaskRecord
from agent_pool.control.client import (
    DaemonNotRunningError,
    DaemonStartError,
    request,
    wait_until_answering,
)
from agent_pool.errors import AgentPoolError
from agent_pool.fsutil import write_file_atomic
from agent_pool.mail import Message, MessageType, new_message_id, post_message
from agent_pool.pool.layout import PoolLayout
from agent_pool.session.process import find_by_env
from agent_pool.testing.fake_claude import fake_claude_command
from tests.conftest import CliEnv

T = TypeVar("T")


def wait_until(predicate: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


@dataclass
class Pool:
    """An initialised pool, its CLI, a fake claude, and (when started) its daemon."""

    cli: CliEnv
    layout: PoolLayout
    record_file: Path
    daemon: subprocess.Popen[bytes] | None = None
    output: list[Path] = field(default_factory=list)

    # -- configuration -------------------------------------------------------------

    def configure(self, text: str) -> None:
        """Replace pool.toml atomically, as most editors save: a running daemon must not
        read it half-written (on a loaded machine, an in-place write can stall mid-way)."""
        write_file_atomic(self.layout.pool_toml, text.encode("utf-8"))

    # -- daemon --------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> int:
        log = self.layout.root.parent / f"daemon-{len(self.output)}.out"
        self.output.append(log)
        with log.open("wb") as handle:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "agent_pool", "start"],
                cwd=self.cli.cwd,
                env=self.cli.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            return wait_until_answering(
                self.layout.socket_path, timeout=timeout, exited=self.daemon.poll
            )
        except DaemonStartError as exc:
            raise AssertionError(f"{exc.message}: {log.read_text()}") from exc

    def stop(self, *, now: bool = False, timeout: float = 30.0) -> int:
        """Stop the daemon; `now` skips the drain (two quick SIGTERMs could be merged
        into one by the kernel, so it goes through the control socket instead)."""
        assert self.daemon is not None
        if now:
            with contextlib.suppress(DaemonNotRunningError):
                request(self.layout.socket_path, "stop", now=True)
        else:
            self.daemon.send_signal(signal.SIGTERM)
        code = self.daemon.wait(timeout)
        self.daemon = None
        return code

    def kill(self) -> None:
        """SIGKILL the daemon: a crash. Its sessions live on in their own groups."""
        assert self.daemon is not None
        self.daemon.kill()
        self.daemon.wait(10)
        self.daemon = None

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = request(self.layout.socket_path, "status")
        return data

    # -- mail and tasks ------------------------------------------------------------

    def submit(self, to: str, body: str, *args: str) -> str:
        result = self.cli.run("submit", "--to", to, *args, body)
        assert result.code == 0, result.err
        return result.out.strip()

    def post(self, to: str, body: str, **fields: Any) -> str:
        """Post a task straight into the postoffice (fast; no CLI process)."""
        message = Message(
            id=fields.pop("id", None) or new_message_id(),
            sender=fields.pop("sender", "concierge"),
            to=to,
            type=fields.pop("type", MessageType.TASK),
            body=body,
            **fields,
        )
        post_message(self.layout.postoffice, message)
        return message.id

    def task(self, task_id: str) -> TaskRecord | None:
        board = TaskBoard.open_readonly_if_ready(self.layout.board_db)
        if board is None:
            return None
        try:
            return board.get(task_id)
        finally:
            board.close()

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 30.0) -> TaskRecord:
        def reached() -> TaskRecord | None:
            record = self.task(task_id)
            return record if record is not None and record.status in statuses else None

        return wait_until(reached, timeout, f"{task_id} to be {'/'.join(statuses)}")

    def invocations(self) -> list[dict[str, Any]]:
        """Every run of the fake claude, as it recorded itself."""
        if not self.record_file.exists():
            return []
        # Only complete lines: a fake may be writing its line while we read.
        text = self.record_file.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def runs_of(self, task_id: str) -> int:
        return sum(1 for run in self.invocations() if _task_of(run) == task_id)

    def session_processes(self) -> list[int]:
        """Live processes that belong to this pool's sessions."""
        pids = []
        for pid in find_by_env("AGENT_POOL_DIR", str(self.layout.root)):
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    pids.append(pid)
            except psutil.NoSuchProcess:
                continue
        return pids


def _task_of(run: dict[str, Any]) -> str | None:
    env = run.get("env") or {}
    value = env.get("AGENT_POOL_TASK_ID")
    return value if isinstance(value, str) else None


def make_pool(cli: CliEnv, experts: tuple[str, ...] = ("backend", "frontend")) -> Pool:
    args = ["init"]
    for name in experts:
        args += ["--expert", name]
    assert cli.run(*args).code == 0
    bin_dir = cli.cwd.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = fake_claude_command(bin_dir)
    record = cli.cwd.parent / "fake-claude-record.jsonl"
    cli.env["AGENT_POOL_CLAUDE_BIN"] = str(fake)
    cli.env["FAKE_CLAUDE_RECORD"] = str(record)
    return Pool(cli=cli, layout=PoolLayout(cli.cwd / ".agent-pool"), record_file=record)


def cleanup(pool: Pool) -> None:
    """Stop the daemon and assert nothing of the pool outlived the test.

    Four checks: no session process (found by the pool's environment), no process in
    a process group a session had (a tool that scrubbed its environment still shares
    its session's group), no helper of the daemon (its tools server, which runs in the
    pool folder), and no child the daemon left unreaped (a zombie).
    """
    unreaped: list[str] = []
    if pool.daemon is not None and pool.daemon.poll() is None:
        # Before stopping: once the daemon exits, its zombies become init's to reap.
        unreaped = zombie_children(pool.daemon.pid)
        try:
            pool.stop(now=True)
        except subprocess.TimeoutExpired:
            pool.daemon.kill()
            pool.daemon.wait(5)
    try:
        wait_until(lambda: not pool.session_processes(), 10, "session processes to end")
    except AssertionError:
        for pid in pool.session_processes():  # never leave strays behind, even on failure
            os.kill(pid, signal.SIGKILL)
        raise
    assert_groups_empty(recorded_process_groups(pool))
    assert_no_helpers_left(pool)
    assert not unreaped, f"the daemon left session processes unreaped (zombies): {unreaped}"


class EventCollector:
    """Subscribes to a running daemon and keeps every event it streams (a thread)."""

    def __init__(self, pool: Pool, since: int | None = None) -> None:
        import threading  # noqa: PLC0415  # only tests that watch events need a thread

        from agent_pool.control.client import EventStream  # noqa: PLC0415

        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._stream = EventStream(pool.layout.socket_path, since=since)
        self.hello = self._stream.hello
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        finally:
            self.ended.set()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0, what: str = ""
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((event for event in list(self.events) if predicate(event)), None)

        return wait_until(found, timeout, what or "an event")

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [event for event in list(self.events) if event.get("type") == type_]

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


# -- process groups and zombies (the fault-injection suite's leftover checks) ---------


def recorded_process_groups(pool: Pool) -> set[int]:
    """Every process group a session of this pool had: as each fake claude run recorded
    it, and as the board recorded it (the real CLI records nothing itself)."""
    groups = {int(run["pgid"]) for run in pool.invocations() if run.get("pgid")}
    try:
        board = TaskBoard.open_readonly_if_ready(pool.layout.board_db)
    except (AgentPoolError, sqlite3.Error):
        board = None  # a test may leave the board unreadable on purpose
    if board is not None:
        try:
            groups |= {task.pgid for task in board.list_tasks(limit=1_000_000) if task.pgid}
        except sqlite3.Error:
            pass
        finally:
            board.close()
    return {group for group in groups if group > 1}


def group_leftovers(groups: set[int]) -> list[str]:
    """Processes, zombies included, that are still in one of `groups`.

    A group id is reused only after every member is gone and the pid counter wrapped,
    so within one test a member found here is a leftover of that session.
    """
    return [description for _, description in _group_members(groups)]


def assert_groups_empty(groups: set[int], timeout: float = 10.0) -> None:
    """Wait for `groups` to have no member left; kill what stays, then fail naming it."""
    try:
        wait_until(lambda: not group_leftovers(groups), timeout, "session process groups to empty")
    except AssertionError:
        left = _group_members(groups)
        for group in {group for group, _ in left}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        described = [description for _, description in left]
        raise AssertionError(f"processes left in session process groups: {described}") from None


def _group_members(groups: set[int]) -> list[tuple[int, str]]:
    found = []
    for proc in psutil.process_iter(["status", "name"]):
        try:
            group = os.getpgid(proc.pid)
        except ProcessLookupError:
            continue
        if group in groups and proc.pid != os.getpid():
            status, name = proc.info["status"], proc.info["name"]
            found.append((group, f"pid {proc.pid} ({name}, {status}) in group {group}"))
    return found


def zombie_children(pid: int, timeout: float = 10.0) -> list[str]:
    """Children of `pid` that exited and stay unreaped after `timeout` (none: [])."""

    def zombies() -> list[str]:
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() == psutil.STATUS_ZOMBIE:
                    found.append(f"pid {child.pid} ({child.name()})")
        return found

    with contextlib.suppress(AssertionError):
        wait_until(lambda: not zombies(), timeout, "the daemon to reap its children")
    return zombies()


def helpers_of(pool: Pool) -> list[str]:
    """Live processes working in the pool folder itself: the daemon's helpers (its tools
    server). Sessions work in the project folder, the daemon in the caller's."""
    return [description for _, description in _helpers(pool)]


def assert_no_helpers_left(pool: Pool, timeout: float = 10.0) -> None:
    """Once the daemon is gone, so must its helpers be; kill what stays, then fail."""
    try:
        wait_until(lambda: not helpers_of(pool), timeout, "the daemon's helpers to exit")
    except AssertionError:
        left = _helpers(pool)
        for pid, _ in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        described = [description for _, description in left]
        raise AssertionError(f"daemon helpers outlived it: {described}") from None


def _helpers(pool: Pool) -> list[tuple[int, str]]:
    found = []
    folder = str(pool.layout.root)
    for proc in psutil.process_iter(["cwd", "status", "cmdline"], ad_value=None):
        if proc.info["cwd"] == folder and proc.info["status"] != psutil.STATUS_ZOMBIE:
            command = " ".join(proc.info["cmdline"] or [])[:200]
            found.append((proc.pid, f"pid {proc.pid}: {command}"))
    return found
