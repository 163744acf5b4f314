"""The real Claude Code CLI against the scripted model server: fixtures and a runner.

The pinned CLI comes from `make test` (or `make claude-cli`); a missing CLI fails the
e2e tests rather than skipping them, so a green run always means they ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent_pool.testing import Conversation, Script, ScriptedModelServer, ToolCall, Turn
from agent_pool.testing.claude_cli import find_claude_cli, hermetic_claude_env
from tests.conftest import CliEnv
from tests.harness import Pool, cleanup, make_pool

RUN_TIMEOUT = 30.0

ServerFactory = Callable[..., ScriptedModelServer]


@dataclass(frozen=True)
class ClaudeRun:
    """One finished `claude -p` run: exit code, parsed stream-json events, stderr."""

    code: int
    events: list[dict[str, Any]]
    stderr: str
    duration_s: float

    @property
    def result(self) -> dict[str, Any]:
        results = self.of_type("result")
        assert results, f"no result event (exit {self.code}); stderr: {self.stderr[-2000:]}"
        return results[-1]

    def of_type(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            event
            for event in self.events
            if event.get("type") == kind and (subtype is None or event.get("subtype") == subtype)
        ]


def parse_stream(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object: anything else is a finding."""
    events = []
    for line in stdout.splitlines():
        if line.strip():
            event = json.loads(line)
            assert isinstance(event, dict), f"not a JSON object: {line[:200]}"
            events.append(event)
    return events


@dataclass
class ClaudeRunner:
    """Runs the real CLI in a temp project with a temp config dir, hermetically."""

    cli: Path
    project: Path
    config_dir: Path

    def command(self, *args: str) -> list[str]:
        return [
            str(self.cli),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            *args,
        ]

    def env(self, server: ScriptedModelServer | str) -> dict[str, str]:
        """The hermetic environment for a server (or a base URL)."""
        url = server if isinstance(server, str) else server.base_url
        return hermetic_claude_env(url, self.config_dir, base=os.environ)

    def run(self, server: ScriptedModelServer | str, prompt: str, *args: str) -> ClaudeRun:
        """Run to completion with the prompt on stdin."""
        started = time.monotonic()
        proc = subprocess.run(
            self.command(*args),
            input=prompt,
            capture_output=True,
            text=True,
            cwd=self.project,
            env=self.env(server),
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return ClaudeRun(
            proc.returncode, parse_stream(proc.stdout), proc.stderr, time.monotonic() - started
        )

    def start(self, server: ScriptedModelServer, prompt: str, *args: str) -> subprocess.Popen[str]:
        """Start in a new process group (so a test can kill the group) and feed the prompt."""
        with tempfile.TemporaryFile() as stdin:  # a file, not a pipe: nothing left to close
            stdin.write(prompt.encode("utf-8"))
            stdin.seek(0)
            return subprocess.Popen(
                self.command(*args),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.project,
                env=self.env(server),
                start_new_session=True,
            )


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in a process group."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def kill_group(proc: subprocess.Popen[str], grace: float = 5.0) -> tuple[str, str]:
    """SIGTERM the process group, SIGKILL it after `grace`; reap; return (stdout, stderr)."""
    with_group = proc.pid  # start_new_session: the group id is the leader's pid
    try:
        _signal_group(with_group, signal.SIGTERM)
        out, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(with_group, signal.SIGKILL)
        out, err = proc.communicate(timeout=grace)
    deadline = time.monotonic() + grace
    while group_members(with_group) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group_members(with_group)
    for member in left:
        member.kill()
    assert not left, f"processes left in the group: {[p.pid for p in left]}"
    return out, err


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
        os.killpg(pgid, signum)


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    path = find_claude_cli()
    if path is None:
        pytest.fail(
            "the pinned Claude Code CLI is not installed: run `make test` (or `make claude-cli`),"
            " or point AGENT_POOL_TEST_CLAUDE at a claude executable"
        )
    return path


@pytest.fixture
def model_server() -> Iterator[ServerFactory]:
    """Start scripted model servers on free ports; all are stopped after the test."""
    servers: list[ScriptedModelServer] = []

    def start(script: Script, **options: Any) -> ScriptedModelServer:
        server = ScriptedModelServer(script, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def claude(claude_cli: Path, tmp_path: Path) -> ClaudeRunner:
    project = tmp_path / "project"
    project.mkdir()
    return ClaudeRunner(claude_cli, project, tmp_path / "claude-config")


RESPOND = "mcp__agent-pool__send_response"
UPDATE_STATE = "mcp__agent-pool__update_state"


def report(body: str) -> Turn:
    """What a well-behaved task session does last: answer, and keep its state current."""
    return Turn.tools(
        [
            ToolCall(RESPOND, {"body": body}),
            ToolCall(UPDATE_STATE, {"content": f"# State\n\n- {body}\n"}),
        ]
    )


StartPool = Callable[[list[Conversation], str], Pool]


@pytest.fixture
def real_pool(cli: CliEnv, tmp_path: Path) -> Iterator[StartPool]:
    """A pool whose sessions run the real CLI against a scripted model."""
    claude = find_claude_cli()
    assert claude is not None, "the pinned Claude Code CLI is missing: run `make test`"
    servers: list[ScriptedModelServer] = []
    pools: list[Pool] = []

    def start(conversations: list[Conversation], defaults: str = "") -> Pool:
        server = ScriptedModelServer(
            Script(conversations), log_path=tmp_path / "model-requests.jsonl"
        )
        server.start()
        servers.append(server)
        pool = make_pool(cli)
        pools.append(pool)
        cli.env.update(hermetic_claude_env(server.base_url, tmp_path / "claude-config"))
        cli.env["AGENT_POOL_CLAUDE_BIN"] = str(claude)
        pool.configure('[defaults]\nallowed_tools = ["Read", "Write"]\n' + defaults + "\n")
        pool.start()
        return pool

    yield start
    for pool in pools:
        cleanup(pool)
    for server in servers:
        server.stop()
