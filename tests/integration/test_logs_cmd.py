"""`agent-pool logs ID` in-process against a real pool folder and a hand-written log."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agent_pool.board import TaskBoard
from agent_pool.cli.context import CliContext
from agent_pool.cli.logs_cmd import logs
from agent_pool.errors import AgentPoolError, InvalidNameError
from agent_pool.mail import Message, compose_mail
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import PoolLayout

INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "tools": [], "model": "sonnet"}


def result_event(text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": is_error,
        "num_turns": 2,
        "result": text,
        "total_cost_usd": 0.5,
        "duration_ms": 1500,
    }


def say(text: str) -> dict[str, Any]:
    return {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}


@pytest.fixture
def layout(tmp_path: Path) -> PoolLayout:
    pool = PoolLayout(tmp_path / "project" / ".agent-pool")
    (tmp_path / "project").mkdir()
    init_pool(pool, experts=["backend", "frontend"])
    return pool


def write_log(folder: Path, name: str, *events: dict[str, Any], tail: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(json.dumps(event) for event in events) + tail, encoding="utf-8")
    return path


def run_logs(layout: PoolLayout, *args: str) -> Result:
    obj = CliContext(pool_option=layout.root, environ={}, cwd=layout.root.parent)
    return CliRunner().invoke(logs, list(args), obj=obj)


def test_readable_transcript_found_by_looking_through_the_agents(layout: PoolLayout) -> None:
    write_log(layout.logs("frontend"), "t-1.jsonl", INIT, say("Hello there."), result_event("ok"))
    result = run_logs(layout, "t-1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"=== attempt 1: {layout.logs('frontend') / 't-1.jsonl'} ==="
    assert lines[1:] == [
        "── session s-1 · model sonnet · 0 tools",
        "assistant: Hello there.",
        "══ result: success · 2 turns · $0.5000 · 1.5s · 0 in / 0 out tokens",
    ]


def test_every_attempt_is_shown_oldest_first(layout: PoolLayout) -> None:
    folder = layout.logs("backend")
    write_log(folder, "t-7.attempt-2.jsonl", INIT, result_event("second", is_error=True))
    write_log(folder, "t-7.attempt-1.jsonl", INIT, result_event("first", is_error=True))
    write_log(folder, "t-7.jsonl", INIT, say("Third time lucky."))
    write_log(folder, "t-70.jsonl", INIT, say("another task"))
    (folder / "t-7.stderr.log").write_text("warning: something\n", encoding="utf-8")
    result = run_logs(layout, "t-7")
    assert result.exit_code == 0, result.output
    headings = [line for line in result.output.splitlines() if line.startswith("===")]
    assert headings == [
        f"=== attempt 1: {folder / 't-7.attempt-1.jsonl'} ===",
        f"=== attempt 2: {folder / 't-7.attempt-2.jsonl'} ===",
        f"=== attempt 3 (latest): {folder / 't-7.jsonl'} ===",
    ]
    output = result.output
    assert output.index("first") < output.index("second") < output.index("Third time lucky.")
    assert "another task" not in output
    assert f"stderr: 19 bytes in {folder / 't-7.stderr.log'}" in output


def test_raw_prints_the_jsonl_as_it_is(layout: PoolLayout) -> None:
    folder = layout.logs("architect")
    first = write_log(folder, "plan-1.attempt-1.jsonl", INIT, tail="")  # no final newline
    latest = write_log(folder, "plan-1.jsonl", INIT, say("é ü 😀"))
    result = run_logs(layout, "plan-1", "--raw")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == first.read_bytes() + b"\n" + latest.read_bytes()
    assert "=== attempt 2" in result.stderr
    for line in result.stdout_bytes.decode().splitlines():
        json.loads(line)


def test_the_board_says_where_the_log_is(layout: PoolLayout) -> None:
    message = Message(id="t-9", sender="concierge", to="backend", type="task", body="Do it.")
    digest = hashlib.sha256(compose_mail(message).encode()).hexdigest()
    board_log = layout.logs("backend") / "t-9.jsonl"
    with TaskBoard.open(layout.board_db) as board:
        board.record_message(message, digest, time.time())
        board.mark_active("t-9", time.time(), str(board_log))
    # A stray log of the same id elsewhere; roles are looked through first.
    write_log(layout.logs("architect"), "t-9.jsonl", INIT, say("the wrong one"))
    write_log(layout.logs("backend"), "t-9.jsonl", INIT, say("the right one"))
    result = run_logs(layout, "t-9")
    assert result.exit_code == 0, result.output
    assert "the right one" in result.output
    assert "the wrong one" not in result.output


def test_a_task_on_the_board_without_a_log_says_so(layout: PoolLayout) -> None:
    message = Message(id="t-5", sender="concierge", to="backend", type="task", body="Later.")
    digest = hashlib.sha256(compose_mail(message).encode()).hexdigest()
    with TaskBoard.open(layout.board_db) as board:
        board.record_message(message, digest, time.time())
    result = run_logs(layout, "t-5")
    assert result.exit_code == 1
    assert isinstance(result.exception, AgentPoolError)
    assert str(result.exception) == "task 't-5' has no session log yet (it is pending)"


def test_no_log_anywhere_is_one_clear_error(layout: PoolLayout) -> None:
    result = run_logs(layout, "t-404")
    assert result.exit_code == 1
    assert isinstance(result.exception, AgentPoolError)
    assert str(result.exception) == ("no session log for task 't-404' in any agent's logs/ folder")


def test_shared_experts_logs_are_found_in_their_overlay(layout: PoolLayout) -> None:
    write_log(layout.shared_overlay("reviewer") / "logs", "t-3.jsonl", INIT, say("shared"))
    result = run_logs(layout, "t-3")
    assert result.exit_code == 0, result.output
    assert "assistant: shared" in result.output


@pytest.mark.parametrize("bad_id", ["../secret", "a/b", ".hidden", "x" * 200])
def test_ids_that_could_escape_the_logs_folder_are_refused(layout: PoolLayout, bad_id: str) -> None:
    result = run_logs(layout, bad_id)
    assert isinstance(result.exception, InvalidNameError)
    assert result.exception.exit_code == 2
