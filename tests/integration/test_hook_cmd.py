"""The hooks as Claude Code runs them: real child processes, JSON on stdin, exit codes.

Sessions run `python -P -m agent_pool.hooks` (the command the settings generate);
the `agent-pool hook` click group runs the same code and is checked here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agent_pool.cli.hook_cmd import hook
from agent_pool.hooks.__main__ import HookUsageError, parse_args
from agent_pool.hooks.report import (
    DENIALS_LOG,
    HOOKS_LOG,
    RESPONDED_MARKER,
    STOP_REMINDER,
)
from agent_pool.hooks.settings import hook_settings

MODULE_ENTRY = [sys.executable, "-P", "-m", "agent_pool.hooks"]
CLICK_ENTRY = [sys.executable, "-c", "from agent_pool.cli.hook_cmd import hook; hook()"]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Session:
    project: Path
    pool: Path
    folder: Path

    def guard_args(self, *owns: str) -> list[str]:
        return [
            "pre-tool-use",
            f"--pool-dir={self.pool}",
            f"--project-dir={self.project}",
            f"--session-dir={self.folder}",
            *(f"--owns={glob}" for glob in owns),
        ]

    def records(self, name: str) -> list[dict[str, object]]:
        path = self.folder / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    project = tmp_path / "my project"
    pool = project / ".agent-pool"
    folder = pool / "daemon" / "sessions" / "task 1"
    folder.mkdir(parents=True)
    (project / "src").mkdir()
    return Session(project=project, pool=pool, folder=folder)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_POOL_", "PYTHON"))}


def run(argv: list[str], stdin: bytes | str, cwd: Path) -> Run:
    proc = subprocess.run(
        argv,
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        cwd=cwd,
        env=_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def write_input(session: Session, path: str, tool: str = "Write") -> str:
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    return json.dumps(
        {
            "session_id": "s-1",
            "transcript_path": "/tmp/t.jsonl",
            "cwd": str(session.project),
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": {key: path, "content": "x"},
        }
    )


def stop_input(active: bool) -> str:
    return json.dumps(
        {
            "session_id": "s-1",
            "transcript_path": "/tmp/t.jsonl",
            "cwd": "/tmp",
            "hook_event_name": "Stop",
            "stop_hook_active": active,
            "last_assistant_message": "done",
        }
    )


@pytest.mark.parametrize("entry", [MODULE_ENTRY, CLICK_ENTRY], ids=["module", "click"])
def test_an_owned_write_is_allowed_silently(session: Session, entry: list[str]) -> None:
    result = run(
        [*entry, *session.guard_args("src/**")], write_input(session, "src/a.py"), session.project
    )
    assert result == Run(0, "", "")
    (record,) = session.records(HOOKS_LOG)
    assert record["decision"] == "allow"
    assert session.records(DENIALS_LOG) == []


@pytest.mark.parametrize("entry", [MODULE_ENTRY, CLICK_ENTRY], ids=["module", "click"])
def test_an_unowned_write_is_blocked_with_the_reason(session: Session, entry: list[str]) -> None:
    argv = [*entry, *session.guard_args("src/**", "docs/*.md")]
    result = run(argv, write_input(session, "lib/a.py", "Edit"), session.project)
    assert result.code == 2
    assert result.out == ""
    assert "src/**, docs/*.md" in result.err
    assert result.err.count("\n") == 1
    (denial,) = session.records(DENIALS_LOG)
    assert denial["event"] == "pre-tool-use"
    assert denial["tool"] == "Edit"
    assert denial["path"] == "lib/a.py"
    assert denial["reason"] == result.err.strip()


@pytest.mark.parametrize("owns", [(), ("**",)])
def test_the_pool_folder_is_blocked(session: Session, owns: tuple[str, ...]) -> None:
    target = str(session.pool / "experts" / "api" / "state.md")
    result = run(
        [*MODULE_ENTRY, *session.guard_args(*owns)], write_input(session, target), session.project
    )
    assert result.code == 2
    assert result.out == ""
    assert "mcp__agent-pool__update_state" in result.err
    assert len(session.records(DENIALS_LOG)) == 1


def test_a_symlink_into_the_pool_is_blocked(session: Session) -> None:
    (session.project / "src" / "pool").symlink_to(session.pool)
    stdin = write_input(session, "src/pool/pool.toml", "NotebookEdit")
    result = run([*MODULE_ENTRY, *session.guard_args()], stdin, session.project)
    assert result.code == 2
    assert "pool folder" in result.err


def test_a_write_without_a_path_is_blocked(session: Session) -> None:
    stdin = json.dumps({"tool_name": "Write", "tool_input": {"content": "x"}})
    result = run([*MODULE_ENTRY, *session.guard_args()], stdin, session.project)
    assert result.code == 2
    assert "file_path" in result.err


@pytest.mark.parametrize("stdin", [b"", b"garbage", b"\xff\xfe", b"[]"])
def test_malformed_input_is_allowed_and_recorded(session: Session, stdin: bytes) -> None:
    result = run([*MODULE_ENTRY, *session.guard_args("src/**")], stdin, session.project)
    assert result == Run(0, "", "")
    (record,) = session.records(HOOKS_LOG)
    assert str(record["reason"]).startswith("malformed hook input")


@pytest.mark.parametrize("entry", [MODULE_ENTRY, CLICK_ENTRY], ids=["module", "click"])
def test_stop_sends_the_session_back_once(session: Session, entry: list[str]) -> None:
    argv = [*entry, "stop", f"--session-dir={session.folder}"]
    first = run(argv, stop_input(False), session.project)
    assert first == Run(2, "", STOP_REMINDER + "\n")
    second = run(argv, stop_input(True), session.project)
    assert second == Run(0, "", "")
    decisions = [r["decision"] for r in session.records(HOOKS_LOG)]
    assert decisions == ["block", "allow"]


def test_stop_after_a_response_is_allowed(session: Session) -> None:
    (session.folder / RESPONDED_MARKER).write_text("")
    argv = [*MODULE_ENTRY, "stop", f"--session-dir={session.folder}"]
    assert run(argv, stop_input(False), session.project) == Run(0, "", "")


def test_stop_with_garbage_input_never_blocks(session: Session) -> None:
    argv = [*MODULE_ENTRY, "stop", f"--session-dir={session.folder}"]
    assert run(argv, "}{", session.project) == Run(0, "", "")


def test_the_generated_settings_commands_run_through_a_shell(session: Session) -> None:
    """What Claude Code does: `sh -c COMMAND` in the project, hook JSON on stdin."""
    settings = hook_settings(
        python=sys.executable,
        pool_dir=session.pool,
        project_dir=session.project,
        owns=["src/**"],
        session_dir=session.folder,
    )
    guard = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    stop = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    shell = ["/bin/sh", "-c"]
    assert run([*shell, guard], write_input(session, "src/a.py"), session.project).code == 0
    denied = run([*shell, guard], write_input(session, "README.md"), session.project)
    assert denied.code == 2
    assert "src/**" in denied.err
    assert run([*shell, stop], stop_input(False), session.project).code == 2
    assert [r["event"] for r in session.records(HOOKS_LOG)] == ["pre-tool-use"] * 2 + ["stop"]


def test_a_planted_agent_pool_package_in_the_project_cannot_replace_the_guard(
    session: Session,
) -> None:
    planted = session.project / "agent_pool"
    (planted / "hooks").mkdir(parents=True)
    (planted / "__init__.py").write_text("")
    (planted / "hooks" / "__init__.py").write_text("")
    (planted / "hooks" / "__main__.py").write_text("raise SystemExit(0)\n")
    stdin = write_input(session, "README.md")
    result = run([*MODULE_ENTRY, *session.guard_args("src/**")], stdin, session.project)
    assert result.code == 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["pre-tool-use", "--pool-dir=/p"], 2),
        (["pre-tool-use", "--bogus=1"], 2),
        (["stop"], 1),
        (["stop", "--session-dir"], 1),
        ([], 1),
        (["post-tool-use"], 1),
    ],
)
def test_a_bad_command_line_blocks_writes_but_never_a_stop(
    session: Session, args: list[str], code: int
) -> None:
    result = run([*MODULE_ENTRY, *args], "{}", session.project)
    assert result.code == code
    assert result.out == ""
    assert "agent-pool hook is misconfigured" in result.err


def test_parse_args_accepts_both_option_spellings() -> None:
    command, values = parse_args(
        [
            "pre-tool-use",
            "--pool-dir",
            "/p",
            "--project-dir=/q",
            "--session-dir=/s=x",
            "--owns=-a",
            "--owns",
            "b/**",
        ]
    )
    assert command == "pre-tool-use"
    assert values == {
        "--pool-dir": ["/p"],
        "--project-dir": ["/q"],
        "--session-dir": ["/s=x"],
        "--owns": ["-a", "b/**"],
    }


@pytest.mark.parametrize(
    "args",
    [
        ["stop", "--session-dir=/a", "--session-dir=/b"],
        ["stop", "--owns=x", "--session-dir=/a"],
        ["stop", "positional"],
        ["pre-tool-use", "--pool-dir=/p", "--project-dir=/q"],
    ],
)
def test_parse_args_refuses_mistakes(args: list[str]) -> None:
    with pytest.raises(HookUsageError):
        parse_args(args)


def test_the_click_group_registers_on_another_group(session: Session) -> None:
    @click.group()
    def root() -> None:
        pass

    root.add_command(hook)
    result = CliRunner().invoke(
        root,
        ["hook", *session.guard_args("src/**")],
        input=write_input(session, "lib/x.py"),
    )
    assert result.exit_code == 2
    assert "src/**" in result.stderr
    assert result.stdout == ""
