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
- Indexes an older version can live with (it keeps them up to date without knowing
  them) are added at open with IF NOT EXISTS instead of a schema version, so a board
  stays readable by the version that made it: `tasks_finished` (terminal tasks by
  finish time) is the archive's candidate search.

The archive (`archive.py`, its own file, `daemon/board-archive.db`):
- Finished tasks leave the hot board after `board_retention`, so the scheduling
  indexes and the daemon's queries stay small. A task moves with its message row and
  its own dependency edges (task -> dep); edges from tasks still on the board to it
  stay on the board. A task something unfinished still depends on stays.
- The archive has the same `tasks`, `messages` and `deps` tables (so the board's
  record and lookup statements read it unchanged), keyed by id: `seq` is only a
  column there, because the hot board may hand an archived task's rowid out again.
- Ids stay answered after the move: the board asks the archive for ids it does not
  hold (a dependency's status, a reused message id, `get`, the cycle check). The hot
  board wins when an id is in both, which only happens between the two steps below.
- A move is two commits, never one transaction across files (WAL does not make an
  ATTACHed pair atomic): copy into the archive and commit (synchronous FULL, so the
  copy is on disk before the originals go), then delete from the board and commit. A
  crash in between leaves a copy in both; the next run copies again (replacing the
  task row, since a task retried meanwhile has a newer state) and deletes.
- Status counts drop archived tasks (the delete trigger): they count what is on the
  board; the archive keeps its own size. Cost totals stay (no delete trigger).
- `prune_archive` deletes the earliest-finished archived tasks beyond the cap; after
  that their ids are unknown, like ids never seen (a dependency on one is missing).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent_pool.board.models import (
    BoardNotFoundError,
    BoardNotReadyError,
    BoardOpenError,
    TaskStatus,
)

BUSY_TIMEOUT_MS: Final = 5000

_STATUS_CHECK: Final = ", ".join(f"'{status.value}'" for status in TaskStatus)

# The messages table, the same in the board and its archive (both at version 1).
MESSAGES_TABLE: Final = """
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
"""

# Built from the TaskStatus enum (no outside input), so the CHECK never drifts from it.
_SCHEMA_V1: Final = f"""
{MESSAGES_TABLE}CREATE INDEX messages_by_recipient ON messages (recipient);

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

# Terminal tasks by finish time: what the archive moves, oldest first. The partial
# index's WHERE is repeated word for word by `sql.ARCHIVABLE`, which SQLite needs to use it.
# Spend per local calendar day, for "cost today", and tokens per recipient: kept by
# triggers at the moment a session's usage is recorded, so archiving or deleting tasks
# never changes them.
_BOARD_INDEXES: Final = """
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at)
WHERE status IN ('completed', 'failed', 'cancelled');
CREATE TABLE IF NOT EXISTS daily_costs (day TEXT PRIMARY KEY, cost_usd REAL NOT NULL)
WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS tasks_daily_cost AFTER UPDATE OF cost_usd ON tasks
WHEN NEW.cost_usd != OLD.cost_usd BEGIN
    INSERT OR IGNORE INTO daily_costs (day, cost_usd) VALUES (date('now', 'localtime'), 0);
    UPDATE daily_costs SET cost_usd = cost_usd + NEW.cost_usd - OLD.cost_usd
    WHERE day = date('now', 'localtime');
END;
CREATE TABLE IF NOT EXISTS recipient_tokens (
    recipient     TEXT PRIMARY KEY,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS tasks_tokens_update
AFTER UPDATE OF input_tokens, output_tokens ON tasks
WHEN NEW.input_tokens != OLD.input_tokens OR NEW.output_tokens != OLD.output_tokens BEGIN
    INSERT OR IGNORE INTO recipient_tokens (recipient, input_tokens, output_tokens)
    VALUES (NEW.recipient, 0, 0);
    UPDATE recipient_tokens SET
        input_tokens = input_tokens + NEW.input_tokens - OLD.input_tokens,
        output_tokens = output_tokens + NEW.output_tokens - OLD.output_tokens
    WHERE recipient = NEW.recipient;
END;
"""


@dataclass(frozen=True, slots=True)
class Schema:
    """One kind of database file: its migrations and its idempotent extra indexes."""

    what: str  # how errors name the file's kind
    migrations: tuple[str, ...]  # index i upgrades schema version i to i + 1
    indexes: str = ""

    @property
    def version(self) -> int:
        return len(self.migrations)


BOARD_SCHEMA: Final = Schema("task board", (_SCHEMA_V1,), _BOARD_INDEXES)
SCHEMA_VERSION: Final = BOARD_SCHEMA.version


def connect_writer(
    path: Path, schema: Schema = BOARD_SCHEMA, *, durable: bool = False
) -> sqlite3.Connection:
    """Open (creating if needed) a database of `schema` for writing, schema up to date.

    `durable` syncs every commit to disk (synchronous FULL) rather than only at
    checkpoints: for a file whose commit must survive a power loss before another
    file's commit depends on it.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise BoardOpenError(path, f"cannot open: {exc}") from exc
    try:
        _configure(conn)
        _use_wal(conn, path)
        # A crash of the process loses nothing with NORMAL in WAL mode; only a power
        # loss can drop the last commits, never corrupt the file.
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        _migrate(conn, path, schema)
    except sqlite3.Error as exc:
        conn.close()
        raise BoardOpenError(path, f"not a usable {schema.what}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path, schema: Schema = BOARD_SCHEMA) -> sqlite3.Connection:
    """Open an existing database read-only (`mode=ro`: SQLite itself refuses writes)."""
    if not path.is_file():
        raise BoardNotFoundError(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BoardOpenError(path, f"cannot open: {exc}") from exc
    try:
        _configure(conn)
        conn.execute("PRAGMA query_only = ON")
        _check_readable(conn, path, schema)
    except sqlite3.Error as exc:
        conn.close()
        raise BoardOpenError(path, f"not a usable {schema.what}: {exc}") from exc
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


def _check_readable(conn: sqlite3.Connection, path: Path, schema: Schema) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        raise BoardNotReadyError(path)
    _check_not_newer(path, version, schema)


def _migrate(conn: sqlite3.Connection, path: Path, schema: Schema) -> None:
    # IMMEDIATE takes the write lock first, so the version read and the upgrade are
    # one atomic step even if someone else opened the same file.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_not_newer(path, version, schema)
        for script in (*schema.migrations[version:], schema.indexes):
            for statement in _statements(script):
                conn.execute(statement)
        if version != schema.version:
            conn.execute(f"PRAGMA user_version = {schema.version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_not_newer(path: Path, version: int, schema: Schema) -> None:
    if version > schema.version:
        raise BoardOpenError(
            path,
            f"was written by a newer agent-pool (schema {version}; this version reads "
            f"up to {schema.version})",
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
