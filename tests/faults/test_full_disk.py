"""A full disk under an expert's logs, or under the whole pool (root only: tmpfs mounts).

Target: the daemon stays up and answers `status`; the task that cannot write is not
reported completed (it fails, per the retry policy); nothing else is lost, and work
resumes once there is room again; no process is left.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent_pool.mail import Message, MessageType, compose_mail
from tests.faults.conftest import Mounts
from tests.faults.helpers import (
    TWO_TRIES,
    answers_to,
    assert_nothing_left,
    collecting,
    daemon_alive,
    events_of,
    wait_for_event_naming,
    wait_status_alive,
)
from tests.harness import Pool, wait_until

pytestmark = pytest.mark.faults

SPEW = "fake: spew 1000000\nfake: text spewed"  # four times what the logs folder holds


def test_a_full_logs_folder_fails_that_task_and_loses_nothing_else(
    mounts: Mounts, pool: Pool
) -> None:
    logs = pool.layout.logs("backend")
    mounts.tmpfs(logs, size="256k")
    pool.configure(TWO_TRIES)
    pool.start()
    task_id = pool.post("backend", SPEW)
    other = pool.post("frontend", "fake: text fine")
    assert pool.wait_status(other, "completed").result == "fine"
    record = pool.wait_status(task_id, "failed", timeout=30)
    assert record.attempts == 2  # retried per policy, then it needs a person
    assert record.needs_attention
    assert events_of(pool, task_id, "task.completed") == []
    assert answers_to(pool, task_id) == []
    assert pool.status()["state"] == "running"
    assert_nothing_left(pool, task_id)

    # Room again: the same task, retried by hand, now completes.
    mounts.remount(logs, size="16m")
    assert pool.cli.run("retry", task_id).code == 0
    assert pool.wait_status(task_id, "completed", timeout=30).result == "spewed"


def test_work_queued_behind_a_run_that_hit_a_full_disk_starts_at_once(
    mounts: Mounts, pool: Pool
) -> None:
    logs = pool.layout.logs("backend")
    mounts.tmpfs(logs, size="256k")
    # No periodic scan to paper over a missed wake-up within the test.
    pool.configure('[defaults]\nmax_attempts = 1\n[daemon]\nreconcile_interval = "10m"\n')
    pool.start()
    first = pool.post("backend", "fake: sleep 0.3\n" + SPEW)
    pool.wait_status(first, "active")
    second = pool.post("backend", "fake: text second")
    pool.wait_status(second, "pending")
    pool.wait_status(first, "failed")
    # The expert is free: its next task must start now, not at the next scan.
    pool.wait_status(second, "active", "completed", "failed", timeout=5)


@pytest.mark.slow
def test_a_full_disk_under_the_board_keeps_the_daemon_up_and_loses_no_mail(
    mounts: Mounts, pool: Pool, tmp_path: Path
) -> None:
    root = _on_a_disk_of_its_own(mounts, pool, tmp_path, "8m")
    pool.configure('[daemon]\nreconcile_interval = "1s"\n')
    pool.start()
    first = pool.post("backend", "fake: text before the disk filled")
    pool.wait_status(first, "completed")
    with collecting(pool) as collector:  # live: the daemon log cannot grow either
        good = [f"full-{n}" for n in range(3)]
        staged = [_stage(pool, _task(task_id)) for task_id in good]
        staged.append(_stage_raw(pool, "bad", b"not a mail at all\n"))
        filler = _fill(root)
        for path in staged:  # renames need no room: the mail arrives on a full disk
            path.rename(path.with_name(path.name.removeprefix(".").removesuffix(".tmp")))
        wait_for_event_naming(pool, collector, "disk is full", "No space left")
    assert pool.status()["state"] == "running"
    for task_id in good:  # still in the postoffice, or already safe on the board
        waiting = (pool.layout.postoffice / f"{task_id}.md").exists()
        assert waiting or pool.task(task_id) is not None, f"{task_id} was lost"
    filler.unlink()
    for task_id in good:
        pool.wait_status(task_id, "completed", timeout=30)
    reason = pool.layout.dead_letter / "bad.md.reason"
    wait_until(reason.exists, 20, "the bad mail dead-lettered with its reason")
    daemon_alive(pool)


def test_a_daemon_log_that_cannot_grow_stops_no_work(
    mounts: Mounts, pool: Pool, tmp_path: Path
) -> None:
    """Only daemon.log is on the full disk (a file bind-mounted from a small tmpfs)."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounts.tmpfs(disk, size="1m")
    (disk / "daemon.log").touch()
    pool.layout.runtime_dir.mkdir(exist_ok=True)
    pool.layout.daemon_log.touch()
    mounts.bind(disk / "daemon.log", pool.layout.daemon_log)
    pool.start()
    with collecting(pool) as collector:
        _fill(disk)
        _fill_last_page(pool.layout.daemon_log)
        task_id = pool.post("backend", "fake: text done without a log")
        assert wait_status_alive(pool, task_id, "completed").result == "done without a log"
        # Subscribers still see every event, though none reaches the file.
        collector.wait_for(
            lambda event: event["type"] == "task.completed" and event.get("id") == task_id
        )
    assert pool.status()["state"] == "running"


def test_starting_on_a_full_disk_fails_with_one_clear_line(
    mounts: Mounts, pool: Pool, tmp_path: Path
) -> None:
    root = _on_a_disk_of_its_own(mounts, pool, tmp_path, "4m")
    pool.start()
    pool.stop()
    _fill(root)
    started = subprocess.run(
        [sys.executable, "-m", "agent_pool", "start"],
        cwd=pool.cli.cwd,
        env=pool.cli.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert started.returncode == 1, started.stderr
    assert len(started.stderr.strip().splitlines()) == 1, started.stderr
    assert "No space left on device" in started.stderr


def _on_a_disk_of_its_own(mounts: Mounts, pool: Pool, tmp_path: Path, size: str) -> Path:
    """Move the pool folder onto a fresh tmpfs of `size` (same paths, new file system)."""
    root = pool.layout.root
    saved = tmp_path / "pool-before-mount"
    shutil.copytree(root, saved, symlinks=True)
    mounts.tmpfs(root, size=size)
    shutil.copytree(saved, root, symlinks=True, dirs_exist_ok=True)
    return root


def _fill(folder: Path) -> Path:
    """Take every free block of `folder`'s file system; delete the file to give them back."""
    filler = folder / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def _fill_last_page(log: Path) -> None:
    """Append blank lines (readers skip them) until not even the file's last, partly
    used page of a full tmpfs takes another byte: the next write must fail."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            try:
                os.write(fd, b"\n")
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return
    finally:
        os.close(fd)


def _task(task_id: str) -> Message:
    return Message(
        id=task_id, sender="concierge", to="backend", type=MessageType.TASK, body="fake: text ok"
    )


def _stage(pool: Pool, message: Message) -> Path:
    return _stage_raw(pool, message.id, compose_mail(message).encode("utf-8"))


def _stage_raw(pool: Pool, name: str, data: bytes) -> Path:
    """A mail written as a hidden temp file in the postoffice (routing skips those)."""
    path = pool.layout.postoffice / f".{name}.md.tmp"
    path.write_bytes(data)
    return path
