"""Messaging tools: answer the current task, leave a notice, hand the task over.

Mail goes into the postoffice like any other mail (atomic, never overwritten); the
daemon routes it. Markers in the session folder tell the daemon and the Stop hook
what the session did: `responded` (holding the response id) and `handoff.md`.

One response per task: a second `send_response` is refused (naming the first),
because the requester may already be acting on the first answer; anything to add
goes in a notice.
"""

from __future__ import annotations

from typing import Final

from agent_pool.errors import MailError, UnknownRecipientError
from agent_pool.mail import Message, MessageType, compose_mail, new_message_id, post_message
from agent_pool.tools.context import ToolContext, ToolError
from agent_pool.tools.files import KIB, name_arg, text_arg, write_marker

RESPONDED_MARKER: Final = "responded"
HANDOFF_NAME: Final = "handoff.md"
HANDOFF_NOTE_MAX_BYTES: Final = 16 * KIB


def send_response(ctx: ToolContext, body: object) -> str:
    """Answer the current task's sender; `in-reply-to` is the task id."""
    task_id, sender = _current_task(ctx)
    text = text_arg(body, "body", max_bytes=ctx.budgets.mail_max_bytes)
    earlier = _earlier_response(ctx)
    if earlier is not None:
        raise ToolError(
            f"task {task_id} was already answered (response {earlier}); a task gets one "
            "response: use send_notify for anything to add"
        )
    message = _post(
        ctx,
        to=sender,
        kind=MessageType.RESPONSE,
        body=text,
        in_reply_to=task_id,
    )
    write_marker(ctx, RESPONDED_MARKER, message.id + "\n")
    return f"Response {message.id} sent to {sender} (in reply to {task_id})."


def send_notify(ctx: ToolContext, to: object, body: object) -> str:
    """A notice for another agent of the pool, shown in its next session."""
    recipient = name_arg(to, "to")
    text = text_arg(body, "body", max_bytes=ctx.budgets.mail_max_bytes)
    if recipient == ctx.agent:
        raise ToolError("to names yourself: a notice goes to another expert or role of the pool")
    try:
        ctx.registry.resolve(recipient)
    except UnknownRecipientError as exc:
        raise ToolError(exc.message) from None
    message = _post(ctx, to=recipient, kind=MessageType.NOTIFY, body=text)
    return (
        f"Notice {message.id} posted to {recipient}; it is shown in their next session "
        "(it does not wake them)."
    )


def signal_handoff(ctx: ToolContext, note: object) -> str:
    """Record a handoff note; the daemon gives the task to a fresh session."""
    task_id, _ = _current_task(ctx)
    text = text_arg(note, "note", max_bytes=HANDOFF_NOTE_MAX_BYTES)
    if ctx.session_dir is None:
        raise ToolError("no session folder: a handoff only works in a session the daemon runs")
    earlier = _earlier_response(ctx)
    if earlier is not None:
        raise ToolError(f"task {task_id} is already answered (response {earlier}): just finish")
    write_marker(ctx, HANDOFF_NAME, text.strip() + "\n")
    return (
        "Handoff recorded. Stop now: end your turn without calling any more tools. "
        f"Task {task_id} goes to a fresh session, which gets your note."
    )


def _current_task(ctx: ToolContext) -> tuple[str, str]:
    if ctx.task_id is None:
        raise ToolError("this session has no current task")
    if ctx.task_sender is None:
        raise ToolError(f"the sender of task {ctx.task_id} is unknown (its mail is gone)")
    return ctx.task_id, ctx.task_sender


def _earlier_response(ctx: ToolContext) -> str | None:
    if ctx.session_dir is None:
        return None
    try:
        return (ctx.session_dir / RESPONDED_MARKER).read_text(encoding="utf-8").strip() or "?"
    except FileNotFoundError:
        return None


def _post(
    ctx: ToolContext, *, to: str, kind: MessageType, body: str, in_reply_to: str | None = None
) -> Message:
    try:
        message = Message(
            id=new_message_id(),
            sender=ctx.agent,
            to=to,
            type=kind,
            body=body,
            in_reply_to=in_reply_to,
            timestamp=ctx.clock(),
        )
    except MailError as exc:
        raise ToolError(exc.message) from None
    size = len(compose_mail(message).encode("utf-8"))
    if size > ctx.budgets.mail_max_bytes:
        raise ToolError(
            f"the mail would be {size} bytes; the limit is {ctx.budgets.mail_max_bytes}"
        )
    post_message(ctx.layout.postoffice, message)
    return message
