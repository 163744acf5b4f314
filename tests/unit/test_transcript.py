"""Readable transcripts from stream-json events (shapes from spec/claude-cli.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_pool.session.transcript import LogEvents, render_transcript

INIT: dict[str, Any] = {
    "type": "system",
    "subtype": "init",
    "session_id": "5f1c-42",
    "tools": ["Read", "Write", "Bash", "mcp__agent-pool__send_response"],
    "mcp_servers": [{"name": "agent-pool", "status": "connected"}],
    "model": "sonnet",
    "permissionMode": "default",
    "claude_code_version": "2.1.330",
}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {"id": "msg_1", "content": list(blocks), "usage": {}},
        "session_id": "5f1c-42",
    }


def tool_result(tool_use_id: str, content: object, *, is_error: bool = False) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}
    return {"type": "user", "message": {"content": [block | {"is_error": is_error}]}}


RESULT: dict[str, Any] = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 4,
    "result": "Added /health.",
    "total_cost_usd": 0.0123,
    "usage": {"input_tokens": 1200, "output_tokens": 300},
    "permission_denials": [{"tool_name": "Bash", "tool_use_id": "tu_2", "tool_input": {}}],
    "terminal_reason": "completed",
    "session_id": "5f1c-42",
    "duration_ms": 4200,
}

SESSION: list[dict[str, Any]] = [
    INIT,
    {"type": "system", "subtype": "hook_started", "hook_name": "SessionStart"},
    assistant({"type": "text", "text": "I will add the endpoint.\nFirst I read the app."}),
    assistant({"type": "tool_use", "id": "tu_1", "name": "Read", "input": {"file_path": "app.py"}}),
    tool_result("tu_1", "from fastapi import FastAPI\napp = FastAPI()\n"),
    assistant(
        {
            "type": "tool_use",
            "id": "tu_3",
            "name": "Write",
            "input": {"file_path": "/p/app.py", "content": "x = 1\n" * 100},
        }
    ),
    tool_result("tu_3", [{"type": "text", "text": "File created successfully at: /p/app.py"}]),
    assistant({"type": "tool_use", "id": "tu_2", "name": "Bash", "input": {"command": "pytest"}}),
    tool_result("tu_2", "Claude requested permissions to use Bash, but denied.", is_error=True),
    {"type": "stream_event", "event": {"type": "content_block_delta"}},
    {"type": "rate_limit_event", "whatever": 1},
    assistant(
        {
            "type": "tool_use",
            "id": "tu_4",
            "name": "mcp__agent-pool__send_response",
            "input": {"body": "Added /health; tests not run (Bash denied)."},
        }
    ),
    tool_result("tu_4", [{"type": "text", "text": '{"id": "r-1"}'}]),
    assistant({"type": "text", "text": "Added /health."}),
    RESULT,
]


def test_a_whole_session_reads_naturally() -> None:
    assert list(render_transcript(SESSION)) == [
        "── session 5f1c-42 · model sonnet · 4 tools · mcp: agent-pool (connected)"
        " · claude 2.1.330",
        "assistant: I will add the endpoint.\n  First I read the app.",
        "→ Read(file_path=app.py)",
        "← result: from fastapi import FastAPI (+1 lines)",
        "→ Write(file_path=/p/app.py, content=<600 chars>)",
        "← result: File created successfully at: /p/app.py",
        "→ Bash(command=pytest)",
        "← error (Bash): Claude requested permissions to use Bash, but denied.",
        "→ mcp__agent-pool__send_response(body=Added /health; tests not run (Bash denied).)",
        '← result: {"id": "r-1"}',
        "assistant: Added /health.",
        "══ result: success · 4 turns · $0.0123 · 4.2s · 1200 in / 300 out tokens · denied: Bash",
    ]


def test_error_results_say_why() -> None:
    event = {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "api_error_status": 529,
        "result": "API Error: 529 overloaded\nretry later",
        "num_turns": 1,
        "duration_ms": 61_000,
    }
    [line] = render_transcript([event])
    assert line == (
        "══ result: error · 1 turns · $0.0000 · 1m01s · 0 in / 0 out tokens · "
        "API status 529 · API Error: 529 overloaded (+1 lines)"
    )
    [line] = render_transcript([{"type": "result", "subtype": "error_max_turns", "is_error": True}])
    assert line.startswith("══ result: error (error_max_turns) · 0 turns")


def test_long_inputs_and_results_are_abbreviated() -> None:
    events = [
        assistant(
            {
                "type": "tool_use",
                "id": "t",
                "name": "Edit",
                "input": {"old_string": "a" * 81, "replace_all": False, "edits": list(range(40))},
            }
        ),
        tool_result("t", "z" * 500),
        tool_result("t", ""),
        assistant({"type": "text", "text": "w" * 5000}),
        assistant({"type": "thinking", "thinking": "hmm" * 10}),
    ]
    lines = list(render_transcript(events))
    assert lines[0] == "→ Edit(old_string=<81 chars>, replace_all=false, edits=<111 chars of JSON>)"
    assert lines[1] == "← result: " + "z" * 160 + "… (340 more chars)"
    assert lines[2] == "← result: (empty)"
    assert lines[3] == "assistant: " + "w" * 4000 + "… (1000 more chars)"
    assert lines[4] == "(thinking: 30 chars)"


def test_odd_and_unknown_events_are_skipped_quietly() -> None:
    events: list[dict[str, Any]] = [
        {"type": "mystery"},
        {"no_type": True},
        {"type": "assistant"},
        {"type": "assistant", "message": {"content": "plain string content"}},
        {"type": "user", "message": {"content": [{"type": "image"}, 42, None]}},
        {"type": "user", "message": {"content": "Stop hook feedback: report back first"}},
        {"type": "system", "subtype": "api_retry", "attempt": 2, "error_status": 529},
        {"type": "system", "subtype": "compact_boundary"},
        {"type": "system", "subtype": "hook_response"},
        {"type": "system", "subtype": "init"},
    ]
    assert list(render_transcript(events)) == [
        "assistant: plain string content",
        "user: Stop hook feedback: report back first",
        "· API retry (attempt 2, status 529)",
        "· system: compact_boundary",
        "── session ? · model ? · 0 tools",
    ]


def test_terminal_escapes_in_a_log_are_never_replayed() -> None:
    lines = list(render_transcript([tool_result("t", "\x1b[31mred\x1b[0m\x07")]))
    assert lines == ["← result: ?[31mred?[0m?"]


def test_log_events_streams_a_file_and_counts_unreadable_lines(tmp_path: Path) -> None:
    log = tmp_path / "t-1.jsonl"
    lines = [json.dumps(event) for event in SESSION[:3]]
    huge = json.dumps({"type": "user", "message": {"content": "x" * 5000}})
    log.write_text(
        "\n".join([lines[0], "not json", huge, "", "[1, 2]", *lines[1:]]) + "\n" + lines[0],
        encoding="utf-8",
    )
    events = LogEvents(log, max_line=4096)
    read = list(events)
    assert read == [SESSION[0], *SESSION[1:3], SESSION[0]]  # the unterminated last line too
    assert events.skipped == 3  # invalid JSON, a non-object, an over-long line
