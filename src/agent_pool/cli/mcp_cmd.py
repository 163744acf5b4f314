"""`agent-pool mcp`: serve a role's pool tools over stdio, for one session.

Started by Claude Code from a session's `--mcp-config`. Stdout carries the MCP
protocol and nothing else: errors go to stderr (before serving, as one line and exit
code 2 or 1; while serving, the SDK points fd 1 at stderr for anything stray).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import UsageError

if TYPE_CHECKING:
    from agent_pool.pool.registry import PoolRegistry
    from agent_pool.tools.context import ToolContext

ROLE_CHOICES: Final = ("expert", "architect", "researcher", "concierge")
TASK_ID_ENV: Final = "AGENT_POOL_TASK_ID"
TASK_FROM_ENV: Final = "AGENT_POOL_TASK_FROM"
SESSION_DIR_ENV: Final = "AGENT_POOL_SESSION_DIR"


@click.command("mcp")
@click.option(
    "--role", type=click.Choice(ROLE_CHOICES), required=True, help="Whose tools to serve."
)
@click.option("--expert", "expert", metavar="NAME", help="The expert (with --role expert).")
@click.pass_obj
def mcp(obj: CliContext, role: str, expert: str | None) -> None:
    """Serve the pool's MCP tools for one session over stdio.

    The session's task comes from $AGENT_POOL_TASK_ID (its sender from
    $AGENT_POOL_TASK_FROM, else the task's mail in the inbox), and its scratch folder
    from $AGENT_POOL_SESSION_DIR.
    """
    base = _session_context(obj, role, expert)
    # The SDK takes most of a second to import: only once the arguments are good.
    from agent_pool.tools.server import serve_stdio

    def context_for(_token: str | None) -> ToolContext:
        # A fresh registry per call: an expert added during the session can be notified.
        return dataclasses.replace(base, registry=_scan(obj))

    serve_stdio(role, context_for)


def _session_context(obj: CliContext, role: str, expert: str | None) -> ToolContext:
    from agent_pool.pool.registry import AgentKind
    from agent_pool.tools.context import ToolBudgets, agent_context

    if role == "expert":
        if expert is None:
            raise UsageError("--role expert needs --expert NAME")
        kind = obj.registry.kind_of(expert)
        if kind is None:
            known = ", ".join(obj.registry.expert_names()) or "none"
            raise UsageError(f"--expert {expert}: no such expert in this pool (experts: {known})")
        if kind is AgentKind.ROLE:
            raise UsageError(f"--expert {expert}: that is a role; use --role {expert}")
        agent = expert
    elif expert is not None:
        raise UsageError(f"--expert is only for --role expert, not --role {role}")
    else:
        agent = role
    environ = obj.environ
    session_dir = environ.get(SESSION_DIR_ENV)
    return agent_context(
        obj.layout,
        obj.home,
        obj.registry,
        agent,
        budgets=ToolBudgets.from_config(obj.config),
        task_id=environ.get(TASK_ID_ENV) or None,
        task_sender=environ.get(TASK_FROM_ENV) or None,
        session_dir=Path(session_dir) if session_dir else None,
    )


def _scan(obj: CliContext) -> PoolRegistry:
    from agent_pool.pool.registry import scan_registry

    return scan_registry(
        obj.layout,
        declared_experts=obj.config.experts.keys(),
        shared_experts=obj.config.shared.include,
    )
