"""`agent-pool demo`: a scratch pool working end to end against the scripted model."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError


@click.command()
@click.pass_obj
def demo(obj: CliContext) -> None:
    """Run a whole pool end to end with the real Claude Code CLI and a scripted model.

    Needs no account and no network: every session talks to a local stand-in for the
    model API. Uses $AGENT_POOL_CLAUDE_BIN, else the CLI `make` installed in the
    repository, else `claude` on PATH.
    """
    from agent_pool.demo import run_demo
    from agent_pool.testing.claude_cli import find_claude_cli

    configured = obj.environ.get("AGENT_POOL_CLAUDE_BIN")
    found = shutil.which(configured) if configured else None
    claude = Path(found) if found else find_claude_cli()
    if claude is None:
        on_path = shutil.which("claude")
        claude = Path(on_path) if on_path else None
    if claude is None:
        raise AgentPoolError(
            "the demo needs Claude Code: run `make demo` (it installs the pinned CLI) "
            "or set AGENT_POOL_CLAUDE_BIN"
        )
    run_demo(claude, say=click.echo)
