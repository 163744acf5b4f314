"""The board's SQL statements and the mapping between task rows and records.

Every statement is a fixed string (no SQL is assembled at run time), each written to
be answered by one of the indexes in `schema.py`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from agent_pool.board.models import (
    TERMINAL,
    StoredMessage,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
)
from agent_pool.mail.message import Message, MessageType, Priority

# Column order shared by every task SELECT and `row_to_task`.
_TASK_COLUMNS: Final = """
SELECT t.id, t.sender, t.recipient, t.type, t.priority, t.seq, t.depends_on, t.contracts,
       m.body, t.status, t.attempts, t.created_at, t.ready_at, t.started_at, t.finished_at,
       t.exit_code, t.pid, t.pgid, t.proc_start_time, t.log_path, t.result,
       t.failure_reason, t.needs_attention, t.cascaded_from, t.cost_usd, t.input_tokens,
       t.output_tokens, t.num_turns, t.duration_ms, t.handoffs
"""
TASK_SELECT: Final = _TASK_COLUMNS + "FROM tasks AS t JOIN messages AS m ON m.id = t.id\n"

TASK_INSERT: Final = """
INSERT INTO tasks (id, sender, recipient, type, priority, prio_rank, depends_on, contracts,
                   status, created_at, ready_at, failure_reason, cascaded_from, finished_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# Everything a transition may change; identity columns never change after insert.
TASK_SAVE: Final = """
UPDATE tasks SET status = ?, attempts = ?, ready_at = ?, started_at = ?, finished_at = ?,
    exit_code = ?, pid = ?, pgid = ?, proc_start_time = ?, log_path = ?, result = ?,
    failure_reason = ?, needs_attention = ?, cascaded_from = ?, cost_usd = ?,
    input_tokens = ?, output_tokens = ?, num_turns = ?, duration_ms = ?, handoffs = ?
WHERE id = ?
"""


def task_params(
    msg: Message, now: float, status: TaskStatus, reason: str | None, cause: str | None
) -> tuple[object, ...]:
    """`TASK_INSERT` parameters for a new task; `reason`/`cause` are set by a cascade."""
    finished_at = now if status in TERMINAL else None
    return (
        msg.id, msg.sender, msg.to, msg.type.value, msg.priority.value, msg.priority.rank,
        _ids_json(msg.depends_on), _ids_json(msg.contracts), status.value, now, now,
        reason, cause, finished_at,
    )  # fmt: skip


def message_params(msg: Message, digest: str, now: float) -> tuple[object, ...]:
    return (msg.id, digest, msg.sender, msg.to, msg.type.value, msg.in_reply_to, now, msg.body)


def row_to_message(row: Sequence[Any]) -> StoredMessage:
    """A stored message from a row of `MESSAGES_TO`."""
    msg_id, digest, sender, to, kind, in_reply_to, routed_at, body = row
    return StoredMessage(
        id=msg_id,
        digest=digest,
        sender=sender,
        to=to,
        type=MessageType(kind),
        in_reply_to=in_reply_to,
        routed_at=routed_at,
        body=body,
    )


def save_params(task: TaskRecord) -> tuple[object, ...]:
    return (
        task.status.value,
        task.attempts,
        task.ready_at,
        task.started_at,
        task.finished_at,
        task.exit_code,
        task.pid,
        task.pgid,
        task.proc_start_time,
        task.log_path,
        task.result,
        task.failure_reason,
        int(task.needs_attention),
        task.cascaded_from,
        task.cost_usd,
        task.input_tokens,
        task.output_tokens,
        task.num_turns,
        task.duration_ms,
        task.handoffs,
        task.id,
    )


def row_to_task(row: Sequence[Any]) -> TaskRecord:
    """A record from a row of `TASK_SELECT` (SQLite already returns int/float/str/None)."""
    (
        task_id, sender, to, kind, priority, seq, depends_on, contracts, body, status,
        attempts, created_at, ready_at, started_at, finished_at, exit_code, pid, pgid,
        proc_start_time, log_path, result, failure_reason, needs_attention, cascaded_from,
        cost_usd, input_tokens, output_tokens, num_turns, duration_ms, handoffs,
    ) = row  # fmt: skip
    return TaskRecord(
        id=task_id,
        sender=sender,
        to=to,
        type=MessageType(kind),
        priority=Priority(priority),
        seq=seq,
        depends_on=_ids(depends_on),
        contracts=_ids(contracts),
        body=body,
        status=TaskStatus(status),
        attempts=attempts,
        created_at=created_at,
        ready_at=ready_at,
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        pid=pid,
        pgid=pgid,
        proc_start_time=proc_start_time,
        log_path=log_path,
        result=result,
        failure_reason=failure_reason,
        needs_attention=bool(needs_attention),
        cascaded_from=cascaded_from,
        cost_usd=cost_usd,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        num_turns=num_turns,
        duration_ms=duration_ms,
        handoffs=handoffs,
    )


# The per-recipient scheduling lookup: one search of `tasks_queue`, whose columns are
# exactly this WHERE + ORDER BY (and end in `ready_at`, so the "ready yet?" test reads
# the index, not the rows). It costs the same however many tasks are queued or done.
# INDEXED BY pins the plan: without statistics the planner may prefer the wake-up
# index, which would walk every ready task of every recipient. (It also makes a
# missing index a loud error rather than a silent slowdown.)
NEXT_READY: Final = (
    _TASK_COLUMNS
    + """FROM tasks AS t INDEXED BY tasks_queue JOIN messages AS m ON m.id = t.id
WHERE t.status = 'pending' AND t.recipient = ? AND t.ready_at <= ?
ORDER BY t.prio_rank DESC, t.seq LIMIT 1"""
)
NEXT_WAKEUP: Final = """
SELECT ready_at FROM tasks INDEXED BY tasks_wakeup WHERE status = 'pending' AND ready_at > ?
ORDER BY ready_at LIMIT 1
"""
GET_TASK: Final = TASK_SELECT + "WHERE t.id = ?"
ACTIVE_TASKS: Final = TASK_SELECT + "WHERE t.status = 'active' ORDER BY t.seq"
# Every status but the terminal ones, each an index range of tasks_by_status.
UNFINISHED_IDS: Final = (
    "SELECT id FROM tasks INDEXED BY tasks_by_status "
    "WHERE status IN ('pending', 'blocked', 'active', 'awaiting_approval')"
)
ATTENTION_TASKS: Final = TASK_SELECT + "WHERE t.needs_attention = 1 ORDER BY t.seq"
# list_tasks, keyed by (filter on status, filter on recipient): newest first, one fixed
# statement per filter so each is answered by its own index.
LIST_TASKS: Final = {
    (False, False): TASK_SELECT + "ORDER BY t.seq DESC LIMIT ?",
    (True, False): TASK_SELECT + "WHERE t.status = ? ORDER BY t.seq DESC LIMIT ?",
    (False, True): TASK_SELECT + "WHERE t.recipient = ? ORDER BY t.seq DESC LIMIT ?",
    (True, True): TASK_SELECT
    + "WHERE t.status = ? AND t.recipient = ? ORDER BY t.seq DESC LIMIT ?",
}
TASK_EXISTS: Final = "SELECT 1 FROM tasks WHERE id = ?"
TASK_STATUS: Final = "SELECT status FROM tasks WHERE id = ?"
DEPS_OF: Final = "SELECT dep_id FROM deps WHERE task_id = ?"
DEPENDANTS_OF: Final = "SELECT task_id FROM deps WHERE dep_id = ?"
HAS_DEPENDANTS: Final = "SELECT 1 FROM deps WHERE dep_id = ? LIMIT 1"
DEP_INSERT: Final = "INSERT INTO deps (task_id, dep_id) VALUES (?, ?)"
# A task's dependencies not completed on the board: a status, or NULL for an id the
# board does not hold (missing, or archived: the caller asks the archive).
UNFINISHED_DEPS: Final = """
SELECT d.dep_id, t.status FROM deps AS d LEFT JOIN tasks AS t ON t.id = d.dep_id
WHERE d.task_id = ? AND (t.status IS NULL OR t.status != 'completed')
"""
UNBLOCK: Final = "UPDATE tasks SET status = 'pending', ready_at = ? WHERE id = ?"
COUNTS: Final = "SELECT status, n FROM task_counts"
QUEUED_BY_RECIPIENT: Final = """
SELECT recipient, COUNT(*) FROM tasks WHERE status IN ('pending', 'blocked')
GROUP BY recipient
"""
TOTAL_COST: Final = "SELECT TOTAL(cost_usd) FROM recipient_costs"
COST_BY_RECIPIENT: Final = "SELECT recipient, cost_usd FROM recipient_costs"
TOKENS_BY_RECIPIENT: Final = "SELECT recipient, input_tokens, output_tokens FROM recipient_tokens"
COST_TODAY: Final = "SELECT TOTAL(cost_usd) FROM daily_costs WHERE day = date('now', 'localtime')"

MESSAGE_DIGEST: Final = "SELECT digest FROM messages WHERE id = ?"
MESSAGE_INSERT: Final = """
INSERT INTO messages (id, digest, sender, recipient, type, in_reply_to, routed_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
MESSAGES_TO: Final = """
SELECT id, digest, sender, recipient, type, in_reply_to, routed_at, body
FROM messages WHERE recipient = ? ORDER BY rowid DESC
"""


# Small helpers over the writer's or a reader's connection, shared by the store and
# `propagate`.


def _ids_json(ids: tuple[str, ...]) -> str:
    return json.dumps(ids) if ids else "[]"


def _ids(text: str) -> tuple[str, ...]:
    # Most tasks have no dependencies or contracts; skip the JSON parser for them.
    return () if text == "[]" else tuple(json.loads(text))


def load_task(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    row = conn.execute(GET_TASK, (task_id,)).fetchone()
    return None if row is None else row_to_task(row)


def require_task(conn: sqlite3.Connection, task_id: str) -> TaskRecord:
    task = load_task(conn, task_id)
    if task is None:
        raise TaskNotFoundError(task_id)
    return task


def save_task(conn: sqlite3.Connection, task: TaskRecord) -> TaskRecord:
    conn.execute(TASK_SAVE, save_params(task))
    return task


def status_of(conn: sqlite3.Connection, task_id: str) -> TaskStatus | None:
    row = conn.execute(TASK_STATUS, (task_id,)).fetchone()
    return None if row is None else TaskStatus(row[0])


def deps_of(conn: sqlite3.Connection, task_id: str) -> list[str]:
    return [dep for (dep,) in conn.execute(DEPS_OF, (task_id,))]


def dependants_of(conn: sqlite3.Connection, task_id: str) -> list[str]:
    return [dependant for (dependant,) in conn.execute(DEPENDANTS_OF, (task_id,))]


def has_dependants(conn: sqlite3.Connection, task_id: str) -> bool:
    return conn.execute(HAS_DEPENDANTS, (task_id,)).fetchone() is not None
