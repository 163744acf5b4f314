"""`stop` drains: no new sessions; running ones finish in the grace period or go back."""

from __future__ import annotations

import json
import subprocess
import sys

from agent_pool.board import TaskStatus
from tests.harness import Pool, wait_until


def test_a_session_that_finishes_within_the_grace_period_completes(pool: Pool) -> None:
    pool.configure('[daemon]\ndrain_grace = "20s"\n')
    pool.start()
    running = pool.post("backend", "fake: sleep 1.5\nfake: text finished during drain")
    pool.wait_status(running, "active")
    stopping = subprocess.Popen(
        [sys.executable, "-m", "agent_pool", "stop"],
        cwd=pool.cli.cwd,
        env=pool.cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Status keeps working during the drain and tells the truth about it.
    draining = wait_until(
        lambda: (
            (s := pool.cli.run("status", "--json")).code == 0
            and json.loads(s.out)["state"] == "draining"
            and s
        ),
        10,
        "status to say draining",
    )
    agents = {agent["name"]: agent for agent in json.loads(draining.out)["experts"]}
    assert agents["backend"]["current_task"] == running
    queued = pool.post("frontend", "must wait for the next start")
    out, err = stopping.communicate(timeout=30)
    assert b"stopped" in out
    assert stopping.returncode == 0, err
    assert pool.daemon is not None
    assert pool.daemon.wait(10) == 0
    pool.daemon = None
    record = pool.task(running)
    assert record is not None
    assert record.status is TaskStatus.COMPLETED
    assert record.result == "finished during drain"
    assert pool.runs_of(queued) == 0


def test_sessions_still_running_after_the_grace_period_are_stopped_and_requeued(
    pool: Pool,
) -> None:
    pool.configure('[daemon]\ndrain_grace = "300ms"\n')
    pool.start()
    hanging = pool.post("backend", "fake: child\nfake: ignore-sigterm\nfake: hang")
    pool.wait_status(hanging, "active")
    wait_until(lambda: len(pool.session_processes()) >= 2, 10, "the session and its child")
    result = pool.cli.run("stop")
    assert result.code == 0, result.err
    assert pool.daemon is not None
    assert pool.daemon.wait(10) == 0
    pool.daemon = None
    record = pool.task(hanging)
    assert record is not None
    assert record.status is TaskStatus.PENDING
    assert record.attempts == 0  # interrupted by us: not a failure
    assert record.failure_reason is None
    assert pool.session_processes() == []


def test_stop_now_does_not_wait_for_the_grace_period(pool: Pool) -> None:
    pool.configure('[daemon]\ndrain_grace = "10m"\n')
    pool.start()
    hanging = pool.post("backend", "fake: hang")
    pool.wait_status(hanging, "active")
    result = pool.cli.run("stop", "--now")
    assert result.code == 0, result.err
    assert pool.daemon is not None
    assert pool.daemon.wait(15) == 0
    pool.daemon = None
    assert pool.task(hanging).status is TaskStatus.PENDING  # type: ignore[union-attr]
    assert pool.session_processes() == []
    # The interrupted task runs again at the next start and is not lost.
    pool.start()
    pool.wait_status(hanging, "active")
