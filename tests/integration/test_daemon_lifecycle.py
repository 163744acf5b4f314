"""Starting, stopping and asking the daemon: lock, socket, status, detach."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.harness import Pool, wait_until


def test_status_stop_and_the_socket_is_private(pool: Pool) -> None:
    pid = pool.start()
    mode = pool.layout.socket_path.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600

    status = pool.cli.run("status", "--json")
    assert status.code == 0, status.err
    data = json.loads(status.out)
    assert data["pid"] == pid
    assert data["state"] == "running"
    assert data["pool"] == "project"
    names = {agent["name"]: agent for agent in data["experts"]}
    assert names["backend"] == {
        "name": "backend",
        "kind": "expert",
        "state": "idle",
        "queued": 0,
        "current_task": None,
        "last_tool": None,
        "running_s": None,
        "cost_usd": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
    }
    assert set(data["tasks"]) >= {
        "pending",
        "blocked",
        "active",
        "completed",
        "failed",
        "cancelled",
    }
    assert data["dead_letters"] == 0
    assert data["cost_usd"] == 0.0

    human = pool.cli.run("status")
    assert f"(pid {pid}): running" in human.out

    stopped = pool.cli.run("stop")
    assert stopped.code == 0, stopped.err
    assert "stopped" in stopped.out
    assert pool.daemon is not None
    assert pool.daemon.wait(10) == 0
    pool.daemon = None
    assert not pool.layout.socket_path.exists()
    after = pool.cli.run("status", "--json")
    assert after.code == 1
    assert json.loads(after.out) == {"state": "stopped"}
    assert "not running" in pool.cli.run("status").out


@pytest.mark.faults
def test_a_second_daemon_is_refused_naming_the_running_pid(pool: Pool) -> None:
    pid = pool.start()
    second = pool.cli.run("start")
    assert second.code == 1
    assert f"pid {pid}" in second.err
    assert len(second.err.strip().splitlines()) == 1
    assert pool.status()["pid"] == pid  # the first one is unharmed


@pytest.mark.faults
def test_a_stale_lock_from_a_killed_daemon_is_taken_over(pool: Pool) -> None:
    first = pool.start()
    pool.kill()
    second = pool.start()
    assert second != first
    assert pool.status()["state"] == "running"


def test_detach_returns_once_the_daemon_answers(pool: Pool) -> None:
    started = pool.cli.run("start", "--detach")
    assert started.code == 0, started.err
    pid = int(started.out.strip().rsplit("pid ", 1)[1].rstrip(")"))
    assert pool.status()["pid"] == pid
    stopped = pool.cli.run("stop")
    assert stopped.code == 0, stopped.err
    wait_until(lambda: not _alive(pid), 10, "the detached daemon to exit")


def test_stop_without_a_daemon_fails_clearly(pool: Pool) -> None:
    result = pool.cli.run("stop")
    assert result.code == 1
    assert "not running" in result.err


def test_a_config_error_stops_start_with_exit_code_2(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 0\n")
    result = pool.cli.run("start")
    assert result.code == 2
    assert "defaults.max_concurrent" in result.err


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
