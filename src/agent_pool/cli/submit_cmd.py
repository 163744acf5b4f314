"""`agent-pool submit`: post a task or question into the pool's postoffice."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError, MailError, UsageError


@click.command()
@click.option("--to", "to", required=True, metavar="NAME", help="An expert, shared expert or role.")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["task", "question"]),
    default="task",
    show_default=True,
)
@click.option("--id", "message_id", metavar="ID", help="Message id (default: a new unique id).")
@click.option("--from", "sender", default="concierge", show_default=True, metavar="NAME")
@click.option("--depends-on", multiple=True, metavar="ID", help="A task that must complete first.")
@click.option(
    "--priority",
    type=click.Choice(["low", "normal", "high", "urgent"]),
    default="normal",
    show_default=True,
)
@click.option("--contract", "contracts", multiple=True, metavar="ID", help="A contract to follow.")
@click.option(
    "-f", "--file", "body_file", type=click.Path(path_type=Path, dir_okay=False), default=None
)
@click.option("--wait", is_flag=True, help="Wait for the task to end; print its result.")
@click.argument("body", required=False)
@click.pass_obj
def submit(
    obj: CliContext,
    to: str,
    kind: str,
    message_id: str | None,
    sender: str,
    depends_on: tuple[str, ...],
    priority: str,
    contracts: tuple[str, ...],
    body_file: Path | None,
    wait: bool,
    body: str | None,
) -> None:
    """Submit a task or question (BODY, -f FILE, or - for stdin). Prints the message id.

    Works with no daemon running: the mail waits in the postoffice until one starts.
    """
    from agent_pool.mail import (
        Message,
        MessageType,
        Priority,
        compose_mail,
        new_message_id,
        post_message,
    )
    from agent_pool.names import check_name

    text = _read_body(body, body_file)
    registry = obj.registry
    registry.resolve(check_name(to, "recipient"))
    if registry.kind_of(check_name(sender, "sender")) is None:
        raise UsageError(f"unknown sender {sender!r} (known: {', '.join(registry.names())})")
    try:
        message = Message(
            id=message_id or new_message_id(),
            sender=sender,
            to=to,
            type=MessageType(kind),
            depends_on=depends_on,
            priority=Priority(priority),
            contracts=contracts,
            timestamp=datetime.now(UTC),
            body=text,
        )
    except MailError as exc:
        # The user typed these values on the command line: a usage error, not a failure.
        raise UsageError(exc.message) from exc
    size = len(compose_mail(message).encode("utf-8"))
    limit = obj.config.mail.max_bytes
    if size > limit:
        raise UsageError(f"message is {size} bytes, over the limit of {limit} ([mail] max_bytes)")
    if wait:
        from agent_pool.control.client import request

        request(obj.layout.socket_path, "ping")  # fail before posting if no daemon runs
    post_message(obj.layout.postoffice, message)
    click.echo(message.id)
    if wait:
        _wait_for(obj, message.id)


def _wait_for(obj: CliContext, task_id: str) -> None:
    """Poll the board (read-only) until the task ends; its result is printed."""
    from agent_pool.board import TERMINAL, TaskStatus
    from agent_pool.cli.task_cmds import open_board

    while True:
        with open_board(obj) as board:
            record = board.get(task_id) if board else None
        if record is not None and record.status in TERMINAL:
            break
        time.sleep(0.1)
    if record.result:
        click.echo(record.result)
    if record.status is not TaskStatus.COMPLETED:
        reason = record.failure_reason or "no reason recorded"
        raise AgentPoolError(f"task {task_id} {record.status}: {reason}")


def _read_body(body: str | None, body_file: Path | None) -> str:
    if body_file is not None and body is not None:
        raise UsageError("give the body once: as an argument, with -f FILE, or - for stdin")
    if body_file is not None:
        try:
            return body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {body_file}: {exc}") from exc
    if body == "-":
        return sys.stdin.read()
    if body is None:
        raise UsageError("no body: give it as an argument, with -f FILE, or - for stdin")
    return body
