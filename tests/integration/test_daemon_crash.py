"""Crash safety: SIGKILL the daemon at several points; nothing is lost or run twice."""

from __future__ import annotations

import random

import pytest

from agent_pool.board import TaskBoard, TaskStatus
from tests.harness import Pool, wait_until


def test_mail_posted_while_no_daemon_runs_is_routed_at_start(pool: Pool) -> None:
    ids = [pool.post("backend", f"task {n}") for n in range(5)]
    pool.start()
    for task_id in ids:
        pool.wait_status(task_id, "completed")
    assert [pool.runs_of(task_id) for task_id in ids] == [1] * 5


def test_killed_mid_session_the_session_is_adopted_not_rerun(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: sleep 1.5\nfake: text finished alone")
    pool.wait_status(task_id, "active")
    wait_until(lambda: pool.runs_of(task_id) == 1, 10, "the session to start")
    pool.kill()
    assert pool.session_processes(), "the session must outlive the daemon"
    pool.start()
    record = pool.wait_status(task_id, "completed")
    assert record.result == "finished alone"
    assert record.attempts == 1
    assert pool.runs_of(task_id) == 1


def test_a_session_that_ended_while_the_daemon_was_down_is_recorded_from_its_log(
    pool: Pool,
) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: sleep 0.3\nfake: text done while down")
    pool.wait_status(task_id, "active")
    wait_until(lambda: pool.runs_of(task_id) == 1, 10, "the session to start")
    pool.kill()
    wait_until(lambda: not pool.session_processes(), 10, "the session to end on its own")
    assert pool.task(task_id).status is TaskStatus.ACTIVE  # type: ignore[union-attr]
    pool.start()
    record = pool.wait_status(task_id, "completed")
    assert record.result == "done while down"
    assert pool.runs_of(task_id) == 1


def test_queued_tasks_survive_a_kill_and_run_once(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 1\n")
    pool.start()
    blocker = pool.post("backend", "fake: sleep 1")
    queued = [pool.post("frontend", f"queued {n}") for n in range(3)]
    pool.wait_status(blocker, "active")
    for task_id in queued:
        pool.wait_status(task_id, "pending")
    pool.kill()
    pool.start()
    for task_id in [blocker, *queued]:
        pool.wait_status(task_id, "completed")
        assert pool.runs_of(task_id) == 1


def test_a_failed_session_seen_only_in_its_log_goes_through_the_retry_policy(
    pool: Pool,
) -> None:
    pool.configure("[defaults]\nmax_attempts = 1\n")
    pool.start()
    task_id = pool.post("backend", "fake: sleep 0.3\nfake: deny Bash")
    pool.wait_status(task_id, "active")
    wait_until(lambda: pool.runs_of(task_id) == 1, 10, "the session to start")
    pool.kill()
    wait_until(lambda: not pool.session_processes(), 10, "the session to end")
    pool.start()
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason is not None
    assert "tool denied: Bash" in record.failure_reason


@pytest.mark.faults
def test_repeated_sigkill_during_a_200_task_run(pool: Pool) -> None:
    """QUALITY.md: 0 tasks lost, 0 completed tasks run again, board consistent."""
    pool.configure("[defaults]\nmax_concurrent = 4\n")
    for name in ("infra", "data"):
        assert pool.cli.run("init", "--expert", name).code == 0
    experts = ["backend", "frontend", "infra", "data"]
    chaos = random.Random(20261124)  # noqa: S311  # a fixed seed for a reproducible schedule
    ids = [
        pool.post(experts[n % 4], f"task {n}\nfake: sleep {chaos.choice(['0', '0.02', '0.05'])}")
        for n in range(200)
    ]
    kills = 0
    pool.start()
    while kills < 6:
        done = _count(pool, TaskStatus.COMPLETED)
        if done >= 200:
            break
        wait_until(lambda done=done: _count(pool, TaskStatus.COMPLETED) > done, 30, "progress")
        pool.kill()
        kills += 1
        pool.start()
    for task_id in ids:
        pool.wait_status(task_id, "completed", timeout=60)
    runs = [pool.runs_of(task_id) for task_id in ids]
    assert runs == [1] * 200, (
        f"tasks run more than once: {[i for i, r in enumerate(runs) if r != 1]}"
    )
    board = TaskBoard.open_readonly(pool.layout.board_db)
    try:
        counts = board.counts()
    finally:
        board.close()
    assert counts[TaskStatus.COMPLETED] == 200
    assert sum(counts.values()) == 200
    assert kills >= 1


def _count(pool: Pool, status: TaskStatus) -> int:
    board = TaskBoard.open_readonly_if_ready(pool.layout.board_db)
    if board is None:
        return 0
    try:
        return board.counts()[status]
    finally:
        board.close()
