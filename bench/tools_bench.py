"""Pool tools ready for a session (QUALITY.md: <= 100 ms), over stdio and over HTTP.

python -m bench.tools_bench [--stdio-runs 5] [--http-runs 20]

(a) importing the `mcp` SDK in a fresh interpreter (what every stdio server pays);
(b) stdio: spawn `agent-pool mcp --role expert --expert X`, initialize, tools/list,
    read_state answered;
(c) HTTP: the app already running (as in the daemon), a fresh MCP client session:
    initialize + read_state answered. Shown three ways: a brand-new HTTP client
    (which builds an SSL context), an HTTP client reused across sessions (as a
    long-lived CLI would pool connections), and the bare protocol round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import scan_registry
from agent_pool.tools.context import ToolBudgets, agent_context
from agent_pool.tools.endpoint import tools_url
from agent_pool.tools.grants import SessionGrant, write_grant
from agent_pool.tools.http import build_http_app, serve_http
from agent_pool.tools.server_process import ToolsProcess

EXPERT = "backend"
TOKEN = "bench-token"  # noqa: S105  # a throwaway token for a local server
_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
_READ_STATE = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "read_state", "arguments": {}},
}


def startup_seconds(runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def import_seconds(module: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout))
    return statistics.median(times)


async def stdio_ready(layout: PoolLayout, home: Path) -> float:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent_pool", "mcp", "--role", "expert", "--expert", EXPERT],
        env={"AGENT_POOL_DIR": str(layout.root), "AGENT_POOL_HOME": str(home)}
        | ({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
    )
    began = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        result = await client.call_tool("read_state", {})
        elapsed = time.perf_counter() - began
    assert not result.is_error
    return elapsed


async def http_figures(layout: PoolLayout, home: Path, runs: int) -> dict[str, float]:
    registry = scan_registry(layout, declared_experts=[], shared_experts=[])
    ctx = agent_context(
        layout, HomeLayout(home), registry, EXPERT, budgets=ToolBudgets(), task_id=None
    )
    handle = await serve_http(build_http_app({TOKEN: ctx}.get))
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def fresh_client() -> None:
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(handle.url, http_client=http), mode="legacy") as client,
        ):
            assert not (await client.call_tool("read_state", {})).is_error

    try:
        async with httpx2.AsyncClient(headers=headers) as shared:

            async def pooled_client() -> None:
                transport = streamable_http_client(handle.url, http_client=shared)
                async with Client(transport, mode="legacy") as client:
                    assert not (await client.call_tool("read_state", {})).is_error

            async def raw_protocol() -> None:
                wire = {"Accept": "application/json, text/event-stream"}
                assert (await shared.post(handle.url, json=_INIT, headers=wire)).is_success
                wire["MCP-Protocol-Version"] = "2025-06-18"
                assert (await shared.post(handle.url, json=_READ_STATE, headers=wire)).is_success

            return {
                "fresh_client_ms": await median_ms(fresh_client, runs),
                "pooled_client_ms": await median_ms(pooled_client, runs),
                "raw_protocol_ms": await median_ms(raw_protocol, runs),
            }
    finally:
        await handle.shutdown()


async def median_ms(measure: Callable[[], Awaitable[None]], runs: int) -> float:
    await measure()  # warm-up: first-use imports and connections
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await measure()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


async def child_ready_ms(layout: PoolLayout, home: Path, runs: int) -> float:
    """Against the real tools process the daemon runs: a fresh MCP client with a
    session's grant → initialize + `read_state` answered, median in ms."""
    registry = scan_registry(layout, declared_experts=[], shared_experts=[])
    ctx = agent_context(
        layout, HomeLayout(home), registry, EXPERT, budgets=ToolBudgets(), task_id=None
    )
    write_grant(layout, TOKEN, SessionGrant.of(layout, ctx, HomeLayout(home)))
    child = ToolsProcess(layout.root, on_restart=lambda *_: None, on_error=lambda *_: None)
    port = await child.start()
    url = tools_url(port)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def fresh_client() -> None:
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
        ):
            assert not (await client.call_tool("read_state", {})).is_error

    try:
        return await median_ms(fresh_client, runs)
    finally:
        await child.close()


def tools_ready(runs: int) -> dict[str, float]:
    """Pool tools ready for a new session (what every session does first), in ms, for
    `python -m bench`: against the daemon's real tools process."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "project").mkdir()
        layout = PoolLayout(root / "project" / ".agent-pool")
        init_pool(layout, experts=[EXPERT])
        return {"fresh_client_ms": asyncio.run(child_ready_ms(layout, root / "home", runs))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tools_bench")
    parser.add_argument("--stdio-runs", type=int, default=5)
    parser.add_argument("--http-runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "project").mkdir()
        layout = PoolLayout(root / "project" / ".agent-pool")
        init_pool(layout, experts=[EXPERT])
        home = root / "home"
        bare = startup_seconds(args.stdio_runs)
        sdk = import_seconds("mcp", args.stdio_runs)
        print(
            f"(a) import mcp: {sdk * 1000:.0f} ms median "
            f"(bare interpreter start {bare * 1000:.0f} ms)"
        )
        stdio = [asyncio.run(stdio_ready(layout, home)) for _ in range(args.stdio_runs)]
        print(
            f"(b) stdio spawn -> initialize -> tools/list -> read_state: "
            f"{statistics.median(stdio) * 1000:.0f} ms median of {args.stdio_runs} "
            f"(min {min(stdio) * 1000:.0f}, max {max(stdio) * 1000:.0f})"
        )
        http = asyncio.run(http_figures(layout, home, args.http_runs))
        print(
            f"(c) HTTP, app running, initialize + read_state, median of {args.http_runs}: "
            f"new HTTP client {http['fresh_client_ms']:.1f} ms; "
            f"reused HTTP client {http['pooled_client_ms']:.1f} ms; "
            f"raw protocol {http['raw_protocol_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
