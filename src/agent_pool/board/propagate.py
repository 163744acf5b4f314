"""How a change to one task reaches the tasks that depend on it.

Completion unblocks dependants whose every dependency is done; failure and
cancellation cascade downstream; a retry reopens what the cascade closed. These run
inside the caller's transaction, on the writer's connection.

A dependency the board no longer holds is looked up in the archive, so it counts
exactly as it did on the board. Dependants are always on the board: the archive takes
only tasks nothing unfinished depends on, and archived tasks never change again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agent_pool.board import sql, transitions
from agent_pool.board.archive import BoardArchive
from agent_pool.board.models import TERMINAL, TaskStatus


def dep_status(conn: sqlite3.Connection, archive: BoardArchive, dep: str) -> TaskStatus | None:
    """A dependency's status: on the board, else in the archive; None if it is missing."""
    status = sql.status_of(conn, dep)
    return archive.status_of(dep) if status is None else status


def status_from_deps(
    conn: sqlite3.Connection, archive: BoardArchive, depends_on: Iterable[str]
) -> tuple[TaskStatus, str | None]:
    """The status a task with these dependencies should have, and the dependency that
    failed or cancelled it if one did (that decides at once). Otherwise the task is
    pending only if every dependency completed; a missing one has not.
    """
    waiting = False
    for dep in depends_on:
        status = dep_status(conn, archive, dep)
        if status is TaskStatus.FAILED or status is TaskStatus.CANCELLED:
            return status, dep
        waiting = waiting or status is not TaskStatus.COMPLETED
    return (TaskStatus.BLOCKED if waiting else TaskStatus.PENDING), None


def unblock(
    conn: sqlite3.Connection, archive: BoardArchive, completed: str, now: float
) -> tuple[str, ...]:
    """Blocked dependants of `completed` whose dependencies are now all done -> pending."""
    unblocked: list[str] = []
    for dependant_id in sql.dependants_of(conn, completed):
        if sql.status_of(conn, dependant_id) is not TaskStatus.BLOCKED:
            continue
        if _all_deps_completed(conn, archive, dependant_id):
            conn.execute(sql.UNBLOCK, (now, dependant_id))
            unblocked.append(dependant_id)
    return tuple(unblocked)


def _all_deps_completed(conn: sqlite3.Connection, archive: BoardArchive, task_id: str) -> bool:
    for dep, status in conn.execute(sql.UNFINISHED_DEPS, (task_id,)).fetchall():
        # A status here is one on the board, not completed; None: ask the archive.
        if status is not None or archive.status_of(dep) is not TaskStatus.COMPLETED:
            return False
    return True


def cascade(conn: sqlite3.Connection, root: str, status: TaskStatus, now: float) -> tuple[str, ...]:
    """Fail or cancel every unfinished task downstream of `root`; their ids.

    Each dependant records the dependency that failed it (`cascaded_from`), so a retry
    can reopen the chain link by link. Once changed a task is terminal, so each task
    is visited once, even in a diamond.
    """
    changed: list[str] = []
    stack = [root]
    while stack:
        cause = stack.pop()
        for dependant_id in sql.dependants_of(conn, cause):
            dependant = sql.require_task(conn, dependant_id)
            if dependant.status in TERMINAL:
                continue
            sql.save_task(conn, transitions.cascade(dependant, status, cause, now))
            changed.append(dependant_id)
            stack.append(dependant_id)
    return tuple(changed)


def reopen_cascaded(conn: sqlite3.Connection, archive: BoardArchive, root: str, now: float) -> None:
    """Send the tasks a cascade from `root` closed back to blocked, transitively."""
    stack = [root]
    while stack:
        cause = stack.pop()
        for dependant_id in sql.dependants_of(conn, cause):
            dependant = sql.require_task(conn, dependant_id)
            if dependant.status not in transitions.CASCADE_VERB:
                continue
            if dependant.cascaded_from != cause:  # closed by hand or by another cause
                continue
            status, other = status_from_deps(conn, archive, dependant.depends_on)
            if other is not None:
                # Another dependency failed too: it now explains this task, and what
                # hangs below stays closed along with it.
                sql.save_task(conn, transitions.cascade(dependant, status, other, now))
                continue
            sql.save_task(conn, transitions.reopen(dependant, status))
            stack.append(dependant_id)
