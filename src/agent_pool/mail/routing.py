"""Routing decisions (pure): what happens to one parsed mail, given who exists.

The postoffice (I/O) asks this module, then acts. Keeping the rules here means every
routing rule is unit-tested without files or a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent_pool.mail.message import WORK_TYPES, Message, MessageType
from agent_pool.pool.registry import PoolRegistry

# Cancel mail may be addressed to the daemon itself: it is consumed, never delivered.
DAEMON_ADDRESS = "daemon"


class Action(StrEnum):
    DELIVER_AND_QUEUE = "deliver-and-queue"  # task, question: into the inbox and onto the board
    DELIVER = "deliver"  # response, notify, handoff: into the inbox; wakes nobody
    CONSUME_CANCEL = "consume-cancel"  # the daemon acts on it; nothing is delivered
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None  # why, for dead letters


def decide(message: Message, registry: PoolRegistry) -> Decision:
    if registry.kind_of(message.sender) is None and message.sender != DAEMON_ADDRESS:
        return Decision(Action.DEAD_LETTER, f"unknown sender {message.sender!r}")
    if message.type is MessageType.CANCEL:
        return Decision(Action.CONSUME_CANCEL)
    if registry.kind_of(message.to) is None:
        known = ", ".join(registry.names())
        return Decision(Action.DEAD_LETTER, f"unknown recipient {message.to!r} (known: {known})")
    if message.type in WORK_TYPES:
        return Decision(Action.DELIVER_AND_QUEUE)
    return Decision(Action.DELIVER)
