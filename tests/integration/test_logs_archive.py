"""Rotation keeps history readable: after a real session's logs are archived,
`agent-pool logs` and the `recall` tool still show them."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from agent_pool.cli.context import CliContext
from agent_pool.cli.logs_cmd import logs
from agent_pool.errors import AgentPoolError
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import scan_registry
from agent_pool.tools.context import ToolBudgets, ToolContext, agent_context
from agent_pool.tools.registry import TOOLS
from agent_pool.upkeep import archive_session_logs
from tests.harness import Pool

FAST_RETRY = '[defaults]\nretry_backoff = "100ms"\nmax_attempts = 2\n'
RETENTION = timedelta(days=14)


def age(folder: Path, days: float) -> None:
    """Make every file in `folder` look `days` old."""
    then = time.time() - days * 86_400
    for path in folder.iterdir():
        if path.is_file():
            os.utime(path, (then, then))


def archive_all(folder: Path) -> None:
    report = archive_session_logs(
        folder, retention=RETENTION, archive_max_bytes=1 << 30, now=time.time(), keep=()
    )
    assert report.errors == ()
    assert report.archived > 0


def recall(layout: PoolLayout, home: Path, agent: str, task_id: str) -> str:
    registry = scan_registry(layout, declared_experts=[], shared_experts=[])
    ctx: ToolContext = agent_context(
        layout, HomeLayout(home), registry, agent, budgets=ToolBudgets(), task_id="t-now"
    )
    spec = next(spec for spec in TOOLS if spec.name == "recall")
    result = spec.fn(ctx, task_id=task_id)
    assert isinstance(result, str)
    return result


def test_an_archived_session_is_still_shown_and_recalled(pool: Pool) -> None:
    pool.configure(FAST_RETRY)
    pool.start()
    done = pool.submit("backend", "Remember this\nfake: text remembered after rotation")
    failed = pool.submit("backend", "fake: error")
    pool.wait_status(done, "completed")
    pool.wait_status(failed, "failed")
    pool.stop()
    folder = pool.layout.root / "experts" / "backend" / "logs"
    live_raw = (folder / f"{done}.jsonl").read_bytes()
    before = pool.cli.run("logs", done)
    assert before.code == 0, before.err
    assert "remembered after rotation" in before.out

    age(folder, 30)
    archive_all(folder)
    assert not (folder / f"{done}.jsonl").exists()
    assert (folder / "archive" / f"{done}.jsonl.gz").is_file()

    after = pool.cli.run("logs", done)
    assert after.code == 0, after.err
    heading, *transcript = after.out.splitlines()
    assert heading == f"=== attempt 1: {folder / 'archive' / f'{done}.jsonl.gz'} ==="
    assert transcript == before.out.splitlines()[1:]  # the same transcript, line for line
    raw = pool.cli.run("logs", done, "--raw")
    assert raw.code == 0, raw.err
    assert raw.out.encode() == live_raw

    attempts = pool.cli.run("logs", failed)
    assert attempts.code == 0, attempts.err
    headings = [line for line in attempts.out.splitlines() if line.startswith("===")]
    assert headings == [
        f"=== attempt 1: {folder / 'archive' / f'{failed}.attempt-1.jsonl.gz'} ===",
        f"=== attempt 2 (latest): {folder / 'archive' / f'{failed}.jsonl.gz'} ===",
    ]

    home = Path(pool.cli.env["AGENT_POOL_HOME"])
    recalled = recall(pool.layout, home, "backend", done)
    assert recalled.startswith(f"=== archived attempt 1: {done}.jsonl.gz ===\n")
    assert "remembered after rotation" in recalled
    both = recall(pool.layout, home, "backend", failed)
    assert both.index("archived attempt 1:") < both.index("archived attempt 2:")


# -- archived and live attempts together ---------------------------------------------


def session(text: str) -> bytes:
    events = [
        {"type": "system", "subtype": "init", "session_id": "s-1", "tools": [], "model": "m"},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}},
    ]
    return "".join(json.dumps(event) + "\n" for event in events).encode()


def run_logs(layout: PoolLayout, *args: str) -> Result:
    obj = CliContext(pool_option=layout.root, environ={}, cwd=layout.root.parent)
    return CliRunner().invoke(logs, list(args), obj=obj)


def test_archived_attempts_come_before_live_ones(tmp_path: Path) -> None:
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    (tmp_path / "project").mkdir()
    init_pool(layout, experts=["backend"])
    folder = layout.logs("architect")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan-1.attempt-1.jsonl").write_bytes(session("first, long ago"))
    age(folder, 30)
    (folder / "plan-1.jsonl").write_bytes(session("second, today"))
    (folder / "plan-1.stderr.log").write_bytes(b"warning\n")
    archive_all(folder)
    assert sorted(path.name for path in folder.iterdir()) == [
        "archive",
        "plan-1.jsonl",
        "plan-1.stderr.log",
    ]

    result = run_logs(layout, "plan-1")
    assert result.exit_code == 0, result.output
    headings = [line for line in result.output.splitlines() if line.startswith("===")]
    assert headings == [
        f"=== attempt 1: {folder / 'archive' / 'plan-1.attempt-1.jsonl.gz'} ===",
        f"=== attempt 2 (latest): {folder / 'plan-1.jsonl'} ===",
    ]
    assert result.output.index("first, long ago") < result.output.index("second, today")
    assert f"stderr: 8 bytes in {folder / 'plan-1.stderr.log'}" in result.output

    raw = run_logs(layout, "plan-1", "--raw")
    assert raw.exit_code == 0, raw.output
    assert raw.stdout_bytes == session("first, long ago") + session("second, today")

    home = tmp_path / "home"
    recalled = recall(layout, home, "architect", "plan-1")
    assert "=== archived attempt 1: plan-1.attempt-1.jsonl.gz ===" in recalled
    assert "=== attempt 2: plan-1.jsonl ===" in recalled


def test_a_damaged_archive_shows_what_can_be_read(tmp_path: Path) -> None:
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    (tmp_path / "project").mkdir()
    init_pool(layout, experts=["backend"])
    archive = layout.logs("researcher") / "archive"
    archive.mkdir(parents=True)
    # Big enough that the cut lies many read blocks in.
    whole = gzip.compress(b"".join(session(f"readable part {n}") for n in range(5000)))
    (archive / "r-1.jsonl.gz").write_bytes(whole[: len(whole) // 2])

    result = run_logs(layout, "r-1")
    assert result.exit_code == 0, result.output
    assert "readable part" in result.output
    assert "[the archive is damaged: the rest of it cannot be read]" in result.output
    raw = run_logs(layout, "r-1", "--raw")
    assert isinstance(raw.exception, AgentPoolError)
    assert str(raw.exception).startswith(f"{archive / 'r-1.jsonl.gz'}: the archive is damaged")
