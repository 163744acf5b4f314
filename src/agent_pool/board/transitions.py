"""The task state machine, pure: each function checks a transition and returns the
new record, or raises InvalidTransitionError. The store loads, calls, and saves.

pending -> active -> completed | pending (retry after backoff, or handoff) | failed
blocked -> pending (all dependencies completed) | failed/cancelled (cascade)
any unfinished -> cancelled;  failed/cancelled -> pending | blocked (retry)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from agent_pool.board.models import (
    TERMINAL,
    InvalidTransitionError,
    SessionResult,
    TaskRecord,
    TaskStatus,
)

# How a cascade reads in a dependant's failure reason, per status of its cause.
CASCADE_VERB: Final = {TaskStatus.FAILED: "failed", TaskStatus.CANCELLED: "was cancelled"}


def cascade_reason(dep: str, status: TaskStatus) -> str:
    return f"dependency {dep} {CASCADE_VERB[status]}"


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before retry after `attempts` failed attempts: base, 2*base, 4*base ..."""
    # The exponent is clamped so a huge attempt count cannot overflow a float.
    return min(cap, base * 2.0 ** min(max(0, attempts - 1), 64))


def start(task: TaskRecord, now: float, log_path: str) -> TaskRecord:
    _require_status(task, "start", TaskStatus.PENDING)
    return replace(
        task,
        status=TaskStatus.ACTIVE,
        attempts=task.attempts + 1,
        started_at=now,
        finished_at=None,
        exit_code=None,
        log_path=log_path,
        pid=None,
        pgid=None,
        proc_start_time=None,
    )


def note_process(task: TaskRecord, pid: int, pgid: int, start_time: float | None) -> TaskRecord:
    _require_status(task, "record the process of", TaskStatus.ACTIVE)
    return replace(task, pid=pid, pgid=pgid, proc_start_time=start_time)


def finish(
    task: TaskRecord,
    result: SessionResult,
    now: float,
    *,
    max_attempts: int,
    backoff_base: float,
    backoff_cap: float,
) -> TaskRecord:
    """Completed, back to pending after a backoff, or failed for good (needs attention)."""
    _require_status(task, "finish", TaskStatus.ACTIVE)
    spent = replace(
        with_usage(task, result),
        exit_code=result.exit_code,
        result=result.result_text,
        pid=None,
        pgid=None,
        proc_start_time=None,
    )
    if result.success:
        return replace(spent, status=TaskStatus.COMPLETED, finished_at=now, failure_reason=None)
    reason = result.reason or _failure_reason(result.exit_code)
    if task.attempts < max_attempts:
        delay = backoff_delay(task.attempts, backoff_base, backoff_cap)
        return replace(
            spent, status=TaskStatus.PENDING, ready_at=now + delay, failure_reason=reason
        )
    return replace(
        spent,
        status=TaskStatus.FAILED,
        finished_at=now,
        failure_reason=reason,
        needs_attention=True,
    )


def requeue(task: TaskRecord, now: float, usage: SessionResult | None) -> TaskRecord:
    """Back to the queue without counting the attempt (interrupted, not failed)."""
    _require_status(task, "requeue", TaskStatus.ACTIVE)
    return _back_to_queue(task, now, usage)


def hand_off(
    task: TaskRecord, now: float, max_handoffs: int, usage: SessionResult | None
) -> TaskRecord:
    _require_status(task, "hand off", TaskStatus.ACTIVE)
    handoffs = task.handoffs + 1
    return replace(
        _back_to_queue(task, now, usage),
        handoffs=handoffs,
        needs_attention=task.needs_attention or handoffs > max_handoffs,
    )


def cancel(task: TaskRecord, now: float) -> TaskRecord:
    # pid and pgid stay: the daemon still has to stop an active task's process.
    if task.status in TERMINAL:
        raise InvalidTransitionError(task.id, task.status, "cancel")
    return replace(task, status=TaskStatus.CANCELLED, finished_at=now)


def cascade(task: TaskRecord, status: TaskStatus, cause: str, now: float) -> TaskRecord:
    """Fail or cancel `task` because its dependency `cause` did."""
    return replace(
        task,
        status=status,
        finished_at=now,
        failure_reason=cascade_reason(cause, status),
        cascaded_from=cause,
    )


def retry(task: TaskRecord, status: TaskStatus, now: float) -> TaskRecord:
    """A fresh start as `status` (pending, or blocked on unfinished dependencies)."""
    _require_status(task, "retry", TaskStatus.FAILED, TaskStatus.CANCELLED)
    return replace(
        reopen(task, status),
        attempts=0,
        ready_at=now,
        started_at=None,
        exit_code=None,
        result=None,
        pid=None,
        pgid=None,
        proc_start_time=None,
    )


def reopen(task: TaskRecord, status: TaskStatus) -> TaskRecord:
    """Undo a failure or cancellation; spending and history stay."""
    return replace(
        task,
        status=status,
        finished_at=None,
        failure_reason=None,
        cascaded_from=None,
        needs_attention=False,
    )


def with_usage(task: TaskRecord, usage: SessionResult | None) -> TaskRecord:
    """`task` with a session's spending added: every attempt's cost counts."""
    if usage is None:
        return task
    return replace(
        task,
        cost_usd=task.cost_usd + usage.cost_usd,
        input_tokens=task.input_tokens + usage.input_tokens,
        output_tokens=task.output_tokens + usage.output_tokens,
        num_turns=task.num_turns + usage.num_turns,
        duration_ms=task.duration_ms + usage.duration_ms,
    )


def _back_to_queue(task: TaskRecord, now: float, usage: SessionResult | None) -> TaskRecord:
    return replace(
        with_usage(task, usage),
        status=TaskStatus.PENDING,
        attempts=max(0, task.attempts - 1),
        ready_at=now,
        pid=None,
        pgid=None,
        proc_start_time=None,
    )


def _require_status(task: TaskRecord, action: str, *allowed: TaskStatus) -> None:
    if task.status not in allowed:
        raise InvalidTransitionError(task.id, task.status, action)


def _failure_reason(exit_code: int | None) -> str:
    if exit_code is None:
        return "the session failed"
    return f"the session exited with code {exit_code}"
