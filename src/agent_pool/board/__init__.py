"""The task board: the daemon's durable store of every task, and the DAG rules."""

from agent_pool.board.dag import find_cycle
from agent_pool.board.models import (
    TERMINAL,
    BoardError,
    BoardNotFoundError,
    BoardNotReadyError,
    BoardOpenError,
    BoardReadOnlyError,
    CancelOutcome,
    DependencyCycleError,
    FinishOutcome,
    InvalidTransitionError,
    RecordOutcome,
    SessionResult,
    StoredMessage,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
)
from agent_pool.board.store import TaskBoard

__all__ = [
    "TERMINAL",
    "BoardError",
    "BoardNotFoundError",
    "BoardNotReadyError",
    "BoardOpenError",
    "BoardReadOnlyError",
    "CancelOutcome",
    "DependencyCycleError",
    "FinishOutcome",
    "InvalidTransitionError",
    "RecordOutcome",
    "SessionResult",
    "StoredMessage",
    "TaskBoard",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskStatus",
    "find_cycle",
]
