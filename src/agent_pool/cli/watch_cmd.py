"""`agent-pool watch [--plain]`: the live dashboard, or the daemon's events as lines.

textual takes ~200 ms to import, so it is imported only once the dashboard is about to
run; every other command (and `--plain`) never loads it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.pool.layout import PoolLayout


@click.command()
@click.option(
    "--plain",
    is_flag=True,
    help="One line per event on stdout instead of the dashboard "
    "(implied when stdout is not a terminal).",
)
@click.pass_obj
def watch(obj: CliContext, plain: bool) -> None:
    """Live dashboard: experts, tasks, what needs you, cost, and the event feed.

    Keys: c cancels the highlighted task, r retries it, enter or t shows its
    transcript, s cycles the status filter, / filters by text, q quits.

    With --plain (or when stdout is not a terminal) every event is printed as
    `HH:MM:SS  type  key=value ...` until the daemon stops (exit 0) or Ctrl-C.
    """
    layout = obj.layout
    if plain or not sys.stdout.isatty():
        _stream_lines(layout)
        return
    from agent_pool.control.client import request

    request(layout.socket_path, "ping", timeout=5.0)  # no daemon: the usual one-line error

    from agent_pool.watch.app import WatchApp

    WatchApp(layout).run()


def _stream_lines(layout: PoolLayout) -> None:
    from agent_pool.control.client import EventStream
    from agent_pool.watch.plain import format_event

    out = sys.stdout
    stopped = False
    try:
        with EventStream(layout.socket_path) as stream:
            hello = stream.hello
            click.echo(
                f"watching pool {hello.get('pool', '?')} (daemon pid {hello.get('pid', '?')}); "
                "Ctrl-C stops",
                err=True,
            )
            for event in stream:
                out.write(format_event(event, now=time.time()) + "\n")
                out.flush()  # a reader (a pipe, `tail`, a test) sees each event at once
                stopped = stopped or event.get("type") == "daemon.stopped"
    except KeyboardInterrupt:
        return  # the user is done watching; nothing failed
    except BrokenPipeError:
        _discard_stdout()  # the reader went away (`| head`): done, quietly
        return
    if not stopped:
        raise AgentPoolError("the event stream ended before the daemon stopped (did it crash?)")


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
