"""`agent-pool demo`: a whole pool working end to end at zero token cost.

A scratch project gets a pool with two experts; the real Claude Code CLI runs every
session against the scripted model server (a local stand-in for the model API), so
the demo spawns real sessions, changes real files, answers a question and reports a
cost, with no account and no network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent_pool.board import TERMINAL, TaskBoard, TaskRecord
from agent_pool.control.client import DaemonStartError, wait_until_answering
from agent_pool.errors import AgentPoolError
from agent_pool.mail import Message, MessageType, new_message_id, post_message
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import PoolLayout
from agent_pool.testing import Conversation, Script, ScriptedModelServer, ToolCall, Turn
from agent_pool.testing.claude_cli import hermetic_claude_env

Say = Callable[[str], None]

HEALTH_CODE = 'def health() -> dict[str, str]:\n    return {"status": "ok"}\n'
FOOTER_HTML = '<footer>API: <span data-src="/health">checking</span></footer>\n'
HEALTH_TASK = "Add a /health endpoint to the API that reports the service status."
FOOTER_TASK = "Show the API health in the site footer, using the backend's /health endpoint."
PORT_QUESTION = "Which port does the API listen on?"
HEALTH_REPORT = 'Added GET /health in api/health.py; it returns {"status": "ok"}.'
RESPOND = "mcp__agent-pool__send_response"
UPDATE_STATE = "mcp__agent-pool__update_state"


def demo_script(project: Path) -> Script:
    """What the scripted model answers in each session, told apart by the task text."""
    health = project / "api" / "health.py"
    footer = project / "web" / "footer.html"
    return Script(
        [
            Conversation(
                match=HEALTH_TASK,
                turns=[
                    Turn.tool(
                        "Write",
                        {
                            "file_path": str(health),
                            "content": HEALTH_CODE,
                        },
                        text="I will add the endpoint in api/health.py.",
                    ),
                    Turn.tool(RESPOND, {"body": HEALTH_REPORT}),
                    Turn.tool(
                        UPDATE_STATE,
                        {"content": "# State of backend\n\n- GET /health lives in api/health.py\n"},
                    ),
                    Turn.text("Done: endpoint added, state updated."),
                ],
            ),
            Conversation(
                match=FOOTER_TASK,
                turns=[
                    Turn.tool(
                        "Write",
                        {
                            "file_path": str(footer),
                            "content": FOOTER_HTML,
                        },
                    ),
                    Turn.tools(
                        [
                            ToolCall(
                                RESPOND, {"body": "web/footer.html now shows the API health."}
                            ),
                            ToolCall(
                                UPDATE_STATE,
                                {"content": "# State of frontend\n\n- the footer polls /health\n"},
                            ),
                        ]
                    ),
                    Turn.text("Done."),
                ],
            ),
            Conversation(
                match=PORT_QUESTION,
                turns=[
                    Turn.tool(
                        RESPOND, {"body": "The API listens on port 8080 (see api/health.py)."}
                    ),
                    Turn.text("Answered."),
                ],
            ),
        ]
    )


def run_demo(claude_bin: Path, say: Say = print) -> float:
    """Run the demo; returns the pool's total cost as reported by the sessions."""
    with tempfile.TemporaryDirectory(prefix="agent-pool-demo-") as scratch:
        root = Path(scratch)
        project = root / "shop"
        for folder in ("api", "web"):
            (project / folder).mkdir(parents=True)
        layout = PoolLayout(project / ".agent-pool")
        init_pool(layout, experts=["backend", "frontend"])
        layout.pool_toml.write_text(
            '[pool]\nname = "shop"\nproject_dir = ".."\n\n'
            '[defaults]\nallowed_tools = ["Read", "Write", "Edit"]\nmax_attempts = 1\n'
            'stall_timeout = "2m"\n\n'
            '[experts.backend]\nowns = ["api/**"]\n\n[experts.frontend]\nowns = ["web/**"]\n',
            encoding="utf-8",
        )
        say(f"A scratch project {project} with a pool of two experts: backend, frontend.")
        with ScriptedModelServer(demo_script(project)) as server:
            env = dict(os.environ)
            env.update(hermetic_claude_env(server.base_url, root / "claude-config"))
            env.update(AGENT_POOL_HOME=str(root / "home"), AGENT_POOL_CLAUDE_BIN=str(claude_bin))
            env.pop("AGENT_POOL_DIR", None)
            say(f"The scripted model answers on {server.base_url}; Claude Code is {claude_bin}.")
            with _Daemon(layout, env) as events:
                return _drive(layout, events, say)


def _drive(layout: PoolLayout, events: Iterator[dict[str, Any]], say: Say) -> float:
    health = _post(layout, "backend", HEALTH_TASK)
    footer = _post(layout, "frontend", FOOTER_TASK, depends_on=(health,))
    question = _post(layout, "backend", PORT_QUESTION, kind=MessageType.QUESTION)
    say(f"submitted task {health} to backend")
    say(f"submitted task {footer} to frontend, after {health}")
    say(f"submitted question {question} to backend")
    wanted = {health, footer, question}
    records = _follow(layout, events, wanted, say)
    say("")
    answers = _answers(layout)
    say(f"answer to {PORT_QUESTION!r}: {answers.get(question, '(none)')}")
    for task_id in (health, footer):
        say(f"{records[task_id].to} reported on {task_id}: {answers.get(task_id, '(none)')}")
    state = (layout.expert_dir("backend") / "state.md").read_text(encoding="utf-8").strip()
    say(f"backend's state.md, written by its session: {' / '.join(state.splitlines()[2:])}")
    say("files the experts changed:")
    project = layout.root.parent
    for path in sorted(project.rglob("*")):
        if path.is_file() and ".agent-pool" not in path.parts:
            say(f"  {path.relative_to(project)}: {path.read_text(encoding='utf-8').strip()}")
    total = sum(record.cost_usd for record in records.values())
    failed = [record for record in records.values() if record.status != "completed"]
    say(f"cost: ${total:.4f} as reported by the sessions (scripted model: no real tokens spent)")
    if failed:
        reasons = "; ".join(f"{record.id}: {record.failure_reason}" for record in failed)
        raise AgentPoolError(f"the demo did not complete: {reasons}")
    return total


def _follow(
    layout: PoolLayout, events: Iterator[dict[str, Any]], wanted: set[str], say: Say
) -> dict[str, TaskRecord]:
    deadline = time.monotonic() + 300
    settled = False
    for event in events:
        if not event:  # the tail has caught up with the log
            if settled:
                return _records(layout, wanted)
            records = _records(layout, wanted)
            # Once all are done, print what is left in the log, then stop.
            settled = len(records) == len(wanted) and all(
                record.status in TERMINAL for record in records.values()
            )
            if time.monotonic() > deadline:
                break
            continue
        line = _describe(event)
        if line and event.get("id") in wanted:
            say(line)
    raise AgentPoolError("the demo did not finish within 5 minutes")


def _describe(event: dict[str, Any]) -> str | None:
    kind, task = event.get("type"), event.get("id")
    if kind == "task.started":
        return f"  {task}: {event.get('to')} started a Claude Code session"
    if kind == "session.tool_call":
        tool = str(event.get("tool")).replace("mcp__agent-pool__", "agent-pool tool ")
        detail = event.get("input", {}).get("file_path", "")
        return f"  {task}: {tool} {detail}".rstrip()
    if kind == "task.completed":
        return f"  {task}: completed (${event.get('cost_usd') or 0:.4f})"
    if kind in ("task.failed", "task.retry"):
        return f"  {task}: {kind.split('.')[1]}: {event.get('reason')}"
    return None


def _answers(layout: PoolLayout) -> dict[str, str]:
    """Responses routed to the concierge (the user's inbox), by the task they answer."""
    deadline = time.monotonic() + 10
    while True:
        board = TaskBoard.open_readonly(layout.board_db)
        try:
            mail = board.messages_to("concierge", types={"response"}, limit=100)
        finally:
            board.close()
        answers = {m.in_reply_to: m.body.strip() for m in mail if m.in_reply_to}
        if len(answers) >= 3 or time.monotonic() > deadline:
            return answers
        time.sleep(0.05)


def _records(layout: PoolLayout, ids: set[str]) -> dict[str, TaskRecord]:
    board = TaskBoard.open_readonly_if_ready(layout.board_db)
    if board is None:
        return {}
    try:
        found = {task_id: board.get(task_id) for task_id in ids}
    finally:
        board.close()
    return {task_id: record for task_id, record in found.items() if record is not None}


def _post(
    layout: PoolLayout,
    to: str,
    body: str,
    *,
    depends_on: tuple[str, ...] = (),
    kind: MessageType = MessageType.TASK,
) -> str:
    message = Message(
        id=new_message_id(), sender="concierge", to=to, type=kind, body=body, depends_on=depends_on
    )
    post_message(layout.postoffice, message)
    return message.id


class _Daemon:
    """The pool's daemon as a child process, and a stream of its events."""

    def __init__(self, layout: PoolLayout, env: dict[str, str]) -> None:
        self._layout = layout
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Iterator[dict[str, Any]]:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agent_pool", "--pool", str(self._layout.root), "start"],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_answering(self._layout.socket_path, timeout=30, exited=self._proc.poll)
        except DaemonStartError as exc:
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            raise AgentPoolError(f"{exc.message}: {err.strip()}") from exc
        return _tail_events(self._layout.daemon_log)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            if self._proc.stderr:
                self._proc.stderr.close()


def _tail_events(path: Path) -> Iterator[dict[str, Any]]:
    """Follow the daemon's JSON-lines event log (forever; the caller stops)."""
    offset = 0
    while True:
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        complete = data[: data.rfind(b"\n") + 1]
        offset += len(complete)
        for line in complete.splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue
        yield {}
        time.sleep(0.05)
