"""The `claude -p` command line built for a session."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from agent_pool.config.model import EffectiveAgentSettings
from agent_pool.session import build_argv


def settings(**changes: object) -> EffectiveAgentSettings:
    values: dict[str, object] = {
        "model": "sonnet",
        "allowed_tools": ("Read", "Write", "mcp__agent-pool__send_response"),
        "timeout": None,
        "max_turns": None,
        "max_budget_usd": None,
    }
    values.update(changes)
    return EffectiveAgentSettings(**values)  # type: ignore[arg-type]


def test_minimal_command_line() -> None:
    assert build_argv("/opt/claude", settings()) == [
        "/opt/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "sonnet",
        "--allowedTools",
        "Read,Write,mcp__agent-pool__send_response",
        "--strict-mcp-config",
    ]


def test_every_option() -> None:
    argv = build_argv(
        "claude",
        settings(model="opus", max_turns=12, max_budget_usd=0.5, timeout=timedelta(minutes=5)),
        mcp_config=Path("/pool/run/mcp.json"),
        hook_settings=Path("/pool/run/hooks.json"),
    )
    assert argv[:7] == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "opus",
    ]
    tail = argv[argv.index("--strict-mcp-config") + 1 :]
    assert tail == [
        "--mcp-config",
        "/pool/run/mcp.json",
        "--settings",
        "/pool/run/hooks.json",
        "--max-turns",
        "12",
        "--max-budget-usd",
        "0.5",
    ]


def test_timeout_is_not_a_cli_flag() -> None:
    argv = build_argv("claude", settings(timeout=timedelta(minutes=30)))
    assert not any("timeout" in item for item in argv)
