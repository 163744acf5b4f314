"""`agent-pool watch` against a real daemon: the dashboard driven headless, and --plain."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import queue
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Awaitable, Callable
from typing import IO, TypeVar

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from agent_pool.watch.app import WatchApp
from agent_pool.watch.transcript_screen import TranscriptScreen
from tests.harness import Pool

T = TypeVar("T")
Scenario = Callable[[WatchApp, Pilot[None]], Awaitable[None]]


def run_app(pool: Pool, scenario: Scenario) -> None:
    async def main() -> None:
        app = WatchApp(pool.layout, refresh_every=0.5, reconnect_every=0.2)
        async with app.run_test(size=(160, 50)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


async def until(
    pilot: Pilot[None], predicate: Callable[[], T | None], what: str, timeout: float = 20.0
) -> T:
    """Let the app run until `predicate` holds, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def table(app: WatchApp, name: str) -> DataTable[object]:
    return app.query_one(f"#{name}", DataTable)


def row(app: WatchApp, name: str, key: str) -> list[str] | None:
    """The cells of row `key` as plain text, or None while it is not shown."""
    grid = table(app, name)
    if key not in {row_key.value for row_key in grid.rows}:
        return None
    return [str(cell) for cell in grid.get_row(key)]


def cell(app: WatchApp, name: str, key: str, column: int) -> str | None:
    cells = row(app, name, key)
    return cells[column] if cells is not None else None


def transcript(app: WatchApp) -> TranscriptScreen | None:
    return app.screen if isinstance(app.screen, TranscriptScreen) else None


def panel(app: WatchApp, name: str) -> str:
    return str(app.query_one(f"#{name}", Static).content)


def highlight(app: WatchApp, task_id: str) -> None:
    grid = table(app, "tasks")
    grid.move_cursor(row=grid.get_row_index(task_id))


def test_experts_tasks_dependencies_and_cancel(pool: Pool) -> None:
    pool.start()
    running = pool.post("backend", "long job\nfake: sleep 30")
    waiting = pool.post("frontend", "after the long job", depends_on=(running,))
    pool.wait_status(running, "active")

    async def scenario(app: WatchApp, pilot: Pilot[None]) -> None:
        await until(
            pilot, lambda: cell(app, "experts", "backend", 2) == "busy", "backend to be busy"
        )
        assert cell(app, "experts", "backend", 4) == running  # its current task
        assert cell(app, "experts", "frontend", 2) == "idle"
        await until(pilot, lambda: row(app, "tasks", waiting), "the tasks table")
        assert cell(app, "tasks", running, 1) == "active"
        header = panel(app, "header")
        assert "running" in header
        assert f"pid {pool.status()['pid']}" in header

        highlight(app, waiting)
        await until(
            pilot,
            lambda: f"  {running}  active" in panel(app, "deps"),
            "the blocked task's dependency",
        )
        highlight(app, running)
        await until(
            pilot,
            lambda: f"  {waiting}  blocked" in panel(app, "deps"),
            "the task that waits for the running one",
        )

        await pilot.press("c")
        await until(
            pilot,
            lambda: (record := pool.task(running)) and record.status == "cancelled",
            "the running task to be cancelled",
        )
        cascaded = pool.task(waiting)
        assert cascaded is not None
        assert cascaded.status == "cancelled"
        await until(pilot, lambda: app.last_action, "the cancel to be reported")
        assert app.last_action is not None
        assert app.last_action.startswith(f"cancelled {running}")
        await until(
            pilot,
            lambda: cell(app, "experts", "backend", 2) == "idle",
            "backend to be idle again",
        )
        await until(
            pilot,
            lambda: any("task.cancelled" in line and running in line for line in app.feed.lines),
            "the cancel in the event feed",
        )

    run_app(pool, scenario)


def test_needs_you_retry_and_the_transcript(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_attempts = 1\n")
    pool.start()
    broken = pool.post("backend", "break\nfake: exit 1")
    fine = pool.post("frontend", "fine\nfake: text transcript-marker")
    pool.wait_status(broken, "failed")
    pool.wait_status(fine, "completed")
    (pool.layout.postoffice / "junk.md").write_text("no front matter here\n", encoding="utf-8")

    async def scenario(app: WatchApp, pilot: Pilot[None]) -> None:
        await until(
            pilot,
            lambda: broken in panel(app, "needs") and "junk.md" in panel(app, "needs"),
            "the failed task and the dead letter under 'Needs you'",
        )
        assert "dead letter" in panel(app, "needs")
        dead = next(item for item in app.needs if item.ref == "junk.md")
        assert dead.text  # the reason the router gave

        await until(pilot, lambda: row(app, "tasks", broken), "the failed task's row")
        highlight(app, broken)
        await pilot.press("r")
        await until(pilot, lambda: pool.runs_of(broken) == 2, "the retried task to run again")
        assert app.last_action == f"{broken} is pending again"

        await until(pilot, lambda: row(app, "tasks", fine), "the completed task's row")
        highlight(app, fine)
        await pilot.press("t")
        screen = await until(pilot, lambda: transcript(app), "the transcript to open")
        assert screen.task_id == fine
        assert screen.lines[0].startswith("=== attempt 1")
        assert any("transcript-marker" in line for line in screen.lines)
        await pilot.press("escape")
        await until(pilot, lambda: transcript(app) is None, "the transcript to close")

        await pilot.press("enter")  # enter on the highlighted row opens it too
        await until(pilot, lambda: transcript(app), "enter to open the transcript")
        await pilot.press("escape")

    run_app(pool, scenario)


def test_filters_narrow_the_tasks_table(pool: Pool) -> None:
    pool.start()
    first = pool.post("backend", "alpha work")
    second = pool.post("frontend", "beta work\nfake: sleep 30")
    pool.wait_status(first, "completed")
    pool.wait_status(second, "active")

    def shown(app: WatchApp) -> set[str]:
        return {str(key.value) for key in table(app, "tasks").rows}

    async def scenario(app: WatchApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: shown(app) == {first, second}, "both tasks")
        await pilot.press("s")  # all -> active
        await until(pilot, lambda: shown(app) == {second}, "only the active task")
        assert "status active" in panel(app, "tasks-title")
        await pilot.press("s", "s", "s", "s", "s", "s", "s")  # round to all again
        await until(pilot, lambda: shown(app) == {first, second}, "all tasks again")
        await pilot.press("slash", *"alpha")
        await until(pilot, lambda: shown(app) == {first}, "the text filter")
        await pilot.press("escape")
        await until(pilot, lambda: shown(app) == {first, second}, "the filter cleared")

    run_app(pool, scenario)


def test_a_stopped_daemon_is_shown_and_watched_for_until_it_returns(pool: Pool) -> None:
    pool.start()
    done = pool.post("backend", "quick")
    pool.wait_status(done, "completed")

    async def scenario(app: WatchApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: row(app, "experts", "backend"), "the experts")
        await until(pilot, lambda: app.feed.lines, "the stream to connect")
        pool.stop()
        await until(pilot, lambda: "DAEMON STOPPED" in panel(app, "header"), "the stopped header")
        assert row(app, "experts", "backend") is not None  # the last view stays
        assert row(app, "tasks", done) is not None
        assert any("daemon stopped" in line for line in app.feed.lines)
        pid = pool.start()
        await until(
            pilot,
            lambda: f"pid {pid}" in panel(app, "header") and "running" in panel(app, "header"),
            "the new daemon in the header",
        )
        await until(
            pilot,
            lambda: any(f"(pid {pid})" in line for line in app.feed.lines),
            "the stream to reconnect",
        )

    run_app(pool, scenario)


# -- the command line ------------------------------------------------------------------------


class Lines:
    """A thread moves a pipe's lines into a queue (None at the end), so reads can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self._stream = stream
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def join(self) -> None:
        """Wait for the end of the pipe (the writer has exited)."""
        self._thread.join(10)


def _next_matching(lines: Lines, predicate: Callable[[str], bool], what: str) -> list[str]:
    """Lines read up to and including the first that matches."""
    deadline = time.monotonic() + 20
    seen: list[str] = []
    while True:
        try:
            line = lines.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}; got {seen}") from None
        if line is None:
            raise AssertionError(f"the stream ended before {what}; got {seen}")
        seen.append(line)
        if predicate(line):
            return seen


def test_plain_streams_one_line_per_event_until_the_daemon_stops(pool: Pool) -> None:
    pool.start()
    with subprocess.Popen(
        [sys.executable, "-m", "agent_pool", "watch", "--plain"],
        cwd=pool.cli.cwd,
        env=pool.cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert watcher.stdout is not None
        assert watcher.stderr is not None
        out, err = Lines(watcher.stdout), Lines(watcher.stderr)
        try:
            _next_matching(err, lambda line: line.startswith("watching pool"), "the subscription")
            task = pool.post("backend", "hello")
            seen = _next_matching(
                out,
                lambda line: "task.completed" in line and f"id={task}" in line,
                "task.completed",
            )
            started = next(line for line in seen if "task.started" in line)
            clock, kind, fields = started.split(maxsplit=2)
            assert len(clock) == 8
            assert clock.count(":") == 2
            assert kind == "task.started"
            assert f"id={task}" in fields
            assert "to=backend" in fields
            pool.stop()
            _next_matching(out, lambda line: "daemon.stopped" in line, "daemon.stopped")
            assert watcher.wait(timeout=20) == 0
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait(5)
            out.join()
            err.join()


def test_without_a_daemon_every_mode_fails_with_one_line(pool: Pool) -> None:
    for args in (["watch", "--plain"], ["watch"]):  # stdout is a pipe: plain is implied
        result = pool.cli.run(*args)
        assert result.code == 1, args
        assert result.out == ""
        assert result.err.startswith("agent-pool: error: the daemon is not running")
        assert result.err.count("\n") == 1

    # On a terminal the dashboard is chosen, and it checks for the daemon before starting.
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agent_pool", "watch"],
            cwd=pool.cli.cwd,
            env=pool.cli.env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 1
    assert proc.stderr.startswith("agent-pool: error: the daemon is not running")


def _read_until(fd: int, marker: bytes, timeout: float = 20.0) -> bytes:
    """What a terminal shows until `marker` appears in it (the screen is drawn)."""
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{marker!r} never appeared on the terminal: {bytes(seen[-500:])!r}"
            )
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            seen += os.read(fd, 65536)
    return bytes(seen)


def test_on_a_terminal_the_dashboard_draws_the_pool_and_q_quits(pool: Pool) -> None:
    pool.start()
    name = pool.status()["pool"]
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = pool.cli.env | {"TERM": "xterm-256color"}
    with subprocess.Popen(
        [sys.executable, "-m", "agent_pool", "watch"],
        cwd=pool.cli.cwd,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    ) as dashboard:
        os.close(terminal)
        try:
            _read_until(controller, f"pool {name}".encode())
            os.write(controller, b"q")
            deadline = time.monotonic() + 20
            while dashboard.poll() is None and time.monotonic() < deadline:
                # Keep draining the terminal: a full one would block the dashboard.
                if select.select([controller], [], [], 0.1)[0]:
                    with contextlib.suppress(OSError):
                        os.read(controller, 65536)
            assert dashboard.poll() == 0
        finally:
            if dashboard.poll() is None:
                dashboard.kill()
                dashboard.wait(5)
            os.close(controller)


def test_other_commands_never_load_textual(pool: Pool) -> None:
    probe = (
        "import sys\n"
        "from agent_pool.cli.main import cli\n"
        "assert 'watch' in cli.commands\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'textual'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=pool.cli.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
