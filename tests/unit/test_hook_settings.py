"""The per-session `--settings` JSON: Claude Code's hooks shape, commands that survive a shell."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from agent_pool.hooks.guard import WRITE_TOOLS
from agent_pool.hooks.settings import (
    HOOK_MODULE,
    SETTINGS_FILE_NAME,
    WRITE_TOOLS_MATCHER,
    hook_command,
    hook_settings,
    write_hook_settings,
)

PYTHON = "/opt/my venv/bin/python"


def _settings(tmp_path: Path, owns: tuple[str, ...] = ("src/**", "docs/*.md")) -> dict[str, Any]:
    project = tmp_path / "my project"
    return hook_settings(
        python=PYTHON,
        pool_dir=project / ".agent-pool",
        project_dir=project,
        owns=owns,
        session_dir=project / ".agent-pool" / "daemon" / "sessions" / "t 1",
    )


def _only_command(entries: list[dict[str, Any]]) -> str:
    (entry,) = entries
    (hook,) = entry["hooks"]
    assert hook["type"] == "command"
    command = hook["command"]
    assert isinstance(command, str)
    return command


def test_the_shape_is_claude_codes_hooks_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert list(settings) == ["hooks"]
    assert set(settings["hooks"]) == {"PreToolUse", "Stop"}
    (pre,) = settings["hooks"]["PreToolUse"]
    assert pre["matcher"] == "Write|Edit|MultiEdit|NotebookEdit"
    (stop,) = settings["hooks"]["Stop"]
    assert "matcher" not in stop
    # Round-trips through JSON unchanged (it is written to a file and read by node).
    assert json.loads(json.dumps(settings)) == settings


def test_the_matcher_names_exactly_the_tools_the_guard_checks() -> None:
    assert set(WRITE_TOOLS_MATCHER.split("|")) == WRITE_TOOLS


def test_pre_tool_use_command_round_trips_through_the_shell(tmp_path: Path) -> None:
    project = tmp_path / "my project"
    argv = shlex.split(_only_command(_settings(tmp_path)["hooks"]["PreToolUse"]))
    assert argv == [
        PYTHON,
        "-P",
        "-m",
        HOOK_MODULE,
        "pre-tool-use",
        f"--pool-dir={project / '.agent-pool'}",
        f"--project-dir={project}",
        f"--session-dir={project / '.agent-pool/daemon/sessions/t 1'}",
        "--owns=src/**",
        "--owns=docs/*.md",
    ]


def test_stop_command_round_trips_through_the_shell(tmp_path: Path) -> None:
    session = tmp_path / "my project" / ".agent-pool" / "daemon" / "sessions" / "t 1"
    argv = shlex.split(_only_command(_settings(tmp_path)["hooks"]["Stop"]))
    assert argv == [PYTHON, "-P", "-m", HOOK_MODULE, "stop", f"--session-dir={session}"]


@pytest.mark.parametrize(
    "awkward", ["it's", 'say "hi"', "$HOME", "`id`", "a;b", "-starts-with-dash", "tab\there"]
)
def test_shell_metacharacters_stay_literal(tmp_path: Path, awkward: str) -> None:
    folder = tmp_path / awkward
    settings = hook_settings(
        python=PYTHON,
        pool_dir=folder / ".agent-pool",
        project_dir=folder,
        owns=[f"{awkward}/**"],
        session_dir=folder / "s",
    )
    argv = shlex.split(_only_command(settings["hooks"]["PreToolUse"]))
    assert f"--project-dir={folder}" in argv
    assert f"--owns={awkward}/**" in argv


def test_no_owns_means_no_owns_options(tmp_path: Path) -> None:
    argv = shlex.split(_only_command(_settings(tmp_path, owns=())["hooks"]["PreToolUse"]))
    assert not [arg for arg in argv if arg.startswith("--owns")]


def test_hook_command_quotes_every_argument() -> None:
    assert hook_command("python", "stop", "--session-dir=/a b") == (
        "python -P -m agent_pool.hooks stop '--session-dir=/a b'"
    )


def test_write_hook_settings_writes_the_same_json(tmp_path: Path) -> None:
    session = tmp_path / "session"
    session.mkdir()
    path = write_hook_settings(
        session,
        python=PYTHON,
        pool_dir=tmp_path / ".agent-pool",
        project_dir=tmp_path,
        owns=("src/**",),
    )
    assert path == session / SETTINGS_FILE_NAME
    assert json.loads(path.read_text()) == hook_settings(
        python=PYTHON,
        pool_dir=tmp_path / ".agent-pool",
        project_dir=tmp_path,
        owns=("src/**",),
        session_dir=session,
    )
    assert [p.name for p in session.iterdir()] == [SETTINGS_FILE_NAME]
