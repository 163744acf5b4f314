"""Each pool tool on a real tmp pool: what it writes, what it posts, what it refuses."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_pool.mail import Message, MessageType, parse_mail, post_message
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import PoolRegistry, scan_registry
from agent_pool.session.index import IndexRow, append_index_row
from agent_pool.tools.context import ToolBudgets, ToolContext, ToolError, agent_context
from agent_pool.tools.registry import TOOLS, ToolResult

NOW = datetime(2026, 11, 24, 10, 15, 42, tzinfo=UTC)
TASK = "t-0001"


@dataclasses.dataclass
class World:
    layout: PoolLayout
    home: HomeLayout
    registry: PoolRegistry
    session_dir: Path

    def context(self, agent: str = "backend", **changes: object) -> ToolContext:
        ctx = agent_context(
            self.layout,
            self.home,
            self.registry,
            agent,
            budgets=ToolBudgets(),
            task_id=TASK,
            task_sender="concierge",
            session_dir=self.session_dir,
        )
        return dataclasses.replace(ctx, clock=lambda: NOW, **changes)  # type: ignore[arg-type]

    def postoffice(self) -> list[Message]:
        return [
            parse_mail(path.read_bytes(), source=path.name)
            for path in sorted(self.layout.postoffice.glob("*.md"))
        ]


@pytest.fixture
def world(tmp_path: Path) -> World:
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    (tmp_path / "project").mkdir()
    init_pool(layout, experts=["backend", "frontend"])
    home = HomeLayout(tmp_path / "home")
    shared = home.shared_expert_dir("security")
    shared.mkdir(parents=True)
    for name in ("identity", "state", "errors"):
        (shared / f"{name}.md").write_text(f"user-level {name}\n", encoding="utf-8")
    registry = scan_registry(layout, declared_experts=[], shared_experts=["security"])
    session_dir = layout.sessions_dir / f"{TASK}-1"
    session_dir.mkdir(parents=True)
    return World(layout, home, registry, session_dir)


def call(ctx: ToolContext, tool: str, **arguments: object) -> ToolResult:
    spec = next(spec for spec in TOOLS if spec.name == tool)
    assert ctx.role in spec.roles
    return spec.fn(ctx, **arguments)


def text(ctx: ToolContext, tool: str, **arguments: object) -> str:
    result = call(ctx, tool, **arguments)
    assert isinstance(result, str)
    return result


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (the pool, the home) and its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# -- knowledge ---------------------------------------------------------------------


def test_read_state_returns_the_knowledge_files(world: World) -> None:
    expert = world.layout.expert_dir("backend")
    (expert / "state.md").write_text("knows the API\n", encoding="utf-8")
    result = call(world.context(), "read_state")
    assert isinstance(result, dict)
    assert result["agent"] == "backend"
    assert result["state"] == "knows the API\n"
    assert result["identity"] == (expert / "identity.md").read_text(encoding="utf-8")
    assert result["errors"] == (expert / "errors.md").read_text(encoding="utf-8")
    assert result["overlay_state"] is None
    assert result["state_max_bytes"] == 16 * 1024
    json.dumps(result)  # what the server sends


def test_read_state_of_a_shared_expert_includes_the_pool_overlay(world: World) -> None:
    overlay = world.layout.shared_overlay("security")
    overlay.mkdir(parents=True)
    (overlay / "state.md").write_text("this project: uses JWT\n", encoding="utf-8")
    result = call(world.context("security"), "read_state")
    assert isinstance(result, dict)
    assert result["identity"] == "user-level identity\n"
    assert result["state"] == "user-level state\n"
    assert result["errors"] == "user-level errors\n"
    assert result["overlay_state"] == "this project: uses JWT\n"


def test_update_state_replaces_state_and_leaves_a_marker(world: World) -> None:
    reply = text(world.context(), "update_state", content="# State\n\n- the API is v2")
    state = world.layout.expert_dir("backend") / "state.md"
    assert state.read_text(encoding="utf-8") == "# State\n\n- the API is v2\n"
    assert reply == "Replaced state.md (25 of 16384 bytes)."
    marker = (world.session_dir / "state-updated").read_text(encoding="utf-8")
    assert marker == f"{NOW.isoformat()} 25 bytes {state}\n"
    assert (state.parent / ".state.md.lock").is_file()
    assert not list(state.parent.glob(".tmp-*"))


def test_update_state_of_a_shared_expert_writes_the_pool_overlay(world: World) -> None:
    reply = text(world.context("security"), "update_state", content="project facts\n")
    overlay_state = world.layout.shared_overlay("security") / "state.md"
    assert overlay_state.read_text(encoding="utf-8") == "project facts\n"
    assert str(overlay_state) in reply
    user_state = world.home.shared_expert_dir("security") / "state.md"
    assert user_state.read_text(encoding="utf-8") == "user-level state\n"


def test_oversize_state_is_refused_with_size_and_budget(world: World) -> None:
    ctx = world.context(budgets=ToolBudgets(state_max_bytes=100))
    before = snapshot(world.layout.root)
    with pytest.raises(ToolError) as caught:
        call(ctx, "update_state", content="x" * 100)  # 101 bytes with its newline
    assert str(caught.value).startswith(
        "content is 101 bytes, over the state budget of 100 bytes: state.md was not changed"
    )
    assert snapshot(world.layout.root) == before
    assert text(ctx, "update_state", content="x" * 99) == "Replaced state.md (100 of 100 bytes)."


def test_append_error_adds_a_dated_entry(world: World) -> None:
    errors = world.layout.expert_dir("backend") / "errors.md"
    starter = errors.read_text(encoding="utf-8")
    reply = text(world.context(), "append_error", entry="ran the wrong migration")
    reply2 = text(world.context(), "append_error", entry="  two lines\n- not a new entry \n")
    assert reply == "Recorded in errors.md (1 entries)."
    assert reply2 == "Recorded in errors.md (2 entries)."
    assert errors.read_text(encoding="utf-8") == (
        starter
        + "- 2026-11-24 10:15 UTC: ran the wrong migration\n"
        + "- 2026-11-24 10:15 UTC: two lines\n  - not a new entry\n"
    )


def test_append_error_drops_the_oldest_entries_over_four_times_the_budget(world: World) -> None:
    ctx = world.context(budgets=ToolBudgets(errors_max_bytes=256))
    errors = world.layout.expert_dir("backend") / "errors.md"
    replies = [text(ctx, "append_error", entry=f"mistake {n:02d} " + "." * 80) for n in range(20)]
    content = errors.read_text(encoding="utf-8")
    assert len(content.encode()) <= 4 * 256
    assert content.startswith("# Errors and traps of backend")
    assert "mistake 19" in content
    assert "mistake 00" not in content
    assert "oldest" in replies[-1]
    assert "under 1024 bytes" in replies[-1]


def test_concurrent_appends_never_lose_an_entry(world: World) -> None:
    contexts = [world.context() for _ in range(8)]

    def append_ten(ctx: ToolContext, writer: int) -> None:
        for n in range(10):
            call(ctx, "append_error", entry=f"writer {writer} entry {n}")

    threads = [threading.Thread(target=append_ten, args=(ctx, i)) for i, ctx in enumerate(contexts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    content = (world.layout.expert_dir("backend") / "errors.md").read_text(encoding="utf-8")
    for writer in range(8):
        for n in range(10):
            assert f"writer {writer} entry {n}\n" in content


def test_flag_promotion_counts_the_same_pattern(world: World) -> None:
    ctx = world.context()
    first = text(ctx, "flag_promotion", pattern="Always run   migrations in a transaction")
    second = text(ctx, "flag_promotion", pattern="always run migrations\nin a transaction")
    other = text(ctx, "flag_promotion", pattern="Cache the schema")
    assert "flagged once" in first
    assert "flagged 2 times" in second
    assert "flagged once" in other
    promotions = (world.layout.expert_dir("backend") / "promotions.md").read_text()
    assert promotions.startswith("# Promotion candidates of backend\n")
    assert promotions.endswith(
        "- 2026-11-24 10:15 UTC (task t-0001): Always run migrations in a transaction\n"
        "- 2026-11-24 10:15 UTC (task t-0001): always run migrations in a transaction\n"
        "- 2026-11-24 10:15 UTC (task t-0001): Cache the schema\n"
    )


# -- messaging ---------------------------------------------------------------------


def test_send_response_posts_the_answer_to_the_task_sender(world: World) -> None:
    reply = text(world.context(), "send_response", body="Done: the endpoint exists.\n")
    [mail] = world.postoffice()
    assert mail.type is MessageType.RESPONSE
    assert mail.sender == "backend"
    assert mail.to == "concierge"
    assert mail.in_reply_to == TASK
    assert mail.id != TASK
    assert mail.body == "Done: the endpoint exists.\n"
    assert mail.timestamp == NOW
    assert reply == f"Response {mail.id} sent to concierge (in reply to {TASK})."
    assert (world.session_dir / "responded").read_text(encoding="utf-8") == mail.id + "\n"


def test_a_second_response_is_refused(world: World) -> None:
    text(world.context(), "send_response", body="first")
    [first] = world.postoffice()
    with pytest.raises(ToolError, match=f"already answered \\(response {first.id}\\)"):
        call(world.context(), "send_response", body="second")
    assert world.postoffice() == [first]


def test_send_response_needs_a_task(world: World) -> None:
    with pytest.raises(ToolError, match="this session has no current task"):
        call(world.context(task_id=None), "send_response", body="hello")
    with pytest.raises(ToolError, match="sender of task t-0001 is unknown"):
        call(world.context(task_sender=None), "send_response", body="hello")
    assert world.postoffice() == []


def test_the_task_sender_is_read_from_the_inbox(world: World) -> None:
    inbox = world.layout.inbox("backend")
    task = Message(id=TASK, sender="architect", to="backend", type=MessageType.TASK, body="Do it.")
    post_message(inbox, task)
    ctx = agent_context(
        world.layout, world.home, world.registry, "backend", budgets=ToolBudgets(), task_id=TASK
    )
    assert ctx.task_sender == "architect"
    assert ctx.knowledge_dir == ctx.pool_side_dir == world.layout.expert_dir("backend")
    shared = agent_context(
        world.layout, world.home, world.registry, "security", budgets=ToolBudgets()
    )
    assert shared.role == "expert"
    assert shared.knowledge_dir == world.home.shared_expert_dir("security")
    assert shared.pool_side_dir == world.layout.shared_overlay("security")
    architect = agent_context(
        world.layout, world.home, world.registry, "architect", budgets=ToolBudgets()
    )
    assert architect.role == "architect"
    assert architect.task_sender is None


def test_send_notify_posts_a_notice(world: World) -> None:
    reply = text(world.context(), "send_notify", to="frontend", body="The API moved to /v2.")
    [mail] = world.postoffice()
    assert mail.type is MessageType.NOTIFY
    assert (mail.sender, mail.to, mail.in_reply_to) == ("backend", "frontend", None)
    assert mail.body == "The API moved to /v2."
    assert reply.startswith(f"Notice {mail.id} posted to frontend")
    text(world.context(), "send_notify", to="security", body="shared experts count too")
    text(world.context(), "send_notify", to="architect", body="and roles")
    assert [mail.to for mail in world.postoffice()] == ["frontend", "security", "architect"]


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("nobody", "unknown recipient 'nobody' (known: architect, backend, concierge, "),
        ("backend", "to names yourself"),
        ("../x", "invalid to '../x'"),
        ("Frontend", "invalid to 'Frontend'"),
        (7, "invalid to '7': must be a string"),
    ],
)
def test_send_notify_refuses_bad_recipients(world: World, to: object, message: str) -> None:
    before = snapshot(world.layout.root)
    with pytest.raises(ToolError) as caught:
        call(world.context(), "send_notify", to=to, body="hi")
    assert message in str(caught.value)
    assert snapshot(world.layout.root) == before


def test_signal_handoff_leaves_the_note_and_says_stop(world: World) -> None:
    reply = text(world.context(), "signal_handoff", note="Done: models.\nLeft: the views.\n\n")
    assert (world.session_dir / "handoff.md").read_text() == "Done: models.\nLeft: the views.\n"
    assert reply.startswith("Handoff recorded. Stop now")
    with pytest.raises(ToolError, match="only works in a session the daemon runs"):
        call(world.context(session_dir=None), "signal_handoff", note="x")
    text(world.context(), "send_response", body="answered after all")
    with pytest.raises(ToolError, match="already answered"):
        call(world.context(), "signal_handoff", note="again")


# -- history -----------------------------------------------------------------------


def _session_log(task: str, answer: str) -> bytes:
    events = [
        {"type": "system", "subtype": "init", "session_id": "s1", "model": "sonnet", "tools": []},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": answer}]}},
        {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1,
         "result": answer, "total_cost_usd": 0.01, "duration_ms": 1200},
    ]  # fmt: skip
    return "".join(json.dumps(event) + "\n" for event in events).encode()


def test_recall_reads_every_attempt_and_the_archives(world: World) -> None:
    logs = world.layout.logs("backend")
    (logs / "archive").mkdir()
    (logs / "archive" / "t-0007.jsonl.gz").write_bytes(gzip.compress(_session_log("", "old")))
    (logs / "t-0009.attempt-1.jsonl").write_bytes(_session_log("", "first try"))
    (logs / "t-0009.jsonl").write_bytes(_session_log("", "second try"))
    archived = text(world.context(), "recall", task_id="t-0007")
    assert archived.startswith("=== archived attempt 1: t-0007.jsonl.gz ===\n")
    assert "assistant: old\n" in archived
    both = text(world.context(), "recall", task_id="t-0009")
    assert both.index("first try") < both.index("second try")
    assert "=== attempt 2: t-0009.jsonl ===" in both
    assert "cut" not in both


def test_recall_is_capped(world: World) -> None:
    logs = world.layout.logs("backend")
    (logs / "t-0009.jsonl").write_bytes(_session_log("", "word " * 500) * 40)
    result = text(world.context(), "recall", task_id="t-0009")
    assert len(result.encode()) < 33 * 1024
    assert result.endswith("[transcript cut at 32 KiB: the rest is not shown; "
                           "`agent-pool logs` shows it all]\n")  # fmt: skip


@pytest.mark.parametrize("task_id", ["../../etc/passwd", "t/../x", ".hidden", "", 12])
def test_recall_refuses_ids_that_are_not_ids(world: World, task_id: object) -> None:
    with pytest.raises(ToolError, match="invalid task_id"):
        call(world.context(), "recall", task_id=task_id)


def test_recall_of_an_unknown_task_lists_the_known_ones(world: World) -> None:
    logs = world.layout.logs("backend")
    (logs / "t-0009.jsonl").write_bytes(_session_log("", "x"))
    with pytest.raises(ToolError, match=r"no session log for task 't-0404' .*latest: t-0009"):
        call(world.context(), "recall", task_id="t-0404")


def test_search_index_returns_matching_rows(world: World) -> None:
    logs = world.layout.logs("backend")
    for n, summary in enumerate(["Added the login endpoint", "Fixed the cache", "Login bug"]):
        row = IndexRow(
            finished_at=NOW.timestamp(),
            task_id=f"t-{n}",
            sender="concierge",
            type="task",
            status="completed",
            attempts=1,
            turns=3,
            cost_usd=0.01,
            duration_ms=1000,
            summary=summary,
        )
        append_index_row(logs, row)
    result = text(world.context(), "search_index", query="LOGIN")
    assert result.startswith("2 matching rows (all shown):\n| finished (UTC) |")
    assert "Added the login endpoint" in result
    assert "Login bug" in result
    assert "cache" not in result
    assert text(world.context(), "search_index", query="nothing").startswith("No row")
    assert "3 matching rows" in text(world.context(), "search_index", query="")


# -- hostile arguments -------------------------------------------------------------

BAD_VALUES: list[tuple[object, str]] = [
    (None, "must be a string, not NoneType"),
    (5, "must be a string, not int"),
    (["a"], "must be a string, not list"),
    ({"a": 1}, "must be a string, not dict"),
    ("a\x00b", "contains a NUL character"),
    ("a\ud800b", "is not valid text (a lone surrogate at character 1)"),
    ("   \n", "is empty"),
]
TEXT_TOOLS: list[tuple[str, str, dict[str, object]]] = [
    ("update_state", "content", {}),
    ("append_error", "entry", {}),
    ("flag_promotion", "pattern", {}),
    ("send_response", "body", {}),
    ("send_notify", "body", {"to": "frontend"}),
    ("signal_handoff", "note", {}),
]


@pytest.mark.parametrize("case", TEXT_TOOLS, ids=[case[0] for case in TEXT_TOOLS])
@pytest.mark.parametrize("bad", BAD_VALUES, ids=[repr(value) for value, _ in BAD_VALUES])
def test_bad_text_arguments_are_refused_and_nothing_is_written(
    world: World, case: tuple[str, str, dict[str, object]], bad: tuple[object, str]
) -> None:
    tool, param, others = case
    value, message = bad
    pool_before = snapshot(world.layout.root)
    home_before = snapshot(world.home.root)
    with pytest.raises(ToolError) as caught:
        call(world.context(), tool, **{param: value}, **others)
    assert str(caught.value) == f"{param} {message}"
    assert snapshot(world.layout.root) == pool_before
    assert snapshot(world.home.root) == home_before


@pytest.mark.parametrize(
    ("tool", "param", "limit"),
    [
        ("append_error", "entry", 4096),
        ("flag_promotion", "pattern", 2048),
        ("signal_handoff", "note", 16384),
        ("send_response", "body", 1 << 20),
        ("search_index", "query", 256),
    ],
)
def test_oversize_arguments_are_refused(world: World, tool: str, param: str, limit: int) -> None:
    before = snapshot(world.layout.root)
    with pytest.raises(ToolError) as caught:
        call(world.context(), tool, **{param: "é" * (limit // 2 + 1)})
    assert str(caught.value) == f"{param} is {limit + 2} bytes; the limit is {limit} bytes"
    assert snapshot(world.layout.root) == before


def test_a_body_that_fits_but_whose_mail_does_not_is_refused(world: World) -> None:
    ctx = world.context(budgets=ToolBudgets(mail_max_bytes=200))
    with pytest.raises(ToolError, match=r"the mail would be \d+ bytes; the limit is 200"):
        call(ctx, "send_response", body="x" * 190)
    assert world.postoffice() == []


def test_every_tool_checks_its_arguments(world: World) -> None:
    # No tool may write anything when handed a non-string for every parameter.
    before = snapshot(world.layout.root)
    for spec in TOOLS:
        if not spec.params or "expert" not in spec.roles:
            continue
        arguments = dict.fromkeys((param.name for param in spec.params), 3.5)
        with pytest.raises(ToolError, match=r"must be a string|invalid"):
            spec.fn(world.context(), **arguments)
        assert snapshot(world.layout.root) == before, spec.name
