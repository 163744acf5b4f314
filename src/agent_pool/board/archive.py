"""The board archive: finished tasks moved out of the hot board, still answerable by id.

The archive is a second SQLite file with the board's `tasks`, `messages` and `deps`
tables, so the board's own lookup statements (`sql.py`) read it unchanged. It is
opened on first use and only if it exists: a pool that never archived pays nothing.
A move is two commits, archive first (see the notes in `schema.py`); the functions
here are its steps, and `TaskBoard.archive_finished` runs them in order.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from agent_pool.board import sql
from agent_pool.board.models import (
    BoardNotFoundError,
    BoardReadOnlyError,
    TaskRecord,
    TaskStatus,
)
from agent_pool.board.schema import MESSAGES_TABLE, Schema, connect_reader, connect_writer

# Every column of a board task row, copied as it is.
_TASK_COLUMNS: Final = (
    "seq", "id", "sender", "recipient", "type", "priority", "prio_rank", "depends_on",
    "contracts", "status", "attempts", "created_at", "ready_at", "started_at",
    "finished_at", "exit_code", "pid", "pgid", "proc_start_time", "log_path", "result",
    "failure_reason", "needs_attention", "cascaded_from", "cost_usd", "input_tokens",
    "output_tokens", "num_turns", "duration_ms", "handoffs",
)  # fmt: skip
_MESSAGE_COLUMNS: Final = (
    "id", "digest", "sender", "recipient", "type", "in_reply_to", "routed_at", "body",
)  # fmt: skip


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)


def _slots(columns: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in columns)


_ARCHIVE_TABLES: Final = """
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    type            TEXT NOT NULL,
    priority        TEXT NOT NULL,
    prio_rank       INTEGER NOT NULL,
    depends_on      TEXT NOT NULL,
    contracts       TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    ready_at        REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL NOT NULL,
    exit_code       INTEGER,
    pid             INTEGER,
    pgid            INTEGER,
    proc_start_time REAL,
    log_path        TEXT,
    result          TEXT,
    failure_reason  TEXT,
    needs_attention INTEGER NOT NULL,
    cascaded_from   TEXT,
    cost_usd        REAL NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    num_turns       INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    handoffs        INTEGER NOT NULL
);
CREATE INDEX archive_by_finished ON tasks (finished_at);

CREATE TABLE deps (
    task_id TEXT NOT NULL,
    dep_id  TEXT NOT NULL,
    PRIMARY KEY (task_id, dep_id)
) WITHOUT ROWID;
CREATE INDEX deps_by_dep ON deps (dep_id);

CREATE TABLE archive_size (one INTEGER PRIMARY KEY CHECK (one = 1), tasks INTEGER NOT NULL);
INSERT INTO archive_size (one, tasks) VALUES (1, 0);
CREATE TRIGGER archive_size_insert AFTER INSERT ON tasks BEGIN
    UPDATE archive_size SET tasks = tasks + 1;
END;
CREATE TRIGGER archive_size_delete AFTER DELETE ON tasks BEGIN
    UPDATE archive_size SET tasks = tasks - 1;
END;
"""
_ARCHIVE_V1: Final = MESSAGES_TABLE + _ARCHIVE_TABLES

ARCHIVE_SCHEMA: Final = Schema("board archive", (_ARCHIVE_V1,))

# On the hot board: terminal tasks finished before a time, earliest first, that no
# unfinished task depends on. One search of the partial index `tasks_finished` (its
# WHERE is repeated exactly, or SQLite cannot use it); the dependant check is a
# search of `deps_by_dep` per candidate.
ARCHIVABLE: Final = """
SELECT t.id FROM tasks AS t INDEXED BY tasks_finished
WHERE t.status IN ('completed', 'failed', 'cancelled') AND t.finished_at < ?
  AND NOT EXISTS (
    SELECT 1 FROM deps AS d JOIN tasks AS u ON u.id = d.task_id
    WHERE d.dep_id = t.id AND u.status NOT IN ('completed', 'failed', 'cancelled'))
ORDER BY t.finished_at LIMIT ?
"""
# Built once from the column tuples above (constants, no outside input).
_READ_TASK: Final = f"SELECT {_names(_TASK_COLUMNS)} FROM tasks WHERE id = ?"  # noqa: S608
_READ_MESSAGE: Final = f"SELECT {_names(_MESSAGE_COLUMNS)} FROM messages WHERE id = ?"  # noqa: S608
_READ_EDGES: Final = "SELECT task_id, dep_id FROM deps WHERE task_id = ?"
_DELETE_FINISHED_TASK: Final = """
DELETE FROM tasks WHERE id = ? AND status IN ('completed', 'failed', 'cancelled')
"""
_DELETE_TASK: Final = "DELETE FROM tasks WHERE id = ?"
_DELETE_MESSAGE: Final = "DELETE FROM messages WHERE id = ?"
_DELETE_EDGES: Final = "DELETE FROM deps WHERE task_id = ?"

# In the archive.
_STORE_TASK: Final = f"INSERT INTO tasks ({_names(_TASK_COLUMNS)}) VALUES ({_slots(_TASK_COLUMNS)})"  # noqa: S608
_STORE_MESSAGE: Final = (
    f"INSERT OR IGNORE INTO messages ({_names(_MESSAGE_COLUMNS)}) "  # noqa: S608
    f"VALUES ({_slots(_MESSAGE_COLUMNS)})"
)
_STORE_EDGE: Final = "INSERT OR IGNORE INTO deps (task_id, dep_id) VALUES (?, ?)"
_SIZE: Final = "SELECT tasks FROM archive_size"
_EARLIEST_FINISHED: Final = """
SELECT id FROM tasks INDEXED BY archive_by_finished ORDER BY finished_at LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class Moving:
    """The rows of the tasks being archived, as read from the board."""

    ids: tuple[str, ...]
    tasks: list[tuple[object, ...]]
    messages: list[tuple[object, ...]]
    edges: list[tuple[object, ...]]


# --- the steps on the hot board (the caller's connection) -----------------------------


def archivable(conn: sqlite3.Connection, before: float, limit: int) -> tuple[str, ...]:
    """Up to `limit` tasks that may leave the board: finished before `before`, and
    nothing unfinished depends on them."""
    if limit <= 0:
        return ()
    return tuple(task_id for (task_id,) in conn.execute(ARCHIVABLE, (before, limit)))


def read_moving(conn: sqlite3.Connection, ids: Sequence[str]) -> Moving:
    """Everything that moves with `ids`: task rows, their messages, their own edges."""
    tasks: list[tuple[object, ...]] = []
    messages: list[tuple[object, ...]] = []
    edges: list[tuple[object, ...]] = []
    for task_id in ids:
        tasks.extend(conn.execute(_READ_TASK, (task_id,)))
        messages.extend(conn.execute(_READ_MESSAGE, (task_id,)))
        edges.extend(conn.execute(_READ_EDGES, (task_id,)))
    return Moving(tuple(ids), tasks, messages, edges)


def delete_moved(conn: sqlite3.Connection, ids: Sequence[str]) -> int:
    """Remove archived tasks from the board, inside the caller's transaction; how many.

    A task is removed only while it is still finished: one that changed since its copy
    (never within one daemon turn) stays, and the board's row keeps winning over the
    archive's until the next move replaces that copy.
    """
    removed = 0
    for task_id in ids:
        if conn.execute(_DELETE_FINISHED_TASK, (task_id,)).rowcount == 0:
            continue
        conn.execute(_DELETE_EDGES, (task_id,))
        conn.execute(_DELETE_MESSAGE, (task_id,))
        removed += 1
    return removed


# --- the archive file ---------------------------------------------------------------


class BoardArchive:
    """The archive of one board, opened on first use, and only once the file exists.

    Without a path the board has no archive, and every lookup finds nothing.
    """

    def __init__(self, path: Path | None, *, read_only: bool) -> None:
        self._path = path
        self._read_only = read_only
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path | None:
        return self._path

    def at(self, path: Path) -> BoardArchive:
        """This archive, which must live at `path`; a board without one adopts `path`."""
        if self._path is None:
            return BoardArchive(path, read_only=self._read_only)
        if self._path.absolute() != path.absolute():
            raise ValueError(f"this board's archive is {self._path}, not {path}")
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- lookups: each one index search, nothing when there is no archive ---------

    def digest(self, message_id: str) -> str | None:
        conn = self._existing()
        row = None if conn is None else conn.execute(sql.MESSAGE_DIGEST, (message_id,)).fetchone()
        return None if row is None else str(row[0])

    def status_of(self, task_id: str) -> TaskStatus | None:
        conn = self._existing()
        return None if conn is None else sql.status_of(conn, task_id)

    def load(self, task_id: str) -> TaskRecord | None:
        conn = self._existing()
        task = None if conn is None else sql.load_task(conn, task_id)
        return None if task is None else replace(task, archived=True)

    def deps_of(self, task_id: str) -> list[str]:
        conn = self._existing()
        return [] if conn is None else sql.deps_of(conn, task_id)

    def has_dependants(self, task_id: str) -> bool:
        conn = self._existing()
        return conn is not None and sql.has_dependants(conn, task_id)

    def size(self) -> int:
        """How many tasks the archive holds (kept by triggers: no table scan)."""
        conn = self._existing()
        return 0 if conn is None else int(conn.execute(_SIZE).fetchone()[0])

    # --- writes -----------------------------------------------------------------------

    def store(self, moving: Moving) -> None:
        """Copy `moving` into the archive in one durable commit (creating the file).

        Re-storing a task replaces its row: after a crash between copy and delete the
        task may have changed on the board (a retry) before it moves again. Messages
        and edges never change, so a second copy of them is ignored.
        """
        with self._transaction(self._writable()) as conn:
            for task_id in moving.ids:
                conn.execute(_DELETE_TASK, (task_id,))
            conn.executemany(_STORE_TASK, moving.tasks)
            conn.executemany(_STORE_MESSAGE, moving.messages)
            conn.executemany(_STORE_EDGE, moving.edges)

    def prune(self, max_tasks: int, limit: int) -> int:
        """Delete the earliest-finished tasks beyond `max_tasks`, at most `limit`; how many."""
        if max_tasks < 0:
            raise ValueError(f"max_tasks must be at least 0, not {max_tasks}")
        conn = self._existing()
        if conn is None:
            return 0
        if self._read_only:
            raise BoardReadOnlyError(self._path or Path())
        excess = min(self.size() - max_tasks, limit)
        if excess <= 0:
            return 0
        ids = [task_id for (task_id,) in conn.execute(_EARLIEST_FINISHED, (excess,))]
        with self._transaction(conn):
            for task_id in ids:
                conn.execute(_DELETE_EDGES, (task_id,))
                conn.execute(_DELETE_TASK, (task_id,))
                conn.execute(_DELETE_MESSAGE, (task_id,))
        return len(ids)

    # --- internals --------------------------------------------------------------------

    def _existing(self) -> sqlite3.Connection | None:
        """The connection, opening the file if it exists by now; None while it does not."""
        if self._conn is None and self._path is not None and self._path.exists():
            self._conn = self._open_reader(self._path) if self._read_only else self._writer()
        return self._conn

    def _writable(self) -> sqlite3.Connection:
        if self._read_only:
            raise BoardReadOnlyError(self._path or Path())
        return self._writer()

    def _writer(self) -> sqlite3.Connection:
        if self._path is None:
            raise ValueError("this board has no archive path")
        if self._conn is None:
            # FULL: an archive commit must be on disk before the board deletes the
            # originals (a power loss must not lose both).
            self._conn = connect_writer(self._path, ARCHIVE_SCHEMA, durable=True)
        return self._conn

    @staticmethod
    def _open_reader(path: Path) -> sqlite3.Connection | None:
        try:
            return connect_reader(path, ARCHIVE_SCHEMA)
        except BoardNotFoundError:  # the daemon is creating it this instant: empty yet
            return None

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
