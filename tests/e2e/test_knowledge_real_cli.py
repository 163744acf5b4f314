"""Knowledge tools and hooks with the real Claude Code CLI against the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_pool.daemon.supervisor import FALLBACK_MARK
from agent_pool.mail import MessageType, parse_mail
from agent_pool.testing import Conversation, Turn
from tests.conftest import CliEnv
from tests.e2e.conftest import RESPOND, StartPool, report
from tests.harness import Pool, wait_until

TOOL = "mcp__agent-pool__"
ONE_TRY = "max_attempts = 1\n"


def _answers(pool: Pool, task_id: str) -> list[str]:
    listed = json.loads(pool.cli.run("inbox", "--json").out)
    return [str(m["body"]).strip() for m in listed if m["in_reply_to"] == task_id]


def _log(pool: Pool, task_id: str) -> str:
    record = pool.task(task_id)
    assert record is not None
    return Path(record.log_path or "").read_text()


def test_state_errors_and_the_reply_are_written_through_the_tools(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Learn and report",
                turns=[
                    Turn.tool(f"{TOOL}update_state", {"content": "# State\n\nlearned: X\n"}),
                    Turn.tool(f"{TOOL}append_error", {"entry": "forgot the migration"}),
                    Turn.tool(RESPOND, {"body": "done with X"}),
                    Turn.text("finished"),
                ],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Learn and report")
    pool.wait_status(task_id, "completed", timeout=60)
    backend = pool.layout.root / "experts" / "backend"
    assert (backend / "state.md").read_text() == "# State\n\nlearned: X\n"
    assert "forgot the migration" in (backend / "errors.md").read_text()
    wait_until(lambda: _answers(pool, task_id), 10, "the reply")
    [reply_file] = [
        path
        for path in (pool.layout.root / "concierge" / "inbox").glob("*.md")
        if parse_mail(path.read_bytes()).in_reply_to == task_id
    ]
    reply = parse_mail(reply_file.read_bytes())
    assert (reply.type, reply.sender, reply.to, reply.body) == (
        MessageType.RESPONSE,
        "backend",
        "concierge",
        "done with X",
    )


def test_ask_prints_the_answer_of_a_real_session(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Which port", turns=[Turn.tool(RESPOND, {"body": "8080"}), Turn.text("ok")]
            )
        ],
        "",
    )
    result = pool.cli.run("ask", "backend", "Which port does the API use?", "--timeout", "60")
    assert result.code == 0, result.err
    assert result.out.strip() == "8080"


def test_a_forgetful_session_is_reminded_once_then_answered_for(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Forgetful",
                turns=[Turn.text("first thoughts"), Turn.text("still no report")],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Forgetful task")
    pool.wait_status(task_id, "completed", timeout=60)
    log = _log(pool, task_id)
    assert "Stop hook feedback" in log
    assert "send_response" in log
    [answer] = wait_until(lambda: _answers(pool, task_id), 10, "the fallback answer")
    assert answer.startswith(FALLBACK_MARK)
    assert answer.endswith("still no report")


def test_a_reminded_session_that_then_reports_needs_no_fallback(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Almost forgot",
                turns=[
                    Turn.text("oops"),
                    Turn.tool(RESPOND, {"body": "here it is"}),
                    Turn.text("ok"),
                ],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Almost forgot to report")
    pool.wait_status(task_id, "completed", timeout=60)
    assert wait_until(lambda: _answers(pool, task_id), 10, "answer") == ["here it is"]


@pytest.mark.faults
def test_a_write_outside_owned_paths_is_blocked_and_fails_the_task(
    real_pool: StartPool, cli: CliEnv
) -> None:
    target = cli.cwd / "web" / "index.html"
    pool = real_pool(
        [
            Conversation(
                match="Edit the page",
                turns=[
                    Turn.tool("Write", {"file_path": str(target), "content": "<h1>hi</h1>"}),
                    Turn.tool(RESPOND, {"body": "tried"}),
                    Turn.text("ok"),
                ],
            )
        ],
        ONE_TRY + '\n[experts.backend]\nowns = ["api/**"]\n',
    )
    task_id = pool.post("backend", "Edit the page")
    record = pool.wait_status(task_id, "failed", timeout=60)
    assert not target.exists()
    assert record.failure_reason is not None
    assert record.failure_reason.startswith("write denied:")
    assert "api/**" in record.failure_reason


@pytest.mark.faults
def test_a_write_into_the_pool_folder_is_blocked(real_pool: StartPool, cli: CliEnv) -> None:
    target = cli.cwd / ".agent-pool" / "experts" / "backend" / "state.md"
    pool = real_pool(
        [
            Conversation(
                match="Rewrite your state by hand",
                turns=[
                    Turn.tool("Write", {"file_path": str(target), "content": "hacked"}),
                    Turn.text("ok"),
                ],
            )
        ],
        ONE_TRY,
    )
    before = target.read_text()
    task_id = pool.post("backend", "Rewrite your state by hand")
    record = pool.wait_status(task_id, "failed", timeout=60)
    assert target.read_text() == before
    assert record.failure_reason is not None
    assert record.failure_reason.startswith("write denied:")


def test_recall_and_search_index_read_earlier_sessions(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="About caching",
                turns=[report("cache uses redis"), Turn.text("cache done")],
            ),
            Conversation(
                match="Look back",
                turns=[
                    Turn.tool(f"{TOOL}recall", {"task_id": "first-task"}),
                    Turn.tool(f"{TOOL}search_index", {"query": "cache done"}),
                    report("recalled"),
                    Turn.text("ok"),
                ],
            ),
        ],
        "",
    )
    pool.post("backend", "About caching", id="first-task")
    pool.wait_status("first-task", "completed", timeout=60)
    second = pool.post("backend", "Look back at your work")
    pool.wait_status(second, "completed", timeout=60)
    results = _tool_results(_log(pool, second))
    assert any("cache uses redis" in text for text in results), results  # the recalled transcript
    assert any("first-task" in text and "cache done" in text for text in results), results


def test_two_handoffs_end_in_needs_attention(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Big job",
                turns=[
                    Turn.tool(f"{TOOL}signal_handoff", {"note": "halfway there"}),
                    Turn.text("bye"),
                ],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Big job in parts")
    record = pool.wait_status(task_id, "failed", timeout=90)
    assert record.needs_attention
    assert record.failure_reason is not None
    assert "handed off 2 times" in record.failure_reason
    assert "halfway there" in record.failure_reason


@pytest.mark.faults
def test_hostile_tool_arguments_are_refused_and_change_nothing(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Misbehave",
                turns=[
                    Turn.tool(f"{TOOL}update_state", {"content": "x" * 20_000}),
                    Turn.tool(f"{TOOL}send_notify", {"to": "../etc", "body": "hi"}),
                    Turn.tool(f"{TOOL}send_notify", {"to": "nobody", "body": "hi"}),
                    Turn.tool(f"{TOOL}recall", {"task_id": "../../etc/passwd"}),
                    Turn.tool(RESPOND, {"body": "tried"}),
                    Turn.text("ok"),
                ],
            )
        ],
        "",
    )
    state = pool.layout.root / "experts" / "backend" / "state.md"
    before = state.read_text()
    task_id = pool.post("backend", "Misbehave on purpose")
    pool.wait_status(task_id, "completed", timeout=60)
    errors = [text for text, is_error in _tool_results_with_errors(_log(pool, task_id)) if is_error]
    assert len(errors) == 4, errors
    assert "state budget" in errors[0]
    assert "'../etc'" in errors[1]
    assert "nobody" in errors[2]
    assert "../../etc/passwd" in errors[3]
    assert state.read_text() == before
    assert not list(pool.layout.dead_letter.iterdir())  # nothing was even posted


def _tool_results(log: str) -> list[str]:
    return [text for text, _ in _tool_results_with_errors(log)]


def _tool_results_with_errors(log: str) -> list[tuple[str, bool]]:
    """The text of every tool result in a stream-json log, and whether it was an error."""
    found = []
    for line in log.splitlines():
        event = json.loads(line)
        if event.get("type") != "user":
            continue
        for block in event.get("message", {}).get("content", []):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    content = " ".join(str(part.get("text", "")) for part in content)
                text = str(content)
                found.append((text, bool(block.get("is_error"))))
    return found
