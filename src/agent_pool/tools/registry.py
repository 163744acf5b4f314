"""The one list of the pool's MCP tools: name, description, parameters, roles, code.

The MCP server registers a role's tools from here, and the daemon builds a session's
`--allowedTools` from here (`allowed_tool_names`), so what a session is offered and
what it may call can never drift apart. Declaring a tool is one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent_pool.tools import history, knowledge, messaging
from agent_pool.tools.context import ROLES, AgentRole

SERVER_NAME: Final = "agent-pool"

ToolResult = str | dict[str, object]
# Called as fn(ctx, **arguments); arguments arrive unchecked and are validated inside.
ToolFn = Callable[..., ToolResult]


@dataclass(frozen=True, slots=True)
class Param:
    """A string parameter (every pool tool takes text) and what the model should pass."""

    name: str
    description: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    params: tuple[Param, ...]
    roles: frozenset[AgentRole]
    fn: ToolFn


# Roles that run headless sessions with a task, knowledge files and logs.
_SESSION_ROLES: Final[frozenset[AgentRole]] = frozenset({"expert", "architect", "researcher"})
_EXPERT: Final[frozenset[AgentRole]] = frozenset({"expert"})

_KNOWLEDGE_TOOLS: Final = (
    ToolSpec(
        "read_state",
        "Your knowledge files as JSON: identity, state, overlay_state (a shared expert's "
        "knowledge of this project, else null) and errors. They are already in your prompt; "
        "call this to re-read them after a change.",
        (),
        _SESSION_ROLES,
        knowledge.read_state,
    ),
    ToolSpec(
        "update_state",
        "Replace your state.md (for a shared expert: this project's overlay state) with "
        "`content`: what is true now, open threads, facts worth keeping. It must fit the "
        "state budget (state_max_bytes in read_state); an oversize state is refused, not cut.",
        (Param("content", "The whole new state.md, in Markdown."),),
        _SESSION_ROLES,
        knowledge.update_state,
    ),
    ToolSpec(
        "append_error",
        "Record a mistake or trap to avoid next time, as a dated entry in errors.md.",
        (Param("entry", "What went wrong and how to avoid it (up to 4 KiB)."),),
        _SESSION_ROLES,
        knowledge.append_error,
    ),
    ToolSpec(
        "flag_promotion",
        "Flag a recurring pattern as a candidate for your identity.md; curation promotes "
        "patterns flagged repeatedly. Returns how often this pattern has been flagged.",
        (Param("pattern", "The pattern, stated in one or two sentences."),),
        _EXPERT,
        knowledge.flag_promotion,
    ),
)

_MESSAGING_TOOLS: Final = (
    ToolSpec(
        "send_response",
        "Answer the current task: the reply goes to whoever sent it. Call it once, with "
        "the full answer (what you did or found).",
        (Param("body", "The answer, in Markdown."),),
        _SESSION_ROLES,
        messaging.send_response,
    ),
    ToolSpec(
        "send_notify",
        "Leave a notice for another expert or role of the pool; it is shown in their next "
        "session and wakes nobody.",
        (
            Param("to", "The expert or role to notify."),
            Param("body", "The notice, in Markdown."),
        ),
        _SESSION_ROLES,
        messaging.send_notify,
    ),
    ToolSpec(
        "signal_handoff",
        "Near your context limit: hand the task over to a fresh session and stop. Update "
        "your state first; the note should say what is done and what is left.",
        (Param("note", "What is done, what is left, and where to pick up."),),
        _SESSION_ROLES,
        messaging.signal_handoff,
    ),
)

_HISTORY_TOOLS: Final = (
    ToolSpec(
        "recall",
        "The transcript of one of your past sessions (archived ones included), by task id; "
        "long transcripts are cut at 32 KiB.",
        (Param("task_id", "The task id, as found with search_index."),),
        _SESSION_ROLES,
        history.recall,
    ),
    ToolSpec(
        "search_index",
        "Search your run index (one row per past task: when, task id, sender, status, cost, "
        "summary) for rows containing `query`, case-insensitive; an empty query lists the latest.",
        (Param("query", "Text to look for, e.g. a word of the task or a task id."),),
        _SESSION_ROLES,
        history.search_index,
    ),
)

# Each role's own tools (PRODUCT.md section 5) are declared here by the issues that
# build them, one entry per tool, with its roles; nothing else needs to change.
_ARCHITECT_TOOLS: Final[tuple[ToolSpec, ...]] = ()  # define_contract, send_task, verify_result...
_CONCIERGE_TOOLS: Final[tuple[ToolSpec, ...]] = ()  # ask_expert, dispatch, collect, inbox...
_RESEARCHER_TOOLS: Final[tuple[ToolSpec, ...]] = ()  # list_experts, read_expert_state...

TOOLS: Final[tuple[ToolSpec, ...]] = (
    _KNOWLEDGE_TOOLS
    + _MESSAGING_TOOLS
    + _HISTORY_TOOLS
    + _ARCHITECT_TOOLS
    + _CONCIERGE_TOOLS
    + _RESEARCHER_TOOLS
)


def tools_for(role: str) -> list[ToolSpec]:
    """The tools a session of `role` gets, in declaration order."""
    if role not in ROLES:
        raise ValueError(f"not a role: {role!r} (expected one of: {', '.join(ROLES)})")
    return [spec for spec in TOOLS if role in spec.roles]


def allowed_tool_names(role: str) -> list[str]:
    """`mcp__agent-pool__<tool>` for each of the role's tools: its `--allowedTools` entries."""
    return [qualified_name(spec.name) for spec in tools_for(role)]


def qualified_name(tool: str) -> str:
    return f"mcp__{SERVER_NAME}__{tool}"
