"""A scratch pool with a running daemon and the no-op fake claude, for measuring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent_pool.board import TaskBoard, TaskStatus
from agent_pool.control.client import wait_until_answering
from agent_pool.mail import Message, MessageType, new_message_id, post_message
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import PoolLayout
from agent_pool.testing.fake_claude import fake_claude_command

EXPERTS = ("backend", "frontend", "infra", "data")


@dataclass
class BenchPool:
    layout: PoolLayout
    env: dict[str, str]
    record: Path
    daemon: subprocess.Popen[bytes] | None = None

    def start(self) -> psutil.Process:
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "agent_pool", "--pool", str(self.layout.root), "start"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_answering(self.layout.socket_path, timeout=60, exited=self.daemon.poll)
        return psutil.Process(self.daemon.pid)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(60)
            self.daemon = None

    def post(self, to: str, body: str = "no-op") -> str:
        message = Message(
            id=new_message_id(), sender="concierge", to=to, type=MessageType.TASK, body=body
        )
        post_message(self.layout.postoffice, message)
        return message.id

    def completed(self) -> int:
        board = TaskBoard.open_readonly_if_ready(self.layout.board_db)
        if board is None:
            return 0
        try:
            return board.counts()[TaskStatus.COMPLETED]
        finally:
            board.close()

    def wait_completed(self, count: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.completed() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.completed()} of {count} tasks completed")
            time.sleep(0.01)

    def runs(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        # Only complete lines: a fake may be writing its line while we read.
        text = self.record.read_text()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line]

    def started_at(self, task_id: str) -> float | None:
        board = TaskBoard.open_readonly(self.layout.board_db)
        try:
            record = board.get(task_id)
        finally:
            board.close()
        return record.started_at if record else None


@contextmanager
def bench_pool(*, max_concurrent: int = 4, record: bool = False) -> Iterator[BenchPool]:
    with tempfile.TemporaryDirectory(prefix="agent-pool-bench-") as scratch:
        root = Path(scratch)
        project = root / "project"
        project.mkdir()
        layout = PoolLayout(project / ".agent-pool")
        init_pool(layout, experts=list(EXPERTS))
        layout.pool_toml.write_text(
            f"[defaults]\nmax_concurrent = {max_concurrent}\n[curation]\nenabled = false\n"
        )
        fake = fake_claude_command(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_POOL_")}
        env.update(AGENT_POOL_HOME=str(root / "home"), AGENT_POOL_CLAUDE_BIN=str(fake))
        record_file = root / "record.jsonl"
        if record:
            env["FAKE_CLAUDE_RECORD"] = str(record_file)
        pool = BenchPool(layout=layout, env=env, record=record_file)
        try:
            yield pool
        finally:
            pool.stop()
