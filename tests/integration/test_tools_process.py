"""The tools process: the pool tools served by a child of the daemon, tied to it by a pipe.

Requests go over real loopback HTTP to a real child; tokens are real grant files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from agent_pool.errors import AgentPoolError, InvalidNameError
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import scan_registry
from agent_pool.tools.context import ToolBudgets, agent_context
from agent_pool.tools.endpoint import tools_url
from agent_pool.tools.grants import (
    SessionGrant,
    revoke_grant,
    token_digest,
    write_grant,
)
from agent_pool.tools.server_process import SERVER_MODULE, ToolsProcess
from tests.harness import EventCollector, Pool, wait_until

T = TypeVar("T")
SDK_PACKAGES = ("mcp", "starlette", "uvicorn")
# Run exactly what `agent-pool start` runs, and say which SDK modules were ever loaded.
RECORDING_DAEMON = f"""
import atexit, json, runpy, sys

out = sys.argv[1]

def record():
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {SDK_PACKAGES!r})
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(loaded, handle)

atexit.register(record)
sys.argv = ["agent-pool", "start"]
runpy.run_module("agent_pool", run_name="__main__", alter_sys=True)
"""


# -- helpers -------------------------------------------------------------------------


def home_of(layout: PoolLayout) -> HomeLayout:
    return HomeLayout(layout.root.parent.parent / "home")


def grant(
    layout: PoolLayout, agent: str, *, token: str | None = None, task: str | None = None
) -> str:
    """Write a grant for `agent` as the daemon would (for `task`'s first session, if
    given); returns its token."""
    token = token or os.urandom(16).hex()
    registry = scan_registry(layout, declared_experts=[], shared_experts=[])
    ctx = agent_context(
        layout,
        home_of(layout),
        registry,
        agent,
        budgets=ToolBudgets(),
        task_id=task,
        task_sender="architect" if task else None,
        session_dir=layout.sessions_dir / f"{task}-1" if task else None,
    )
    write_grant(layout, token, SessionGrant.of(layout, ctx, home_of(layout)))
    return token


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call_tool(
    url: str, token: str, name: str = "read_state", arguments: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One stateless MCP `tools/call`: (HTTP status, the tool's text parsed as JSON if it is)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}},
    }
    request = urllib.request.Request(  # noqa: S310  # a loopback http URL we built
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )
    try:
        with _NO_PROXY.open(request, timeout=20) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    text = payload["result"]["content"][0]["text"]
    try:
        return 200, json.loads(text)
    except ValueError:
        return 200, text


def tools_processes(layout: PoolLayout) -> list[psutil.Process]:
    """Live tools processes serving this pool (found by their command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (
            SERVER_MODULE in cmdline
            and str(layout.root) in cmdline
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc)
    return found


def the_tools_process(layout: PoolLayout) -> psutil.Process:
    [proc] = wait_until(lambda: tools_processes(layout), 20, "the tools process")
    return proc


def tools_port(layout: PoolLayout) -> int:
    return int(layout.tools_port_file.read_text(encoding="ascii"))


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=45))


@pytest.fixture
def served(pool: Pool) -> Iterator[tuple[PoolLayout, str]]:
    """A tools process of the pool's own, without a daemon: (layout, url)."""
    loop = asyncio.new_event_loop()
    errors: list[str] = []
    process = ToolsProcess(pool.layout.root, on_restart=lambda *_: None, on_error=errors.append)
    port = loop.run_until_complete(process.start())
    try:
        yield pool.layout, tools_url(port)
    finally:
        loop.run_until_complete(process.close())
        loop.close()
    assert errors == []


# -- the daemon side ---------------------------------------------------------------


def test_the_daemon_serves_the_tools_without_ever_loading_the_sdk(pool: Pool) -> None:
    modules_file = pool.layout.root.parent / "daemon-modules.json"
    log = pool.layout.root.parent / "daemon-recorded.out"
    with log.open("wb") as handle:
        pool.daemon = subprocess.Popen(
            [sys.executable, "-c", RECORDING_DAEMON, str(modules_file)],
            cwd=pool.cli.cwd,
            env=pool.cli.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: pool.layout.tools_port_file.exists() and tools_processes(pool.layout))
    task_id = pool.post("backend", "a task, run with the tools on offer")
    pool.wait_status(task_id, "completed")
    token = grant(pool.layout, "backend")
    status, state = call_tool(tools_url(tools_port(pool.layout)), token)
    assert (status, state["agent"]) == (200, "backend")
    assert pool.stop() == 0, log.read_text()
    assert json.loads(modules_file.read_text()) == []


def test_a_killed_tools_process_comes_back_on_the_same_port(pool: Pool) -> None:
    pool.start()
    first = the_tools_process(pool.layout)
    port = tools_port(pool.layout)
    token = grant(pool.layout, "frontend")
    assert call_tool(tools_url(port), token)[0] == 200
    events = EventCollector(pool)
    try:
        first.kill()
        restarted = events.wait_for(lambda e: e["type"] == "tools.restarted", 30)
    finally:
        events.close()
    assert (restarted["port"], restarted["previous_port"]) == (port, port)
    assert restarted["exit_code"] == -signal.SIGKILL
    assert the_tools_process(pool.layout).pid != first.pid
    assert tools_port(pool.layout) == port
    status, state = call_tool(tools_url(port), token)
    assert (status, state["agent"]) == (200, "frontend")


def test_no_tools_process_outlives_its_daemon(pool: Pool) -> None:
    pool.start()
    the_tools_process(pool.layout)
    pool.stop()
    assert tools_processes(pool.layout) == []
    pool.start()
    the_tools_process(pool.layout)
    pool.kill()  # no shutdown: the child sees its stdin close and leaves by itself
    wait_until(lambda: not tools_processes(pool.layout), 20, "the orphaned tools process to exit")


def test_an_adopted_session_keeps_its_token_across_a_daemon_crash(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: hang")
    active = pool.wait_status(task_id, "active")
    mcp_config = pool.layout.sessions_dir / f"{task_id}-{active.attempts}" / "mcp.json"
    wait_until(mcp_config.exists, 10, "the session's MCP config")
    server = json.loads(mcp_config.read_text())["mcpServers"]["agent-pool"]
    url, token = server["url"], server["headers"]["Authorization"].removeprefix("Bearer ")
    assert call_tool(url, token)[0] == 200
    pool.kill()
    wait_until(lambda: not tools_processes(pool.layout), 20, "the old tools process to exit")
    pool.start()
    status, state = call_tool(url, token)  # the URL in the session's config still works
    assert (status, state["agent"]) == (200, "backend")
    assert pool.cli.run("cancel", task_id).code == 0
    pool.wait_status(task_id, "cancelled")
    wait_until(lambda: call_tool(url, token)[0] == 401, 10, "the token to be revoked")


def test_grants_of_sessions_no_longer_running_are_swept_at_start(pool: Pool) -> None:
    pool.layout.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale = grant(pool.layout, "backend")
    stray = pool.layout.tokens_dir / "not-a-digest.json"
    stray.write_bytes(pool.layout.token_file(token_digest(stale)).read_bytes())
    pool.start()
    assert sorted(pool.layout.tokens_dir.iterdir()) == []
    assert call_tool(tools_url(tools_port(pool.layout)), stale)[0] == 401


# -- the tools process -------------------------------------------------------------


def test_a_revoked_token_is_refused_at_the_next_request(served: tuple[PoolLayout, str]) -> None:
    layout, url = served
    token = grant(layout, "backend")
    assert call_tool(url, token)[1]["agent"] == "backend"
    grant(layout, "architect", token=token)  # the same token, granted anew
    assert call_tool(url, token)[1]["agent"] == "architect"
    revoke_grant(layout, token)
    assert call_tool(url, token) == (401, None)
    again = {"content": "after revocation"}
    assert call_tool(url, token, "update_state", again) == (401, None)
    assert "after revocation" not in (layout.role_dir("architect") / "state.md").read_text()


def test_tool_markers_land_in_the_granted_session_folder(served: tuple[PoolLayout, str]) -> None:
    layout, url = served
    session = layout.sessions_dir / "t-0042-1"
    session.mkdir(parents=True)
    token = grant(layout, "backend", task="t-0042")
    status, text = call_tool(url, token, "update_state", {"content": "knows v2"})
    assert (status, text) == (200, "Replaced state.md (9 of 16384 bytes).")
    assert (session / "state-updated").is_file()
    assert call_tool(url, token, "send_response", {"body": "Added."})[0] == 200
    [response] = layout.postoffice.glob("*.md")
    assert (session / "responded").read_text() == response.stem + "\n"


def _valid_grant(layout: PoolLayout) -> dict[str, Any]:
    token = grant(layout, "backend")
    path = layout.token_file(token_digest(token))
    data: dict[str, Any] = json.loads(path.read_bytes())
    path.unlink()
    return data


BAD_GRANTS: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("not JSON", lambda _: b"{not json"),
    ("a JSON list", lambda _: b"[]"),
    ("another version", lambda g: g | {"version": 2}),
    ("an agent that is a path", lambda g: g | {"agent": "../architect"}),
    ("an agent not in the registry", lambda g: g | {"agent": "nobody"}),
    ("a session folder that climbs", lambda g: g | {"task_id": "t-1", "session": "../../x"}),
    ("a session of another task", lambda g: g | {"task_id": "t-1", "session": "t-2-1"}),
    ("a relative home", lambda g: g | {"home": "home"}),
    ("a budget of zero", lambda g: g | {"budgets": g["budgets"] | {"state_max_bytes": 0}}),
    ("a budget that is a bool", lambda g: g | {"budgets": g["budgets"] | {"mail_max_bytes": True}}),
    ("experts that are not names", lambda g: g | {"experts": ["backend", "Bad Name"]}),
]


def test_grant_files_with_bad_content_are_refused(served: tuple[PoolLayout, str]) -> None:
    layout, url = served
    state = layout.expert_dir("backend") / "state.md"
    before = state.read_bytes()
    valid = _valid_grant(layout)
    refused = []
    for what, make in BAD_GRANTS:
        token = os.urandom(16).hex()
        content = make(dict(valid))
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        layout.token_file(token_digest(token)).write_bytes(raw)
        with pytest.raises(AgentPoolError):  # GrantError, or the agent is unknown
            SessionGrant.from_bytes(raw).context(layout)
        if call_tool(url, token, "update_state", {"content": "forged"}) == (401, None):
            refused.append(what)
    assert refused == [what for what, _ in BAD_GRANTS]
    assert state.read_bytes() == before


def test_a_grant_reached_through_a_symlink_is_refused(served: tuple[PoolLayout, str]) -> None:
    layout, url = served
    real = grant(layout, "backend")
    token = os.urandom(16).hex()
    layout.token_file(token_digest(token)).symlink_to(layout.token_file(token_digest(real)))
    assert call_tool(url, real)[0] == 200
    assert call_tool(url, token) == (401, None)


@pytest.mark.parametrize("name", ["../../daemon", "A" * 64, "0" * 63, "0" * 64 + ".json", ""])
def test_a_token_file_is_only_ever_named_by_a_digest(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidNameError, match="token digest"):
        PoolLayout(tmp_path).token_file(name)


def test_tools_process_leaves_by_itself_when_its_stdin_closes(pool: Pool) -> None:
    async def scenario() -> tuple[int, int, int | None]:
        process = ToolsProcess(pool.layout.root, on_restart=lambda *_: None, on_error=print)
        port = await process.start()
        pid = process.pid
        assert pid is not None
        return port, pid, await process.close()

    port, pid, exit_code = run(scenario)
    assert exit_code == 0  # not signalled: it saw the pipe close
    assert not psutil.pid_exists(pid)
    assert tools_processes(pool.layout) == []
    with pytest.raises(urllib.error.URLError):
        call_tool(tools_url(port), grant(pool.layout, "backend"))
