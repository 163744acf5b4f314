"""`agent-pool ask | inbox`: the user's side of the read path (mail to the concierge)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.board import StoredMessage

USER_SIDE = "concierge"


@click.command()
@click.argument("name")
@click.argument("question")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the answer.",
)
@click.pass_obj
def ask(obj: CliContext, name: str, question: str, timeout: float) -> None:
    """Ask expert NAME a QUESTION, wait for the answer and print it."""
    from agent_pool.control.client import request
    from agent_pool.mail import Message, MessageType, new_message_id, post_message
    from agent_pool.names import check_name

    obj.registry.resolve(check_name(name, "expert name"))
    request(obj.layout.socket_path, "ping")  # no daemon: nobody would ever answer
    message = Message(
        id=new_message_id(),
        sender=USER_SIDE,
        to=name,
        type=MessageType.QUESTION,
        body=question,
        timestamp=datetime.now(UTC),
    )
    post_message(obj.layout.postoffice, message)
    answer = _wait_for_answer(obj, message.id, timeout)
    click.echo(answer.body.rstrip("\n"))


def _wait_for_answer(obj: CliContext, question_id: str, timeout: float) -> StoredMessage:
    from agent_pool.board import TaskStatus
    from agent_pool.cli.task_cmds import open_board

    deadline = time.monotonic() + timeout
    while True:
        with open_board(obj) as board:
            if board is not None:
                for stored in board.messages_to(USER_SIDE, types={"response"}, limit=200):
                    if stored.in_reply_to == question_id:
                        return stored
                record = board.get(question_id)
                if record is not None and record.status in (
                    TaskStatus.FAILED,
                    TaskStatus.CANCELLED,
                ):
                    reason = record.failure_reason or "no reason recorded"
                    raise AgentPoolError(f"question {question_id} {record.status}: {reason}")
        if time.monotonic() > deadline:
            raise AgentPoolError(
                f"no answer to {question_id} within {timeout:g} s; it stays on the board "
                f"(`agent-pool task show {question_id}`, `agent-pool inbox` later)"
            )
        time.sleep(0.1)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_obj
def inbox(obj: CliContext, as_json: bool, limit: int) -> None:
    """Responses and notices addressed to you (the concierge), newest last."""
    from agent_pool.cli.task_cmds import open_board

    with open_board(obj) as board:
        mail = (
            board.messages_to(USER_SIDE, types={"response", "notify"}, limit=limit) if board else []
        )
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": stored.id,
                        "from": stored.sender,
                        "type": str(stored.type),
                        "in_reply_to": stored.in_reply_to,
                        "routed_at": datetime.fromtimestamp(stored.routed_at, UTC).isoformat(),
                        "body": stored.body,
                    }
                    for stored in mail
                ],
                indent=2,
            )
        )
        return
    if not mail:
        click.echo("your inbox is empty")
        return
    for stored in mail:
        when = datetime.fromtimestamp(stored.routed_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        about = f" re {stored.in_reply_to}" if stored.in_reply_to else ""
        click.echo(f"--- {stored.id} from {stored.sender} ({stored.type}{about}) {when} UTC")
        click.echo(stored.body.rstrip("\n"))
