"""The dashboard's reads and actions: daemon status, the board (read-only), transcripts.

Blocking I/O, meant for a worker thread. A `PoolSource` keeps its board connection
for the thread that made it (SQLite connections stay in their thread).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent_pool.board import BoardError, TaskBoard, TaskRecord, TaskStatus
from agent_pool.cli.logs_cmd import find_task_logs
from agent_pool.control.client import DaemonNotRunningError, request
from agent_pool.errors import AgentPoolError
from agent_pool.names import check_message_id
from agent_pool.session.transcript import LogEvents, render_transcript
from agent_pool.watch.view import TASK_ROWS, DependencyView, dependency_view

if TYPE_CHECKING:
    from agent_pool.pool.layout import PoolLayout

STATUS_TIMEOUT: Final = 5.0
FAILED_SHOWN: Final = 50
TRANSCRIPT_LINES: Final = 20_000


@dataclass(frozen=True, slots=True)
class Query:
    """What the screen currently asks for: a status filter and the highlighted task."""

    status: str | None = None
    selected: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent-enough read of everything the dashboard shows.

    `status` is None when the daemon did not answer; `daemon_running` tells a stopped
    daemon from one that answered with an error (`problem` says which).
    """

    taken_at: float
    query: Query
    status: dict[str, Any] | None
    daemon_running: bool
    problem: str | None = None
    tasks: tuple[TaskRecord, ...] = ()
    failed: tuple[TaskRecord, ...] = ()
    dependency: DependencyView | None = None
    board_problem: str | None = None


class PoolSource:
    def __init__(self, layout: PoolLayout, *, clock: Callable[[], float] = time.time) -> None:
        self._layout = layout
        self._clock = clock
        self._board: TaskBoard | None = None

    def snapshot(self, query: Query) -> Snapshot:
        status, running, problem = self._status()
        try:
            tasks, failed, dependency = self._board_reads(query)
        except AgentPoolError as exc:
            self.close()  # a fresh connection next time
            return Snapshot(
                self._clock(), query, status, running, problem, board_problem=exc.message
            )
        return Snapshot(self._clock(), query, status, running, problem, tasks, failed, dependency)

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

    def _status(self) -> tuple[dict[str, Any] | None, bool, str | None]:
        try:
            data = request(self._layout.socket_path, "status", timeout=STATUS_TIMEOUT)
        except DaemonNotRunningError as exc:
            return None, False, exc.message
        except AgentPoolError as exc:
            return None, True, exc.message
        return (data if isinstance(data, dict) else None), True, None

    def _board_reads(
        self, query: Query
    ) -> tuple[tuple[TaskRecord, ...], tuple[TaskRecord, ...], DependencyView | None]:
        board = self._open_board()
        if board is None:
            return (), (), None  # the daemon has never run here: no tasks yet
        status = TaskStatus(query.status) if query.status else None
        recent = board.list_tasks(limit=TASK_ROWS)
        tasks = recent if status is None else board.list_tasks(status=status, limit=TASK_ROWS)
        failed = board.list_tasks(status=TaskStatus.FAILED, limit=FAILED_SHOWN)
        dependency = None
        if query.selected is not None:
            selected = board.get(query.selected)
            if selected is not None:
                dependency = _dependencies(board, selected, recent)
        return tuple(tasks), tuple(failed), dependency

    def _open_board(self) -> TaskBoard | None:
        if self._board is None:
            self._board = TaskBoard.open_readonly_if_ready(self._layout.board_db)
        return self._board


def _dependencies(board: TaskBoard, task: TaskRecord, recent: list[TaskRecord]) -> DependencyView:
    """Dependencies straight from the board; dependants from the newest tasks (the
    board has no reverse index we may use, and a dependant is nearly always newer
    than what it waits for)."""
    statuses: dict[str, str | None] = {}
    for dep in task.depends_on:
        record = board.get(dep)
        statuses[dep] = str(record.status) if record is not None else None
    return dependency_view(task, statuses, recent)


def send_action(layout: PoolLayout, op: str, task_id: str) -> str:
    """Cancel or retry `task_id` through the daemon; the line to show on success.

    Raises the daemon's refusal (or DaemonNotRunningError) as an AgentPoolError.
    """
    answer = request(layout.socket_path, op, id=task_id)
    if op == "cancel":
        cascaded = (answer or {}).get("cascaded") or []
        extra = f" (and its dependants {', '.join(cascaded)})" if cascaded else ""
        return f"cancelled {task_id}{extra}"
    return f"{task_id} is {(answer or {}).get('status', 'queued')} again"


def transcript_lines(layout: PoolLayout, task_id: str, limit: int = TRANSCRIPT_LINES) -> list[str]:
    """Every attempt of `task_id` as readable lines, as `agent-pool logs` shows them."""
    check_message_id(task_id, "task id")  # it becomes a file name below
    record = _record(layout, task_id)
    board_log = Path(record.log_path) if record is not None and record.log_path else None
    attempts = find_task_logs(layout, task_id, board_log)
    if not attempts:
        state = f" (it is {record.status})" if record is not None else ""
        return [f"task {task_id} has no session log yet{state}"]
    lines: list[str] = []
    for attempt in attempts:
        if lines:
            lines.append("")
        lines.append(f"=== attempt {attempt.number}: {attempt.path} ===")
        events = LogEvents(attempt.path)
        before = len(lines)
        with contextlib.closing(events.events()) as stream:  # closes the log if cut short
            for line in render_transcript(stream):
                if len(lines) >= limit:
                    lines.append(f"[cut at {limit} lines; see `agent-pool logs {task_id}`]")
                    return lines
                lines.append(line)
        if len(lines) == before:
            lines.append("(no events yet)")
        if events.skipped:
            lines.append(f"[{events.skipped} unreadable lines skipped]")
    return lines


def _record(layout: PoolLayout, task_id: str) -> TaskRecord | None:
    try:
        board = TaskBoard.open_readonly_if_ready(layout.board_db)
    except BoardError:
        return None  # an unreadable board must not hide logs that are on disk
    if board is None:
        return None
    try:
        return board.get(task_id)
    finally:
        board.close()
