"""The tools over real transports: a stdio child driven by the SDK's client, and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from starlette.applications import Starlette

from agent_pool.mail import Message, MessageType, parse_mail, post_message
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import scan_registry
from agent_pool.tools.context import ToolBudgets, ToolContext, agent_context
from agent_pool.tools.http import HttpServerError, HttpServerHandle, build_http_app, serve_http
from agent_pool.tools.registry import allowed_tool_names, qualified_name

TASK = "t-0042"
T = TypeVar("T")


@pytest.fixture
def layout(tmp_path: Path) -> PoolLayout:
    (tmp_path / "project").mkdir()
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    init_pool(layout, experts=["backend", "frontend"])
    task = Message(
        id=TASK, sender="architect", to="backend", type=MessageType.TASK, body="Add /v2."
    )
    post_message(layout.inbox("backend"), task)
    return layout


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def only_text(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


def postoffice(layout: PoolLayout) -> list[Message]:
    return [parse_mail(path.read_bytes()) for path in sorted(layout.postoffice.glob("*.md"))]


# -- stdio -------------------------------------------------------------------------


def child_env(layout: PoolLayout, session_dir: Path) -> dict[str, str]:
    env = {
        "AGENT_POOL_DIR": str(layout.root),
        "AGENT_POOL_HOME": str(layout.root.parent.parent / "home"),
        "AGENT_POOL_TASK_ID": TASK,
        "AGENT_POOL_SESSION_DIR": str(session_dir),
    }
    if "PYTHONPATH" in os.environ:  # the child imports the package the way we do
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def test_stdio_child_serves_an_experts_tools(layout: PoolLayout) -> None:
    session_dir = layout.sessions_dir / f"{TASK}-1"
    session_dir.mkdir(parents=True)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent_pool", "mcp", "--role", "expert", "--expert", "backend"],
        env=child_env(layout, session_dir),
        cwd=layout.root.parent,
    )

    async def scenario() -> dict[str, Any]:
        async with Client(params, mode="legacy") as client:
            listed = await client.list_tools()
            return {
                "names": [qualified_name(tool.name) for tool in listed.tools],
                "state": await client.call_tool("read_state", {}),
                "update": await client.call_tool("update_state", {"content": "knows v2"}),
                "bad": await client.call_tool("update_state", {"content": 5}),
                "response": await client.call_tool("send_response", {"body": "Added."}),
            }

    results = run(scenario)
    assert results["names"] == allowed_tool_names("expert")
    assert json.loads(only_text(results["state"]))["agent"] == "backend"
    assert not results["update"].is_error
    assert (layout.expert_dir("backend") / "state.md").read_text() == "knows v2\n"
    assert (session_dir / "state-updated").is_file()
    assert results["bad"].is_error
    assert only_text(results["bad"]).endswith("content must be a string, not int")
    [mail] = postoffice(layout)
    assert (mail.type, mail.sender, mail.to) == (MessageType.RESPONSE, "backend", "architect")
    assert mail.in_reply_to == TASK
    assert (session_dir / "responded").read_text() == mail.id + "\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "expert"], "--role expert needs --expert NAME"),
        (["--role", "expert", "--expert", "nobody"], "--expert nobody: no such expert"),
        (["--role", "architect", "--expert", "backend"], "--expert is only for --role expert"),
    ],
)
def test_stdio_usage_errors_print_nothing_on_stdout(
    layout: PoolLayout, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_pool", "mcp", *args],
        env=os.environ | child_env(layout, layout.sessions_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- HTTP --------------------------------------------------------------------------


def contexts(layout: PoolLayout) -> dict[str, ToolContext]:
    home = HomeLayout(layout.root.parent.parent / "home")
    registry = scan_registry(layout, declared_experts=[], shared_experts=[])

    def context(agent: str, task: str | None) -> ToolContext:
        return agent_context(layout, home, registry, agent, budgets=ToolBudgets(), task_id=task)

    return {
        "token-backend": context("backend", TASK),
        "token-architect": context("architect", None),
    }


async def with_server(
    tokens: dict[str, ToolContext], body: Callable[[HttpServerHandle], Awaitable[T]]
) -> T:
    handle = await serve_http(build_http_app(tokens.get), port=0)
    try:
        return await body(handle)
    finally:
        await handle.shutdown()


async def session_calls(url: str, token: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        listed = await client.list_tools()
        results = [await client.call_tool(name, arguments) for name, arguments in calls]
        return [qualified_name(tool.name) for tool in listed.tools], results


def test_http_serves_the_tools_of_the_tokens_role(layout: PoolLayout) -> None:
    tokens = contexts(layout)

    async def body(handle: HttpServerHandle) -> Any:
        expert = await session_calls(
            handle.url,
            "token-backend",
            [("read_state", {}), ("update_state", {"content": "over HTTP"})],
        )
        architect = await session_calls(handle.url, "token-architect", [("read_state", {})])
        return handle.port, expert, architect

    port, (names, (state, update)), (architect_names, (architect_state,)) = run(
        lambda: with_server(tokens, body)
    )
    assert names == allowed_tool_names("expert")
    assert json.loads(only_text(state))["agent"] == "backend"
    assert only_text(update) == "Replaced state.md (10 of 16384 bytes)."
    assert (layout.expert_dir("backend") / "state.md").read_text() == "over HTTP\n"
    assert architect_names == allowed_tool_names("architect")
    assert json.loads(only_text(architect_state))["agent"] == "architect"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # shut down: nothing listens any more


UPDATE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "update_state", "arguments": {"content": "forged"}},
}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic token-backend", "Bearer", "token-backend"],
)
@pytest.mark.faults
def test_http_refuses_requests_without_a_valid_token(
    layout: PoolLayout, authorization: str | None
) -> None:
    state = layout.expert_dir("backend") / "state.md"
    before = state.read_bytes()

    async def body(handle: HttpServerHandle) -> httpx2.Response:
        headers = {"Accept": "application/json, text/event-stream"}
        if authorization is not None:
            headers["Authorization"] = authorization
        async with httpx2.AsyncClient() as http:
            return await http.post(handle.url, json=UPDATE, headers=headers)

    response = run(lambda: with_server(contexts(layout), body))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert state.read_bytes() == before


@pytest.mark.faults
def test_a_revoked_token_is_refused_at_once(layout: PoolLayout) -> None:
    tokens = contexts(layout)

    async def body(handle: HttpServerHandle) -> tuple[int, int]:
        headers = {
            "Authorization": "Bearer token-backend",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        }
        async with httpx2.AsyncClient() as http:
            allowed = await http.post(handle.url, json=UPDATE, headers=headers)
            del tokens["token-backend"]  # the session ended
            again = {"name": "update_state", "arguments": {"content": "after revocation"}}
            revoked = await http.post(handle.url, json=UPDATE | {"params": again}, headers=headers)
        return allowed.status_code, revoked.status_code

    assert run(lambda: with_server(tokens, body)) == (200, 401)
    assert (layout.expert_dir("backend") / "state.md").read_text() == "forged\n"


def test_serve_http_reports_a_port_in_use() -> None:
    nobody: dict[str, ToolContext] = {}

    async def scenario() -> None:
        first = await serve_http(build_http_app(nobody.get), port=0)
        try:
            with pytest.raises(OSError, match="in use"):
                await serve_http(build_http_app(nobody.get), port=first.port)
        finally:
            await first.shutdown()

    run(scenario)


def test_serve_http_reports_an_app_that_cannot_start() -> None:
    @contextlib.asynccontextmanager
    async def failing(_app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    async def scenario() -> None:
        with pytest.raises(HttpServerError, match="failed to start"):
            await serve_http(Starlette(lifespan=failing), port=0)

    run(scenario)
