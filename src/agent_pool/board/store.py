"""The task board: every task's state, durable and crash-consistent, in SQLite.

One writer (the daemon) and any number of read-only readers (CLI commands), over WAL.
Every public write is atomic on its own; `transaction()` groups many into one commit.
Time is always passed in as `now` (epoch seconds): the board never reads the clock.
The rules of each transition live in `transitions.py`; this module adds storage and
the effects that reach other tasks (unblocking, cascades, reopening).

Old finished tasks move to an archive file (`archive.py`); the board keeps answering
for their ids (dependencies, reused ids, `get`) by asking the archive for any id it
does not hold itself. Listings, counts and scheduling cover the board only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from agent_pool.board import archive, propagate, sql, transitions
from agent_pool.board.archive import BoardArchive
from agent_pool.board.dag import find_cycle
from agent_pool.board.models import (
    TERMINAL,
    BoardNotFoundError,
    BoardReadOnlyError,
    CancelOutcome,
    DependencyCycleError,
    FinishOutcome,
    InvalidTransitionError,
    RecordOutcome,
    SessionResult,
    StoredMessage,
    TaskRecord,
    TaskStatus,
)
from agent_pool.board.schema import connect_reader, connect_writer
from agent_pool.board.sql import row_to_task
from agent_pool.mail.message import WORK_TYPES, Message


class TaskBoard:
    """The board over one SQLite file. Build it with `open` or `open_readonly`.

    `archive` is where the board's archive file is (or will be); it is opened only
    once it exists. Without one the board answers for the ids it holds only, until
    `archive_finished` names one.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        read_only: bool,
        archive: Path | None = None,
    ) -> None:
        self._conn = conn
        self._path = path
        self._read_only = read_only
        self._archive = BoardArchive(archive, read_only=read_only)
        self._depth = 0  # transaction nesting: 0 none, 1 BEGIN, deeper are savepoints

    @classmethod
    def open(cls, path: Path, *, archive: Path | None = None) -> TaskBoard:
        """Open the board for writing, creating the file and schema if needed."""
        return cls(connect_writer(path), path, read_only=False, archive=archive)

    @classmethod
    def open_readonly(cls, path: Path, *, archive: Path | None = None) -> TaskBoard:
        """Open an existing board read-only; BoardNotFoundError if there is none."""
        return cls(connect_reader(path), path, read_only=True, archive=archive)

    @classmethod
    def open_readonly_if_ready(cls, path: Path, *, archive: Path | None = None) -> TaskBoard | None:
        """A reader's board, or None while there is none yet (never started, or the
        daemon is creating it right now): both mean "no tasks yet" to a reader."""
        try:
            return cls.open_readonly(path, archive=archive)
        except BoardNotFoundError:
            return None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def archive_path(self) -> Path | None:
        return self._archive.path

    @property
    def read_only(self) -> bool:
        return self._read_only

    def close(self) -> None:
        self._archive.close()
        self._conn.close()

    def __enter__(self) -> TaskBoard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit; an exception escaping it rolls all back.

        Each write inside stays atomic on its own (a savepoint), so a write that raises,
        such as a refused cycle, leaves the rest of the transaction intact.
        """
        with self._writing():
            yield

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        if self._read_only:
            raise BoardReadOnlyError(self._path)
        conn, depth = self._conn, self._depth
        savepoint = f"board_{depth}"
        # IMMEDIATE takes the write lock up front rather than upgrading mid-transaction.
        conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._depth = depth
            if depth > 0:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
            elif conn.in_transaction:  # SQLite may have rolled back already (disk full)
                conn.execute("ROLLBACK")
            raise
        self._depth = depth
        if depth > 0:
            conn.execute(f"RELEASE {savepoint}")
            return
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # --- mail -------------------------------------------------------------------

    def record_message(self, msg: Message, digest: str, now: float) -> RecordOutcome:
        """Store routed mail once; a task or question also becomes a task.

        A known id is IDENTICAL (same digest: drop the re-post) or CONFLICT, and changes
        nothing; archived ids are known ids. A task that would close a dependency cycle
        raises DependencyCycleError and records nothing. A task born failed or cancelled
        (a dependency already is) cascades at once to tasks that waited for it as a
        missing dependency.
        """
        with self._writing() as conn:
            row = conn.execute(sql.MESSAGE_DIGEST, (msg.id,)).fetchone()
            known = self._archive.digest(msg.id) if row is None else row[0]
            if known is not None:
                return RecordOutcome.IDENTICAL if known == digest else RecordOutcome.CONFLICT
            is_work = msg.type in WORK_TYPES
            # Only a task something already waits for (a missing dependency arriving
            # late) can close a cycle: one index probe spares the usual case a walk
            # over all its ancestors, which made long chains quadratic.
            if is_work and msg.depends_on and self._has_dependants(msg.id):
                cycle = find_cycle(msg.id, msg.depends_on, self._deps_of)
                if cycle is not None:
                    raise DependencyCycleError(cycle)
            conn.execute(sql.MESSAGE_INSERT, sql.message_params(msg, digest, now))
            if is_work:
                self._insert_task(conn, msg, now)
        return RecordOutcome.NEW

    def _insert_task(self, conn: sqlite3.Connection, msg: Message, now: float) -> None:
        status, cause = propagate.status_from_deps(conn, self._archive, msg.depends_on)
        reason = None if cause is None else transitions.cascade_reason(cause, status)
        conn.execute(sql.TASK_INSERT, sql.task_params(msg, now, status, reason, cause))
        if msg.depends_on:
            conn.executemany(sql.DEP_INSERT, [(msg.id, dep) for dep in msg.depends_on])
        if status in TERMINAL:
            propagate.cascade(conn, msg.id, status, now)

    def messages_to(
        self, recipient: str, *, types: set[str] | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        """The latest `limit` messages routed to `recipient` (of `types`), newest last."""
        found: list[StoredMessage] = []
        if limit <= 0:
            return found
        # Walk newest first and stop at `limit` matches, so no SQL is built per filter.
        with contextlib.closing(self._conn.execute(sql.MESSAGES_TO, (recipient,))) as rows:
            for row in rows:
                if types is not None and row[4] not in types:
                    continue
                found.append(sql.row_to_message(row))
                if len(found) >= limit:
                    break
        found.reverse()
        return found

    # --- scheduling ---------------------------------------------------------------

    def next_ready(self, idle: Iterable[str], now: float, limit: int) -> list[TaskRecord]:
        """Tasks to start now: at most one per idle recipient, at most `limit` in all.

        Each recipient offers its first ready pending task (urgent first, FIFO within a
        priority); the offers are ranked the same way across recipients.
        """
        if limit <= 0:
            return []
        offers: list[TaskRecord] = []
        for recipient in dict.fromkeys(idle):
            row = self._conn.execute(sql.NEXT_READY, (recipient, now)).fetchone()
            if row is not None:
                offers.append(row_to_task(row))
        offers.sort(key=lambda task: (-task.priority.rank, task.seq))
        return offers[:limit]

    def next_wakeup(self, now: float) -> float | None:
        """When the earliest backing-off task becomes ready (the daemon's retry timer)."""
        row = self._conn.execute(sql.NEXT_WAKEUP, (now,)).fetchone()
        return None if row is None else float(row[0])

    # --- transitions ----------------------------------------------------------------

    def mark_active(self, task_id: str, now: float, log_path: str) -> TaskRecord:
        """pending -> active: one more attempt starts now, logging to `log_path`."""
        with self._writing():
            return self._save(transitions.start(self._require(task_id), now, log_path))

    def record_process(
        self, task_id: str, pid: int, pgid: int, proc_start_time: float | None
    ) -> TaskRecord:
        """Note an active session's process, to stop it and to adopt it after a crash."""
        with self._writing():
            task = self._require(task_id)
            return self._save(transitions.note_process(task, pid, pgid, proc_start_time))

    def finish(
        self,
        task_id: str,
        result: SessionResult,
        now: float,
        *,
        max_attempts: int,
        backoff_base: float,
        backoff_cap: float = 3600,
    ) -> FinishOutcome:
        """Record a session's end: complete, retry after a backoff, or fail for good.

        A task that is no longer active (cancelled meanwhile) is left as it is.
        """
        with self._writing():
            task = self._require(task_id)
            if task.status is not TaskStatus.ACTIVE:
                return FinishOutcome(task, applied=False)
            done = self._save(
                transitions.finish(
                    task,
                    result,
                    now,
                    max_attempts=max_attempts,
                    backoff_base=backoff_base,
                    backoff_cap=backoff_cap,
                )
            )
            if done.status is TaskStatus.COMPLETED:
                unblocked = propagate.unblock(self._conn, self._archive, task_id, now)
                return FinishOutcome(done, applied=True, unblocked=unblocked)
            if done.status is TaskStatus.FAILED:
                cascaded = propagate.cascade(self._conn, task_id, TaskStatus.FAILED, now)
                return FinishOutcome(done, applied=True, cascaded=cascaded)
            return FinishOutcome(done, applied=True)

    def requeue_interrupted(
        self, task_id: str, now: float, *, usage: SessionResult | None = None
    ) -> TaskRecord:
        """active -> pending, the attempt not counted (the daemon stopped or crashed).

        `usage`, if known, adds what the interrupted session already spent.
        """
        with self._writing():
            return self._save(transitions.requeue(self._require(task_id), now, usage))

    def mark_handoff(
        self,
        task_id: str,
        now: float,
        *,
        max_handoffs: int = 2,
        usage: SessionResult | None = None,
    ) -> TaskRecord:
        """active -> pending for a fresh session, the attempt not counted.

        Past `max_handoffs` the task still goes back to the queue, flagged for attention.
        """
        with self._writing():
            task = self._require(task_id)
            return self._save(transitions.hand_off(task, now, max_handoffs, usage))

    def cancel(self, task_id: str, now: float) -> CancelOutcome:
        """Cancel an unfinished task and, transitively, every unfinished dependant.

        An active task keeps its pid and pgid on the record: the daemon stops that
        process, and a later `finish` on the task changes nothing.
        """
        with self._writing():
            task = self._require(task_id)
            cancelled = self._save(transitions.cancel(task, now))
            cascaded = propagate.cascade(self._conn, task_id, TaskStatus.CANCELLED, now)
        return CancelOutcome(cancelled, previous=task.status, cascaded=cascaded)

    def retry(self, task_id: str, now: float) -> TaskRecord:
        """failed/cancelled -> pending (or blocked), with fresh attempts.

        Tasks failed or cancelled because of this one go back to blocked, transitively.
        A task whose own dependency failed or was cancelled cannot be retried alone:
        the error names the dependency to retry instead.
        """
        with self._writing():
            task = self._require(task_id)
            status, cause = propagate.status_from_deps(self._conn, self._archive, task.depends_on)
            if cause is not None and task.status in transitions.CASCADE_VERB:
                raise InvalidTransitionError(
                    task_id,
                    task.status,
                    "retry",
                    f"its {transitions.cascade_reason(cause, status)}; retry {cause!r} "
                    "instead (its dependants reopen with it)",
                )
            retried = self._save(transitions.retry(task, status, now))
            propagate.reopen_cascaded(self._conn, self._archive, task_id, now)
        return retried

    # --- reads ----------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        """The task on the board, else from the archive (`archived=True`), else None."""
        task = sql.load_task(self._conn, task_id)
        return self._archive.load(task_id) if task is None else task

    def has_task(self, task_id: str) -> bool:
        """Whether the task is on the board itself (archived tasks are not)."""
        return self._conn.execute(sql.TASK_EXISTS, (task_id,)).fetchone() is not None

    def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        recipient: str | None = None,
        limit: int = 1000,
    ) -> list[TaskRecord]:
        """The newest `limit` tasks on the board matching the filters, newest first (by
        arrival). Archived tasks are not listed: this is the live board."""
        params: list[object] = []
        if status is not None:
            params.append(status.value)
        if recipient is not None:
            params.append(recipient)
        params.append(limit)
        query = sql.LIST_TASKS[status is not None, recipient is not None]
        return [row_to_task(row) for row in self._conn.execute(query, params)]

    def active_tasks(self) -> list[TaskRecord]:
        return [row_to_task(row) for row in self._conn.execute(sql.ACTIVE_TASKS)]

    def needs_attention(self) -> list[TaskRecord]:
        return [row_to_task(row) for row in self._conn.execute(sql.ATTENTION_TASKS)]

    def counts(self) -> dict[TaskStatus, int]:
        """Tasks per status on the board, every status present (kept by triggers: no
        table scan). Archived tasks are not counted: they left the board; see
        `archived_count`."""
        counts = dict.fromkeys(TaskStatus, 0)
        for status, count in self._conn.execute(sql.COUNTS):
            counts[TaskStatus(status)] = count
        return counts

    def queued_by_recipient(self) -> dict[str, int]:
        """Pending plus blocked tasks per recipient (recipients with none are absent)."""
        return dict(self._conn.execute(sql.QUEUED_BY_RECIPIENT).fetchall())

    def waits_on(self, task_id: str) -> list[tuple[str, str]]:
        """The dependencies `task_id` still waits for, with their status or "missing".

        Completed dependencies, archived or not, are left out; an unknown task waits
        on nothing.
        """
        task = self.get(task_id)
        if task is None:
            return []
        waiting: list[tuple[str, str]] = []
        for dep in task.depends_on:
            status = propagate.dep_status(self._conn, self._archive, dep)
            if status is not TaskStatus.COMPLETED:
                waiting.append((dep, "missing" if status is None else status.value))
        return waiting

    def total_cost(self) -> float:
        """Everything ever spent, archived tasks included (costs never go down)."""
        return float(self._conn.execute(sql.TOTAL_COST).fetchone()[0])

    def tokens_by_recipient(self) -> dict[str, tuple[int, int]]:
        """(input, output) tokens every recipient's sessions used, archived ones included."""
        try:
            rows = self._conn.execute(sql.TOKENS_BY_RECIPIENT).fetchall()
        except sqlite3.OperationalError:
            return {}  # a read-only reader of a board no writer has upgraded yet
        return {
            recipient: (int(tokens_in), int(tokens_out))
            for recipient, tokens_in, tokens_out in rows
        }

    def cost_today(self) -> float:
        """What sessions recorded today (local time), archived tasks included."""
        try:
            return float(self._conn.execute(sql.COST_TODAY).fetchone()[0])
        except sqlite3.OperationalError:
            return 0.0  # a read-only reader of a board no writer has upgraded yet

    def cost_by_recipient(self) -> dict[str, float]:
        rows = self._conn.execute(sql.COST_BY_RECIPIENT)
        return {recipient: float(cost) for recipient, cost in rows}

    def unfinished_ids(self) -> set[str]:
        """Ids of every task not yet completed, failed or cancelled."""
        return {row[0] for row in self._conn.execute(sql.UNFINISHED_IDS)}

    def archived_count(self) -> int:
        """How many tasks the archive holds (0 while there is none)."""
        return self._archive.size()

    # --- archive --------------------------------------------------------------------

    def archive_finished(self, archive_path: Path, *, before: float, limit: int = 500) -> int:
        """Move up to `limit` finished tasks out of the board into `archive_path`; how many.

        A task moves when it is completed, failed or cancelled, finished before
        `before`, and no unfinished task depends on it; its message and its own
        dependency edges move with it. Small batches keep each call short: call again
        while it returns `limit`. Two commits, archive first; a crash between them is
        finished by the next call. Not inside `transaction()`.
        """
        moving = self._copy_to_archive(archive_path, before=before, limit=limit)
        return self._drop_archived(moving)

    def prune_archive(self, max_tasks: int, *, limit: int = 500) -> int:
        """Delete the earliest-finished archived tasks beyond `max_tasks` (at most
        `limit` per call); how many. Their ids are then unknown to the board."""
        if self._read_only:
            raise BoardReadOnlyError(self._path)
        return self._archive.prune(max_tasks, limit)

    def _copy_to_archive(self, archive_path: Path, *, before: float, limit: int) -> tuple[str, ...]:
        """Step one: copy what may move into the archive and commit there; the ids."""
        if self._read_only:
            raise BoardReadOnlyError(self._path)
        if self._depth:
            raise RuntimeError("archive_finished cannot run inside a board transaction")
        self._archive = self._archive.at(archive_path)
        ids = archive.archivable(self._conn, before, limit)
        if ids:
            self._archive.store(archive.read_moving(self._conn, ids))
        return ids

    def _drop_archived(self, ids: tuple[str, ...]) -> int:
        """Step two: delete the copied tasks from the board in one commit; how many."""
        if not ids:
            return 0
        with self._writing() as conn:
            return archive.delete_moved(conn, ids)

    # --- internals --------------------------------------------------------------------

    def _has_dependants(self, task_id: str) -> bool:
        return sql.has_dependants(self._conn, task_id) or self._archive.has_dependants(task_id)

    def _deps_of(self, task_id: str) -> list[str]:
        # Edges never change, so an archived task's edges are the ones it had here.
        return sql.deps_of(self._conn, task_id) or self._archive.deps_of(task_id)

    def _require(self, task_id: str) -> TaskRecord:
        return sql.require_task(self._conn, task_id)

    def _save(self, task: TaskRecord) -> TaskRecord:
        return sql.save_task(self._conn, task)
