"""The real Claude Code CLI (pinned 2.1.330) driven by the scripted model server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent_pool.testing import Conversation, Script, Turn
from tests.e2e.conftest import ClaudeRun, ClaudeRunner, ServerFactory, kill_group, parse_stream


def assert_success(run: ClaudeRun, text: str) -> None:
    result = run.result
    assert (run.code, result["subtype"], result["is_error"]) == (0, "success", False), run.stderr
    assert result["result"] == text
    assert result["permission_denials"] == []


def test_text_turn_is_the_result(claude: ClaudeRunner, model_server: ServerFactory) -> None:
    server = model_server(Script.of(Turn.text("Hello from the script.")))

    run = claude.run(server, "say hello")

    assert_success(run, "Hello from the script.")
    assert isinstance(run.result["total_cost_usd"], float | int)
    init = run.of_type("system", "init")[0]
    assert init["claude_code_version"] == "2.1.330"
    [request] = server.requests
    assert (request.path, request.turn_index, request.reply) == ("/v1/messages", 0, "text")
    assert request.prompt.rstrip().endswith("say hello")
    assert "Write" in request.tools
    assert request.system_chars > 1000


def test_write_tool_turn_writes_the_file(claude: ClaudeRunner, model_server: ServerFactory) -> None:
    content = "first line\nsecond line with ünïcode\n"
    server = model_server(
        Script.of(
            Turn.tool("Write", {"file_path": "notes/out.txt", "content": content}, text="Writing."),
            Turn.text("Wrote notes/out.txt."),
        )
    )

    run = claude.run(server, "write the notes", "--allowedTools", "Write")

    assert_success(run, "Wrote notes/out.txt.")
    assert (claude.project / "notes" / "out.txt").read_text(encoding="utf-8") == content
    [tool_use] = [
        block
        for event in run.of_type("assistant")
        for block in event["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert tool_use["name"] == "Write"
    assert tool_use["id"].startswith("toolu_")
    [tool_result] = [
        block
        for event in run.of_type("user")
        for block in event["message"]["content"]
        if block["type"] == "tool_result"
    ]
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert not tool_result.get("is_error")
    assert [(r.turn_index, r.reply) for r in server.requests] == [(0, "tool_use"), (1, "text")]


def test_http_error_turn_fails_the_run(claude: ClaudeRunner, model_server: ServerFactory) -> None:
    server = model_server(Script.of(Turn.error(500, "scripted outage")))

    run = claude.run(server, "anything")

    assert run.code == 1
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 500
    assert "scripted outage" in run.result["result"]
    assert len(server.requests) == 1  # CLAUDE_CODE_MAX_RETRIES=0: no retry


def test_max_turns_stops_after_a_tool_turn(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    server = model_server(
        Script.of(
            Turn.tool("Write", {"file_path": "a.txt", "content": "a"}), Turn.text("never sent")
        )
    )

    run = claude.run(server, "loop", "--allowedTools", "Write", "--max-turns", "1")

    assert run.result["subtype"] == "error_max_turns"
    assert run.result["is_error"] is True
    assert run.code == 1  # 2.1.330 exits 1 here
    assert [r.reply for r in server.requests] == ["tool_use"]


def test_unlisted_bash_call_is_a_permission_denial(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    # A read-only command like `echo hi` runs without approval; one that writes does not.
    command = "echo hi > created-by-bash.txt"
    server = model_server(
        Script.of(
            Turn.tool("Bash", {"command": command, "description": "write a file"}),
            Turn.text("Tried."),
        )
    )

    run = claude.run(server, "run a command", "--allowedTools", "Write")

    assert run.code == 0
    assert run.result["subtype"] == "success"
    [denial] = run.result["permission_denials"]
    assert denial["tool_name"] == "Bash"
    assert denial["tool_input"]["command"] == command
    assert not (claude.project / "created-by-bash.txt").exists()
    assert [e["tool_name"] for e in run.of_type("system", "permission_denied")] == ["Bash"]


def test_concurrent_sessions_get_their_own_conversation(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    def conversation(name: str) -> Conversation:
        return Conversation(
            f"task for {name}",
            [
                Turn.tool("Write", {"file_path": f"{name}.txt", "content": name}, delay_s=0.2),
                Turn.text(f"{name} finished"),
            ],
        )

    server = model_server(
        Script([conversation("alpha"), conversation("beta"), Conversation("", [])])
    )

    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda name: claude.run(server, f"task for {name}", "--allowedTools", "Write"),
                ["alpha", "beta"],
            )
        )

    for name, run in zip(["alpha", "beta"], runs, strict=True):
        assert_success(run, f"{name} finished")
        assert (claude.project / f"{name}.txt").read_text(encoding="utf-8") == name
    seen = sorted((r.conversation, r.turn_index, r.reply) for r in server.requests)
    assert seen == [
        ("task for alpha", 0, "tool_use"),
        ("task for alpha", 1, "text"),
        ("task for beta", 0, "tool_use"),
        ("task for beta", 1, "text"),
    ]


def test_hang_turn_leaves_no_result_and_the_group_dies(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    server = model_server(Script.of(Turn.hang()))

    proc = claude.start(server, "wait forever")
    try:
        server.wait_for_requests(where=lambda r: r.reply == "hang", timeout=20)
        assert proc.poll() is None, "the CLI exited although the model never answered"
    finally:
        out, _ = kill_group(proc)

    # 2.1.330 traps SIGTERM and exits 128 + 15 by itself; -9 if it had to be killed.
    assert proc.returncode in {128 + signal.SIGTERM, -signal.SIGKILL}
    assert not [e for e in parse_stream(out) if e.get("type") == "result"]


def test_resume_continues_at_the_next_position(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    server = model_server(Script.of(Turn.text("first answer"), Turn.text("second answer")))
    session = str(uuid.uuid4())

    first = claude.run(server, "start", "--session-id", session)
    second = claude.run(server, "go on", "--resume", session)

    assert_success(first, "first answer")
    assert_success(second, "second answer")
    assert [r.turn_index for r in server.requests] == [0, 1]


def test_tool_free_session_still_follows_the_script(
    claude: ClaudeRunner, model_server: ServerFactory
) -> None:
    # With no tools offered a request looks much like the CLI's side queries; the
    # agent loop's `role: system` entry is what keeps it in the conversation.
    server = model_server(Script.of(Turn.text("scripted, not auxiliary")))

    run = claude.run(server, "no tools", "--tools", "")

    assert_success(run, "scripted, not auxiliary")
    [request] = server.requests
    assert (request.tools, request.auxiliary, request.reply) == ((), False, "text")


def test_command_line_server_with_a_toml_script(claude: ClaudeRunner, tmp_path: Path) -> None:
    script = tmp_path / "script.toml"
    script.write_text(
        '[[conversations]]\nmatch = "toml please"\n[[conversations.turns]]\ntext = "from TOML"\n',
        encoding="utf-8",
    )
    port_file = tmp_path / "port"
    log = tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_pool.testing.model_server",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        assert base_url == f"http://127.0.0.1:{port_file.read_text(encoding='utf-8').strip()}"
        run = claude.run(base_url, "toml please")
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert out == ""  # nothing after the URL line
    assert_success(run, "from TOML")
    [logged] = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert (logged["conversation"], logged["reply"]) == ("toml please", "text")
