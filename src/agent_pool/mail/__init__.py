"""Mail: the typed message, its file format, ids and atomic posting."""

from agent_pool.mail.codec import DEFAULT_MAX_BYTES, compose_mail, parse_mail
from agent_pool.mail.ids import IdGenerator, new_message_id
from agent_pool.mail.message import (
    HEADER_KEYS,
    REQUIRED_KEYS,
    WORK_TYPES,
    Message,
    MessageType,
    Priority,
)
from agent_pool.mail.post import mail_file_name, post_message

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HEADER_KEYS",
    "REQUIRED_KEYS",
    "WORK_TYPES",
    "IdGenerator",
    "Message",
    "MessageType",
    "Priority",
    "compose_mail",
    "mail_file_name",
    "new_message_id",
    "parse_mail",
    "post_message",
]
