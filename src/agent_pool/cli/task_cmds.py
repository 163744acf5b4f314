"""`agent-pool tasks | task show | cancel | retry`: the task board."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.board import TaskBoard

STATUSES = ["pending", "blocked", "active", "completed", "failed", "cancelled", "awaiting_approval"]


@contextmanager
def open_board(obj: CliContext) -> Iterator[TaskBoard | None]:
    """The board, read-only (works with or without a daemon); None before the first start.

    Lookups by id reach the board archive too, so archived tasks can still be shown.
    """
    from agent_pool.board import TaskBoard

    layout = obj.layout
    board = TaskBoard.open_readonly_if_ready(layout.board_db, archive=layout.board_archive_db)
    if board is None:
        yield None
        return
    try:
        yield board
    finally:
        board.close()


@click.command()
@click.option("--status", "status_filter", type=click.Choice(STATUSES), default=None)
@click.option("--expert", default=None, metavar="NAME", help="Only tasks for this agent.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.pass_obj
def tasks(
    obj: CliContext, status_filter: str | None, expert: str | None, as_json: bool, limit: int
) -> None:
    """List tasks on the board."""
    from agent_pool.board import TaskStatus

    with open_board(obj) as board:
        records = (
            board.list_tasks(
                status=TaskStatus(status_filter) if status_filter else None,
                recipient=expert,
                limit=limit,
            )
            if board
            else []
        )
    if as_json:
        click.echo(json.dumps([record.to_json() for record in records], indent=2))
        return
    if not records:
        click.echo("no tasks")
        return
    click.echo(
        f"{'ID':<32} {'STATUS':<10} {'TO':<16} {'PRIO':<7} {'TRIES':>5} {'COST':>9}  CREATED"
    )
    for record in records:
        flag = " !" if record.needs_attention else ""
        click.echo(
            f"{record.id:<32} {record.status:<10} {record.to:<16} {record.priority:<7} "
            f"{record.attempts:>5} {record.cost_usd:>9.4f}  {_when(record.created_at)}{flag}"
        )


@click.group()
def task() -> None:
    """One task."""


@task.command("show")
@click.argument("task_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(obj: CliContext, task_id: str, as_json: bool) -> None:
    """Everything the board knows about task ID."""
    with open_board(obj) as board:
        record = board.get(task_id) if board else None
        if record is None or board is None:
            raise AgentPoolError(f"no task {task_id!r} on the board")
        waits_on = dict(board.waits_on(task_id))
    data = record.to_json() | {"waits_on": waits_on}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key == "result" or value in (None, [], {}):
            continue
        click.echo(f"{key + ':':<16} {value}")
    click.echo("\n" + (record.result or "(no result yet)"))


@click.command()
@click.argument("task_id", metavar="ID")
@click.pass_obj
def cancel(obj: CliContext, task_id: str) -> None:
    """Cancel a queued or running task (a running session is stopped)."""
    from agent_pool.control.client import DaemonNotRunningError, request
    from agent_pool.mail import Message, MessageType, new_message_id, post_message
    from agent_pool.names import check_message_id

    check_message_id(task_id, "task id")
    try:
        answer = request(obj.layout.socket_path, "cancel", id=task_id)
    except DaemonNotRunningError:
        # No daemon: leave the cancel as mail; the daemon acts on it when it starts.
        message = Message(
            id=new_message_id(),
            sender="concierge",
            to="daemon",
            type=MessageType.CANCEL,
            cancels=task_id,
        )
        post_message(obj.layout.postoffice, message)
        click.echo(f"the daemon is not running: cancel of {task_id} queued as mail {message.id}")
        return
    cascaded = answer.get("cascaded") or []
    extra = f" (and its dependants {', '.join(cascaded)})" if cascaded else ""
    click.echo(f"cancelled {task_id}{extra}")


@click.command()
@click.argument("task_id", metavar="ID")
@click.pass_obj
def retry(obj: CliContext, task_id: str) -> None:
    """Queue a failed or cancelled task again (needs the daemon)."""
    from agent_pool.control.client import request

    answer = request(obj.layout.socket_path, "retry", id=task_id)
    click.echo(f"{task_id} is {answer['status']} again")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
