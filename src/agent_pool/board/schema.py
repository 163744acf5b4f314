"""The board's SQLite schema, its connections, and the row <-> record mapping.

Design notes (why the schema looks like this):
- Message bodies live once, in `messages`; a task row is the state machine around
  its message and reads the body through a primary-key join.
- `tasks.seq` is the rowid, so arrival order costs nothing to keep.
- Dependency edges have their own table, keyed both ways: `task_id` to build the
  cycle check and `waits_on`, `dep_id` to find dependants on completion or failure.
  `tasks.depends_on` keeps the same ids as JSON, in their given order, so reading a
  record needs no second query; edges never change after insert, so the two agree.
- Every query the daemon runs per event is an index search: the scheduling index
  `tasks_queue` ends in `ready_at` so the "ready yet?" filter is answered from the
  index before any row is read; `next_wakeup` has a partial index over pending
  tasks. Both plans are pinned with INDEXED BY (see `sql.py`).
- Status counts and per-recipient costs are kept in small tables by triggers, so
  `status` stays O(1) however much history the board holds. Cost totals are not
  decremented when a task row is deleted: money spent stays spent.
- No STRICT tables, RETURNING or UPSERT: any SQLite from 3.8.2 on opens the board.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from agent_pool.board.models import (
    BoardNotFoundError,
    BoardNotReadyError,
    BoardOpenError,
    TaskStatus,
)

SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_MS: Final = 5000

_STATUS_CHECK: Final = ", ".join(f"'{status.value}'" for status in TaskStatus)

# Built from the TaskStatus enum (no outside input), so the CHECK never drifts from it.
_SCHEMA_V1: Final = f"""
CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    digest      TEXT NOT NULL,
    sender      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    type        TEXT NOT NULL,
    in_reply_to TEXT,
    routed_at   REAL NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX messages_by_recipient ON messages (recipient);

CREATE TABLE tasks (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE REFERENCES messages (id),
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    type            TEXT NOT NULL,
    priority        TEXT NOT NULL,
    prio_rank       INTEGER NOT NULL,
    depends_on      TEXT NOT NULL,
    contracts       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ({_STATUS_CHECK})),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    ready_at        REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    exit_code       INTEGER,
    pid             INTEGER,
    pgid            INTEGER,
    proc_start_time REAL,
    log_path        TEXT,
    result          TEXT,
    failure_reason  TEXT,
    needs_attention INTEGER NOT NULL DEFAULT 0,
    cascaded_from   TEXT,
    cost_usd        REAL NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    num_turns       INTEGER NOT NULL DEFAULT 0,
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    handoffs        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_queue ON tasks (status, recipient, prio_rank DESC, seq, ready_at);
CREATE INDEX tasks_wakeup ON tasks (ready_at) WHERE status = 'pending';
CREATE INDEX tasks_by_status ON tasks (status, seq);
CREATE INDEX tasks_by_recipient ON tasks (recipient, seq);
CREATE INDEX tasks_attention ON tasks (seq) WHERE needs_attention = 1;

CREATE TABLE deps (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    dep_id  TEXT NOT NULL,
    PRIMARY KEY (task_id, dep_id)
) WITHOUT ROWID;
CREATE INDEX deps_by_dep ON deps (dep_id);

CREATE TABLE task_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO task_counts (status, n) VALUES {", ".join(f"('{s.value}', 0)" for s in TaskStatus)};

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
WHEN OLD.status != NEW.status BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TABLE recipient_costs (recipient TEXT PRIMARY KEY, cost_usd REAL NOT NULL)
WITHOUT ROWID;
CREATE TRIGGER tasks_cost_update AFTER UPDATE OF cost_usd ON tasks
WHEN NEW.cost_usd != OLD.cost_usd BEGIN
    INSERT OR IGNORE INTO recipient_costs (recipient, cost_usd) VALUES (NEW.recipient, 0);
    UPDATE recipient_costs SET cost_usd = cost_usd + NEW.cost_usd - OLD.cost_usd
    WHERE recipient = NEW.recipient;
END;
"""  # noqa: S608

# Index i upgrades a board from schema version i to i + 1.
_MIGRATIONS: Final = (_SCHEMA_V1,)


def connect_writer(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the board for writing, schema up to date."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise BoardOpenError(path, f"cannot open: {exc}") from exc
    try:
        _configure(conn)
        _use_wal(conn, path)
        # A crash of the process loses nothing with NORMAL in WAL mode; only a power
        # loss can drop the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise BoardOpenError(path, f"not a usable task board: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """Open an existing board read-only (`mode=ro`: SQLite itself refuses writes)."""
    if not path.is_file():
        raise BoardNotFoundError(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BoardOpenError(path, f"cannot open: {exc}") from exc
    try:
        _configure(conn)
        conn.execute("PRAGMA query_only = ON")
        _check_readable(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise BoardOpenError(path, f"not a usable task board: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    # WAL lets readers (CLI commands) read while the daemon writes, and makes each
    # commit one append to the log.
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise BoardOpenError(path, f"cannot switch to WAL journaling (got {mode!r})")


def _check_readable(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        raise BoardNotReadyError(path)
    _check_not_newer(path, version)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    # IMMEDIATE takes the write lock first, so the version read and the upgrade are
    # one atomic step even if someone else opened the same file.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_not_newer(path, version)
        for script in _MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_not_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise BoardOpenError(
            path,
            f"was written by a newer agent-pool (schema {version}; this version reads "
            f"up to {SCHEMA_VERSION})",
        )


def _statements(script: str) -> list[str]:
    # executescript would commit our transaction first; split on complete statements
    # instead so the whole migration stays one transaction.
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [statement for statement in statements if statement]
