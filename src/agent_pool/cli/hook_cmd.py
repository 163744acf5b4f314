"""`agent-pool hook pre-tool-use|stop`: the session hooks, reachable from the main CLI.

Session settings run the faster `python -P -m agent_pool.hooks` (same options, same
code in `hooks.run`); these commands are for trying a hook by hand and for anyone
who prefers one entry point. Nothing is printed to stdout: Claude Code would read it
as the hook's structured answer. Exit 2 means "blocked", with the reason on stderr.
"""

from __future__ import annotations

import sys
import time

import click


@click.group("hook")
def hook() -> None:
    """Claude Code hooks for expert sessions (they read the hook's JSON on stdin)."""


@hook.command("pre-tool-use")
@click.option("--pool-dir", required=True, help="The pool's .agent-pool folder.")
@click.option("--project-dir", required=True, help="The project folder `owns` is relative to.")
@click.option("--session-dir", required=True, help="The session folder for the hook's records.")
@click.option(
    "--owns", "owns", multiple=True, metavar="GLOB", help="A glob the expert owns (repeatable)."
)
def pre_tool_use(pool_dir: str, project_dir: str, session_dir: str, owns: tuple[str, ...]) -> None:
    """Block a write outside the expert's `owns` globs or inside the pool folder (exit 2)."""
    from agent_pool.hooks.run import run_pre_tool_use

    code, message = run_pre_tool_use(
        sys.stdin.buffer.read(),
        pool_dir=pool_dir,
        project_dir=project_dir,
        session_dir=session_dir,
        owns=owns,
        now=time.time(),
    )
    _finish(code, message)


@hook.command("stop")
@click.option("--session-dir", required=True, help="The session folder (markers and records).")
def stop(session_dir: str) -> None:
    """Send a session back once (exit 2) if it is stopping without having responded."""
    from agent_pool.hooks.run import run_stop

    code, message = run_stop(sys.stdin.buffer.read(), session_dir=session_dir, now=time.time())
    _finish(code, message)


def _finish(code: int, message: str) -> None:
    if message:
        click.echo(message, err=True)
    if code:
        # `Exit` rather than `sys.exit`: the main CLI turns it into the process's exit code.
        raise click.exceptions.Exit(code)
