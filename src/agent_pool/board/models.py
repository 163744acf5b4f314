"""What the task board stores and answers: task records, outcomes, and its errors.

Everything here is a frozen value. The board hands out snapshots; a record never
changes under the caller, and a transition returns the new record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Final

from agent_pool.errors import AgentPoolError
from agent_pool.mail.message import MessageType, Priority


class TaskStatus(StrEnum):
    PENDING = "pending"
    BLOCKED = "blocked"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    AWAITING_APPROVAL = "awaiting_approval"


TERMINAL: Final = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class RecordOutcome(Enum):
    """What `TaskBoard.record_message` did with a message."""

    NEW = "new"
    IDENTICAL = "identical"  # same id, same digest: an idempotent re-post, dropped
    CONFLICT = "conflict"  # same id, different content: refused


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    """One task as the board holds it (a snapshot).

    Costs, tokens, turns and duration add up over every attempt. `ready_at` is when a
    pending task may start (in the future while a retry backs off); `proc_start_time`
    tells a live pid apart from a reused one after a daemon crash. `archived` marks a
    finished task read from the board archive rather than the board itself.
    """

    id: str
    sender: str
    to: str
    type: MessageType
    priority: Priority
    seq: int
    depends_on: tuple[str, ...]
    contracts: tuple[str, ...]
    body: str
    status: TaskStatus
    attempts: int
    created_at: float
    ready_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    pid: int | None
    pgid: int | None
    proc_start_time: float | None
    log_path: str | None
    result: str | None
    failure_reason: str | None
    needs_attention: bool
    cascaded_from: str | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    num_turns: int
    duration_ms: int
    handoffs: int
    archived: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, object]:
        """The `task show --json` shape (INTERFACE.md) plus board extras.

        Times are ISO-8601 UTC strings or null. `waits_on` needs other tasks, so the
        caller adds it. `"archived": true` is present only for an archived task.
        """
        shape: dict[str, object] = {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "type": self.type.value,
            "status": self.status.value,
            "depends_on": list(self.depends_on),
            "attempts": self.attempts,
            "created_at": iso_utc(self.created_at),
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "exit_code": self.exit_code,
            "cost_usd": self.cost_usd,
            "result": self.result,
            "priority": self.priority.value,
            "needs_attention": self.needs_attention,
            "failure_reason": self.failure_reason,
            "cascaded_from": self.cascaded_from,
            "contracts": list(self.contracts),
            "handoffs": self.handoffs,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "num_turns": self.num_turns,
            "duration_ms": self.duration_ms,
            "log_path": self.log_path,
        }
        if self.archived:
            shape["archived"] = True
        return shape


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage:
    """A routed mail as the board keeps it (for idempotency and the inbox)."""

    id: str
    digest: str
    sender: str
    to: str
    type: MessageType
    in_reply_to: str | None
    routed_at: float
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionResult:
    """What the daemon learned from a finished session."""

    success: bool
    exit_code: int | None = None
    reason: str | None = None
    result_text: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    num_turns: int = 0
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class FinishOutcome:
    """The task after `finish`, and which other tasks changed status because of it.

    `applied` is False when the task was no longer active (cancelled meanwhile): then
    nothing changed and `record` is the task as it is.
    """

    record: TaskRecord
    applied: bool
    unblocked: tuple[str, ...] = ()
    cascaded: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """The cancelled task, its status before (active: stop its process), and cascades."""

    record: TaskRecord
    previous: TaskStatus
    cascaded: tuple[str, ...] = ()


def iso_utc(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    text = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


class BoardError(AgentPoolError):
    """Base of the task board's errors."""


class BoardOpenError(BoardError):
    """The board's database cannot be opened or was written by a newer version."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"task board {path}: {problem}")
        self.path = path
        self.problem = problem


class BoardNotFoundError(BoardOpenError):
    """A reader asked for a board that does not exist (the daemon never ran here)."""

    def __init__(self, path: Path, problem: str | None = None) -> None:
        super().__init__(path, problem or "does not exist (has the daemon ever been started?)")


class BoardNotReadyError(BoardNotFoundError):
    """The file exists but the daemon is still creating its schema (it is starting).

    A kind of "not found": to a reader, a board being created has no tasks yet.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, "is being created by the daemon (it is starting)")


class BoardReadOnlyError(BoardError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"task board {path} is open read-only; only the daemon writes it")
        self.path = path


class TaskNotFoundError(BoardError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class InvalidTransitionError(BoardError):
    """A task cannot do what was asked in its current status."""

    def __init__(
        self, task_id: str, status: TaskStatus, action: str, detail: str | None = None
    ) -> None:
        if detail is None:
            detail = f"it is already {status}" if status in TERMINAL else f"it is {status}"
        super().__init__(f"cannot {action} task {task_id!r}: {detail}")
        self.task_id = task_id
        self.status = status
        self.action = action


class DependencyCycleError(BoardError):
    """Adding a task would close a cycle of dependencies; nothing was recorded."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(f"dependency cycle: {' -> '.join(cycle)}")
        self.cycle = cycle
