"""Posting mail: put a message into a folder as `<id>.md`, atomically, never twice."""

from __future__ import annotations

from pathlib import Path

from agent_pool.errors import DuplicateMailError
from agent_pool.fsutil import write_file_atomic_exclusive
from agent_pool.mail.codec import compose_mail
from agent_pool.mail.message import Message


def mail_file_name(message_id: str) -> str:
    # Safe as a path component: Message has already checked the id's pattern.
    return f"{message_id}.md"


def post_message(folder: Path, msg: Message) -> Path:
    """Write `msg` to `folder/<id>.md` and return that path.

    Readers never see a partial file, and an existing file is never overwritten: a
    second message with the same id raises `DuplicateMailError` (deciding whether an
    identical re-post is harmless is the router's job, not the writer's).
    """
    path = folder / mail_file_name(msg.id)
    try:
        write_file_atomic_exclusive(path, compose_mail(msg).encode("utf-8"))
    except FileExistsError as exc:
        raise DuplicateMailError(msg.id, path) from exc
    return path
