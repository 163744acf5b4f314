"""Who is calling a tool: the agent, its folders, its task and its budgets.

Every tool call gets a `ToolContext`. The stdio server builds one per session from
its command line and environment; the HTTP server resolves one per request from the
session's bearer token. Tools never look at the environment or the process: all they
know comes from here, so they can be tested on a tmp pool with a fixed clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from agent_pool.errors import AgentPoolError, MailError, UsageError
from agent_pool.mail import DEFAULT_MAX_BYTES, parse_mail
from agent_pool.names import check_message_id, check_name
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import AgentKind, PoolRegistry

if TYPE_CHECKING:
    from agent_pool.config import PoolConfig

AgentRole = Literal["expert", "architect", "researcher", "concierge"]
ROLES: Final[tuple[AgentRole, ...]] = ("expert", "architect", "researcher", "concierge")


class ToolError(AgentPoolError):
    """A tool refused its input or could not do its work; the message goes to the model."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolBudgets:
    """Size limits the tools enforce (config `[defaults]` and `[mail]`)."""

    state_max_bytes: int = 16 * 1024
    errors_max_bytes: int = 8 * 1024
    mail_max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_config(cls, config: PoolConfig) -> ToolBudgets:
        return cls(
            state_max_bytes=config.defaults.state_max_bytes,
            errors_max_bytes=config.defaults.errors_max_bytes,
            mail_max_bytes=config.mail.max_bytes,
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """The caller of a tool.

    `knowledge_dir` holds identity.md, state.md and errors.md (a shared expert's
    user-level folder). `pool_side_dir` is the agent's folder in this pool, with
    inbox/ and logs/ (a shared expert's overlay, `shared-state/<name>/`); for
    everyone else the two are the same folder. `session_dir` is the session's
    scratch folder, where tools leave markers for the daemon and the Stop hook.
    """

    layout: PoolLayout
    role: AgentRole
    agent: str
    task_id: str | None
    task_sender: str | None  # whom send_response answers
    knowledge_dir: Path
    pool_side_dir: Path
    session_dir: Path | None
    budgets: ToolBudgets
    registry: PoolRegistry
    clock: Callable[[], datetime] = field(default=_utc_now)

    @property
    def is_shared(self) -> bool:
        return self.knowledge_dir != self.pool_side_dir


def agent_context(
    layout: PoolLayout,
    home: HomeLayout,
    registry: PoolRegistry,
    agent: str,
    *,
    budgets: ToolBudgets,
    task_id: str | None = None,
    task_sender: str | None = None,
    session_dir: Path | None = None,
) -> ToolContext:
    """The context of `agent` (a role or an expert of the pool), its folders resolved.

    Without `task_sender`, the sender is read from the task's mail in the agent's
    inbox (where the daemon delivered it), when it is there.
    """
    kind = registry.resolve(check_name(agent, "agent name"))
    if task_id is not None:
        check_message_id(task_id, "task id")
    if kind is AgentKind.ROLE:
        role: AgentRole = _role(agent)
        knowledge = pool_side = layout.role_dir(agent)
    elif kind is AgentKind.SHARED_EXPERT:
        role = "expert"
        knowledge, pool_side = home.shared_expert_dir(agent), layout.shared_overlay(agent)
    else:
        role = "expert"
        knowledge = pool_side = layout.expert_dir(agent)
    if task_id is not None and task_sender is None:
        task_sender = sender_of_task(pool_side, task_id)
    return ToolContext(
        layout=layout,
        role=role,
        agent=agent,
        task_id=task_id,
        task_sender=task_sender,
        knowledge_dir=knowledge,
        pool_side_dir=pool_side,
        session_dir=session_dir,
        budgets=budgets,
        registry=registry,
    )


def sender_of_task(pool_side_dir: Path, task_id: str) -> str | None:
    """Who sent task `task_id`, from its mail in the inbox; None when it is not there."""
    path = pool_side_dir / "inbox" / f"{check_message_id(task_id, 'task id')}.md"
    try:
        return parse_mail(path.read_bytes(), source=str(path)).sender
    except (OSError, MailError):
        return None


def _role(name: str) -> AgentRole:
    role = _ROLE_OF.get(name)
    if role is None:
        raise UsageError(f"not a role: {name!r}")
    return role


_ROLE_OF: Final[dict[str, AgentRole]] = {role: role for role in ROLES}
