"""The command line of one expert session (pure: no I/O).

The prompt never goes into argv: it can be tens of kilobytes (argv has limits) and
anything in argv is visible to every user through `ps`. It is written to stdin.
"""

from __future__ import annotations

from pathlib import Path

from agent_pool.config.model import EffectiveAgentSettings


def build_argv(
    claude_bin: str,
    settings: EffectiveAgentSettings,
    *,
    mcp_config: Path | None = None,
    hook_settings: Path | None = None,
) -> list[str]:
    """`claude -p` in stream-json mode with the agent's model, tools and backstops."""
    argv = [
        claude_bin,
        "-p",
        "--output-format",
        "stream-json",
        # Required by the CLI together with `-p --output-format stream-json`.
        "--verbose",
        "--model",
        settings.model,
        "--allowedTools",
        ",".join(settings.allowed_tools),
        # Keeps the user's own MCP servers out of expert sessions.
        "--strict-mcp-config",
    ]
    if mcp_config is not None:
        argv += ["--mcp-config", str(mcp_config)]
    if hook_settings is not None:
        argv += ["--settings", str(hook_settings)]
    if settings.max_turns is not None:
        argv += ["--max-turns", str(settings.max_turns)]
    if settings.max_budget_usd is not None:
        argv += ["--max-budget-usd", str(settings.max_budget_usd)]
    return argv
