from __future__ import annotations

import pytest

from agent_pool.mail import Message, MessageType
from agent_pool.mail.routing import Action, decide
from agent_pool.pool.registry import PoolRegistry

REGISTRY = PoolRegistry(experts=frozenset({"backend"}), shared_experts=frozenset({"security"}))


def mail(**fields: object) -> Message:
    values: dict[str, object] = {"id": "m-1", "sender": "concierge", "to": "backend"}
    values.update(fields)
    values.setdefault("type", MessageType.TASK)
    values.setdefault("body", "work")
    return Message(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "action"),
    [
        (mail(), Action.DELIVER_AND_QUEUE),
        (mail(type=MessageType.QUESTION), Action.DELIVER_AND_QUEUE),
        (mail(to="security"), Action.DELIVER_AND_QUEUE),
        (mail(to="architect"), Action.DELIVER_AND_QUEUE),
        (
            mail(type=MessageType.RESPONSE, in_reply_to="t-1", sender="backend", to="concierge"),
            Action.DELIVER,
        ),
        (mail(type=MessageType.NOTIFY, to="security"), Action.DELIVER),
        (mail(type=MessageType.CANCEL, cancels="t-1", to="daemon", body=""), Action.CONSUME_CANCEL),
    ],
)
def test_routing_actions(message: Message, action: Action) -> None:
    assert decide(message, REGISTRY).action is action


def test_unknown_recipient_and_sender_are_dead_lettered_with_a_reason() -> None:
    to_nobody = decide(mail(to="nobody"), REGISTRY)
    assert to_nobody.action is Action.DEAD_LETTER
    assert to_nobody.reason is not None
    assert "unknown recipient 'nobody'" in to_nobody.reason
    from_nobody = decide(mail(sender="ghost"), REGISTRY)
    assert from_nobody.reason == "unknown sender 'ghost'"


def test_dead_letter_redelivery_recognises_the_routers_wording() -> None:
    from agent_pool.daemon.dead_letters import unknown_name_prefixes  # noqa: PLC0415

    recipient, sender = unknown_name_prefixes("nobody")
    to_nobody = decide(mail(to="nobody"), REGISTRY).reason or ""
    from_nobody = decide(mail(sender="nobody"), REGISTRY).reason or ""
    assert to_nobody.startswith(recipient)
    assert from_nobody.startswith(sender)
