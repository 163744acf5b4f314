"""The tool registry: one declaration per tool, and the names each role may call."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest

from agent_pool.cli.mcp_cmd import ROLE_CHOICES
from agent_pool.tools.context import ROLES, ToolContext
from agent_pool.tools.registry import (
    SERVER_NAME,
    TOOLS,
    allowed_tool_names,
    qualified_name,
    tools_for,
)

EXPERT_TOOLS = [
    "read_state",
    "update_state",
    "append_error",
    "flag_promotion",
    "send_response",
    "send_notify",
    "recall",
    "search_index",
    "signal_handoff",
]
# The parameters INTERFACE.md promises for each expert tool.
EXPERT_PARAMS = {
    "read_state": [],
    "update_state": ["content"],
    "append_error": ["entry"],
    "flag_promotion": ["pattern"],
    "send_response": ["body"],
    "send_notify": ["to", "body"],
    "recall": ["task_id"],
    "search_index": ["query"],
    "signal_handoff": ["note"],
}


def _no_context(_token: str | None) -> ToolContext | None:
    return None


def test_an_expert_gets_exactly_the_documented_tools() -> None:
    specs = tools_for("expert")
    assert sorted(spec.name for spec in specs) == sorted(EXPERT_TOOLS)
    assert {spec.name: [p.name for p in spec.params] for spec in specs} == EXPERT_PARAMS


def test_names_are_unique_and_valid_mcp_tool_names() -> None:
    names = [spec.name for spec in TOOLS]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name), name


def test_every_tool_has_a_description_and_a_known_role() -> None:
    for spec in TOOLS:
        assert spec.description.strip(), spec.name
        assert spec.roles, spec.name
        assert spec.roles <= set(ROLES), spec.name
        for param in spec.params:
            assert param.description.strip(), f"{spec.name}.{param.name}"


def test_declared_parameters_match_the_implementation() -> None:
    # The registry is the schema; the function must take exactly those arguments.
    for spec in TOOLS:
        signature = inspect.signature(spec.fn)
        names = list(signature.parameters)
        assert names[0] == "ctx", spec.name
        assert names[1:] == [param.name for param in spec.params], spec.name


def test_allowed_names_are_the_qualified_tool_names() -> None:
    assert SERVER_NAME == "agent-pool"
    assert allowed_tool_names("expert") == [
        f"mcp__agent-pool__{spec.name}" for spec in tools_for("expert")
    ]
    assert qualified_name("recall") == "mcp__agent-pool__recall"
    assert "mcp__agent-pool__flag_promotion" not in allowed_tool_names("architect")
    assert "mcp__agent-pool__send_response" in allowed_tool_names("architect")


@pytest.mark.parametrize("role", ROLES)
def test_allowed_names_match_what_the_role_server_lists(role: str) -> None:
    from agent_pool.tools.server import build_server  # noqa: PLC0415  # imports the SDK

    server = build_server(role, _no_context)
    listed = asyncio.run(server.list_tools())
    assert [qualified_name(tool.name) for tool in listed] == allowed_tool_names(role)
    assert server.name == SERVER_NAME
    for tool in listed:
        spec = next(spec for spec in TOOLS if spec.name == tool.name)
        properties = tool.input_schema.get("properties", {})
        assert list(properties) == [param.name for param in spec.params]
        assert all(item["type"] == "string" for item in properties.values())
        assert sorted(tool.input_schema.get("required", [])) == sorted(properties)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="not a role: 'boss'"):
        tools_for("boss")


def test_the_cli_offers_every_role() -> None:
    assert ROLE_CHOICES == ROLES
