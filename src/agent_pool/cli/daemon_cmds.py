"""`agent-pool start | stop | status`: the daemon's lifecycle, seen from the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import click

from agent_pool.cli.context import CliContext
from agent_pool.control.client import (
    DaemonNotRunningError,
    DaemonStartError,
    request,
    wait_until_answering,
)
from agent_pool.errors import AgentPoolError

DETACH_TIMEOUT = 30.0


@click.command()
@click.option("--detach", is_flag=True, help="Run in the background; return once it answers.")
@click.pass_obj
def start(obj: CliContext, detach: bool) -> None:
    """Start the pool's daemon (in the foreground unless --detach)."""
    layout = obj.layout
    config = obj.config  # report configuration mistakes before anything starts
    if detach:
        pid = _start_detached(obj)
        click.echo(f"agent-pool daemon for {config.name} started (pid {pid})")
        return
    import asyncio

    from agent_pool.daemon.daemon import Daemon

    daemon = Daemon(layout, obj.home, obj.environ)

    async def serve() -> None:
        running = asyncio.create_task(daemon.run())
        ready = asyncio.create_task(daemon.started.wait())
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            click.echo(
                f"agent-pool daemon for {config.name} running (pid {os.getpid()}); "
                "stop it with Ctrl-C or `agent-pool stop`"
            )
        else:
            ready.cancel()
        await running

    _use_pidfd_child_watcher()
    asyncio.run(serve())
    click.echo("agent-pool daemon stopped")


def _use_pidfd_child_watcher() -> None:
    """On Python 3.11, reap sessions through pidfds instead of a thread per child.

    The default watcher starts a thread for every spawned session; with pidfds the
    event loop is told of each exit directly. Python 3.12+ picks pidfds by itself.
    """
    import asyncio

    if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def _start_detached(obj: CliContext) -> int:
    layout = obj.layout
    layout.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    start_log = layout.runtime_dir / "start.log"
    with start_log.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "agent_pool", "--pool", str(layout.root), "start"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal: it never waits on one or gets its signals
            env=dict(obj.environ),
            cwd=layout.root,
        )
    try:
        pid = wait_until_answering(layout.socket_path, timeout=DETACH_TIMEOUT, exited=child.poll)
    except DaemonStartError as exc:
        lines = start_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        reason = lines[-1].removeprefix("agent-pool: error: ") if lines else exc.message
        raise AgentPoolError(f"the daemon did not start: {reason} (see {start_log})") from exc
    child.returncode = 0  # it lives on without us; do not warn about an unwaited child
    return pid


@click.command()
@click.option("--now", is_flag=True, help="Stop running sessions at once instead of draining.")
@click.pass_obj
def stop(obj: CliContext, now: bool) -> None:
    """Stop the daemon: no new sessions; running ones finish within the grace period."""
    from agent_pool.daemon.lock import is_locked

    layout = obj.layout
    answer = request(layout.socket_path, "stop", now=now)
    click.echo(f"stopping the daemon (pid {answer['pid']})" + ("" if now else "; draining"))
    grace = obj.config.daemon.drain_grace.total_seconds()
    deadline = time.monotonic() + (0 if now else grace) + 30
    while is_locked(layout.lock_file):
        if time.monotonic() > deadline:
            raise AgentPoolError(f"the daemon (pid {answer['pid']}) is still stopping")
        time.sleep(0.05)
    click.echo("stopped")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(obj: CliContext, as_json: bool) -> None:
    """What the daemon is doing: experts, queues, tasks, attention, cost."""
    try:
        data = request(obj.layout.socket_path, "status", timeout=10.0)
    except DaemonNotRunningError:
        if as_json:
            click.echo(json.dumps({"state": "stopped"}))
        else:
            click.echo(f"the agent-pool daemon is not running (pool {obj.layout.root})")
        raise click.exceptions.Exit(1) from None
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_status(data))


def format_status(data: dict[str, Any]) -> str:
    lines = [f"pool {data['pool']} (pid {data['pid']}): {data['state']}"]
    lines.append("agents:")
    for agent in data["experts"]:
        task = ""
        if agent["current_task"]:
            tool = f", last tool {agent['last_tool']}" if agent.get("last_tool") else ""
            task = f"  running {agent['current_task']} ({agent['running_s']} s{tool})"
        lines.append(
            f"  {agent['name']:<20} {agent['kind']:<13} {agent['state']:<5} "
            f"queued {agent['queued']:<4} ${agent['cost_usd']:.4f}{task}"
        )
    tasks = data["tasks"]
    lines.append("tasks: " + ", ".join(f"{name} {count}" for name, count in tasks.items()))
    for blocked in data.get("blocked", []):
        waits = ", ".join(f"{dep} ({state})" for dep, state in blocked["waits_on"].items())
        lines.append(f"  {blocked['id']} waits on {waits}")
    if data["needs_attention"]:
        lines.append("needs attention:")
        lines.extend(
            f"  {item['id']} ({item['to']}, {item['status']}): {item['reason']}"
            for item in data["needs_attention"]
        )
    if data["dead_letters"]:
        lines.append(f"dead letters: {data['dead_letters']} (in dead-letter/; newest first)")
        lines.extend(
            f"  {letter['file']}: {letter['reason']}"
            for letter in data.get("dead_letter_recent", [])[:5]
        )
    today = data.get("cost_today_usd")
    tokens = data.get("tokens")
    lines.append(
        f"cost: ${data['cost_usd']:.4f} in total"
        + (f", ${today:.4f} today" if today is not None else "")
        + (f"; tokens {tokens['input']:,} in, {tokens['output']:,} out" if tokens else "")
    )
    return "\n".join(lines)
