"""The task board against real SQLite files: states, scheduling, cascades, durability."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_pool.board import (
    BoardNotFoundError,
    BoardNotReadyError,
    BoardOpenError,
    BoardReadOnlyError,
    DependencyCycleError,
    FinishOutcome,
    InvalidTransitionError,
    RecordOutcome,
    SessionResult,
    TaskBoard,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
)
from agent_pool.board import sql as board_sql
from agent_pool.mail import Message, MessageType, Priority, compose_mail

T0 = 1_800_000_000.0

OK = SessionResult(
    success=True,
    exit_code=0,
    result_text="done",
    cost_usd=0.25,
    input_tokens=100,
    output_tokens=10,
    num_turns=3,
    duration_ms=1500,
)
BOOM = SessionResult(
    success=False,
    exit_code=1,
    reason="boom",
    result_text="it broke",
    cost_usd=0.5,
    input_tokens=200,
    output_tokens=20,
    num_turns=2,
    duration_ms=500,
)


def mail(
    task_id: str,
    *deps: str,
    to: str = "backend",
    priority: str = "normal",
    body: str = "Do the thing.\n",
    kind: MessageType = MessageType.TASK,
) -> Message:
    return Message(
        id=task_id,
        sender="concierge",
        to=to,
        type=kind,
        body=body,
        depends_on=deps,
        priority=Priority(priority),
    )


def digest(msg: Message) -> str:
    return hashlib.sha256(compose_mail(msg).encode()).hexdigest()


def submit(board: TaskBoard, msg: Message, now: float = T0) -> TaskRecord:
    assert board.record_message(msg, digest(msg), now) is RecordOutcome.NEW
    return must_get(board, msg.id)


def must_get(board: TaskBoard, task_id: str) -> TaskRecord:
    task = board.get(task_id)
    assert task is not None, task_id
    return task


def status(board: TaskBoard, task_id: str) -> TaskStatus:
    return must_get(board, task_id).status


def run(
    board: TaskBoard,
    task_id: str,
    result: SessionResult = OK,
    now: float = T0,
    *,
    max_attempts: int = 3,
) -> FinishOutcome:
    board.mark_active(task_id, now, f"logs/{task_id}.jsonl")
    return board.finish(task_id, result, now + 1, max_attempts=max_attempts, backoff_base=10)


@pytest.fixture
def board_path(tmp_path: Path) -> Path:
    return tmp_path / "board.sqlite"


@pytest.fixture
def board(board_path: Path) -> Iterator[TaskBoard]:
    with TaskBoard.open(board_path) as opened:
        yield opened


# --- recording mail ------------------------------------------------------------------


def test_recording_is_idempotent_and_refuses_conflicts(board: TaskBoard) -> None:
    first = mail("t-1", body="Version one.\n")
    assert board.record_message(first, digest(first), T0) is RecordOutcome.NEW
    assert board.record_message(first, digest(first), T0 + 5) is RecordOutcome.IDENTICAL
    changed = mail("t-1", body="Version two.\n")
    assert board.record_message(changed, digest(changed), T0 + 9) is RecordOutcome.CONFLICT

    task = must_get(board, "t-1")
    assert task.body == "Version one.\n"
    assert task.created_at == T0
    assert board.counts()[TaskStatus.PENDING] == 1
    assert [m.routed_at for m in board.messages_to("backend")] == [T0]


def test_only_work_mail_becomes_a_task(board: TaskBoard) -> None:
    submit(board, mail("q-1", kind=MessageType.QUESTION))
    reply = Message(
        id="r-1",
        sender="backend",
        to="concierge",
        type=MessageType.RESPONSE,
        in_reply_to="q-1",
        body="Forty-two.\n",
    )
    assert board.record_message(reply, digest(reply), T0 + 1) is RecordOutcome.NEW

    assert must_get(board, "q-1").type is MessageType.QUESTION
    assert not board.has_task("r-1")
    [stored] = board.messages_to("concierge")
    assert (stored.id, stored.in_reply_to, stored.body) == ("r-1", "q-1", "Forty-two.\n")
    assert stored.digest == digest(reply)


def test_inbox_is_newest_last_filtered_and_limited(board: TaskBoard) -> None:
    for n in range(5):
        reply = Message(
            id=f"r-{n}",
            sender="backend",
            to="concierge",
            type=MessageType.RESPONSE,
            in_reply_to="q-1",
            body=f"answer {n}\n",
        )
        board.record_message(reply, digest(reply), T0 + n)
    note = Message(
        id="n-1", sender="backend", to="concierge", type=MessageType.NOTIFY, body="fyi\n"
    )
    board.record_message(note, digest(note), T0 + 10)

    assert [m.id for m in board.messages_to("concierge", limit=3)] == ["r-3", "r-4", "n-1"]
    only_replies = board.messages_to("concierge", types={"response"}, limit=2)
    assert [m.id for m in only_replies] == ["r-3", "r-4"]
    assert board.messages_to("backend") == []


def test_status_at_insert_follows_the_dependencies(board: TaskBoard) -> None:
    submit(board, mail("done"))
    run(board, "done")
    submit(board, mail("waiting"))
    submit(board, mail("broken"))
    run(board, "broken", BOOM, max_attempts=1)
    submit(board, mail("dropped"))
    board.cancel("dropped", T0)

    assert submit(board, mail("free")).status is TaskStatus.PENDING
    assert submit(board, mail("after-done", "done")).status is TaskStatus.PENDING
    assert submit(board, mail("on-pending", "done", "waiting")).status is TaskStatus.BLOCKED
    assert submit(board, mail("on-missing", "ghost")).status is TaskStatus.BLOCKED

    failed = submit(board, mail("on-failed", "waiting", "broken"), now=T0 + 50)
    assert failed.status is TaskStatus.FAILED
    assert failed.failure_reason == "dependency broken failed"
    assert failed.cascaded_from == "broken"
    assert failed.finished_at == T0 + 50
    assert not failed.needs_attention  # the root cause carries the flag

    cancelled = submit(board, mail("on-cancelled", "dropped"))
    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.failure_reason == "dependency dropped was cancelled"

    assert board.waits_on("on-pending") == [("waiting", "pending")]
    assert board.waits_on("on-missing") == [("ghost", "missing")]
    assert board.waits_on("free") == []


def test_a_cycle_is_refused_and_nothing_recorded(board: TaskBoard) -> None:
    submit(board, mail("a", "b"))  # b is missing for now
    submit(board, mail("c", "a"))
    closing = mail("b", "c")
    with pytest.raises(DependencyCycleError) as caught:
        board.record_message(closing, digest(closing), T0)
    assert caught.value.cycle == ["b", "c", "a", "b"]
    assert "b -> c -> a -> b" in str(caught.value)

    assert not board.has_task("b")
    assert board.messages_to("backend", limit=10)[-1].id == "c"
    assert board.counts()[TaskStatus.BLOCKED] == 2
    # The id is still free: the same task without the cycle is accepted.
    assert submit(board, mail("b")).status is TaskStatus.PENDING


def test_a_refused_cycle_leaves_the_rest_of_a_transaction(board: TaskBoard) -> None:
    submit(board, mail("a", "b"))
    with board.transaction():
        submit(board, mail("x"))
        with pytest.raises(DependencyCycleError):
            board.record_message(mail("b", "a"), "digest", T0)
        submit(board, mail("y"))
    assert board.has_task("x")
    assert board.has_task("y")
    assert not board.has_task("b")


def test_a_failed_inner_transaction_rolls_back_only_itself(board: TaskBoard) -> None:
    def nested_failure() -> None:
        with board.transaction():
            submit(board, mail("y"))
            board.mark_active("x", T0, "logs/x.jsonl")
            raise RuntimeError("one message went wrong")

    with board.transaction():
        submit(board, mail("x"))
        with pytest.raises(RuntimeError):
            nested_failure()
        submit(board, mail("z"))
    assert [task.id for task in board.list_tasks()] == ["z", "x"]
    assert status(board, "x") is TaskStatus.PENDING


def test_an_exception_rolls_back_the_whole_transaction(board: TaskBoard) -> None:
    def route_and_crash() -> None:
        with board.transaction():
            submit(board, mail("x"))
            submit(board, mail("y"))
            raise RuntimeError("routing crashed")

    with pytest.raises(RuntimeError):
        route_and_crash()
    assert board.list_tasks() == []
    assert board.counts()[TaskStatus.PENDING] == 0
    submit(board, mail("x"))  # the board is usable afterwards


def test_a_late_dependency_leaves_its_dependants_blocked_until_done(board: TaskBoard) -> None:
    submit(board, mail("b", "a"))
    submit(board, mail("a"))
    assert status(board, "b") is TaskStatus.BLOCKED
    assert board.waits_on("b") == [("a", "pending")]
    outcome = run(board, "a")
    assert outcome.unblocked == ("b",)
    assert status(board, "b") is TaskStatus.PENDING


def test_a_late_dependency_born_failed_cascades_to_waiting_tasks(board: TaskBoard) -> None:
    submit(board, mail("root"))
    run(board, "root", BOOM, max_attempts=1)
    submit(board, mail("leaf", "middle"))  # middle is missing for now
    submit(board, mail("middle", "root"))
    leaf = must_get(board, "leaf")
    assert leaf.status is TaskStatus.FAILED
    assert leaf.cascaded_from == "middle"


# --- dependency order ----------------------------------------------------------------


def test_a_dependant_unblocks_only_after_its_dependency_completes(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a"))
    assert board.next_ready(["backend"], T0, 5)[0].id == "a"

    board.mark_active("a", T0, "logs/a.jsonl")
    assert status(board, "b") is TaskStatus.BLOCKED
    outcome = board.finish("a", OK, T0 + 30, max_attempts=3, backoff_base=10)
    assert outcome.applied
    assert outcome.unblocked == ("b",)
    b = must_get(board, "b")
    assert (b.status, b.ready_at) == (TaskStatus.PENDING, T0 + 30)
    assert board.next_ready(["backend"], T0 + 30, 5)[0].id == "b"


def test_a_missing_dependency_keeps_a_task_blocked(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a", "ghost"))
    assert run(board, "a").unblocked == ()
    assert board.waits_on("b") == [("ghost", "missing")]
    submit(board, mail("ghost"))
    assert run(board, "ghost").unblocked == ("b",)


def test_a_diamond_unblocks_once_both_sides_complete(board: TaskBoard) -> None:
    submit(board, mail("base"))
    submit(board, mail("left", "base", to="frontend"))
    submit(board, mail("right", "base", to="infra"))
    submit(board, mail("top", "left", "right"))
    assert run(board, "base").unblocked == ("left", "right")
    assert run(board, "left").unblocked == ()
    assert status(board, "top") is TaskStatus.BLOCKED
    assert board.waits_on("top") == [("right", "pending")]
    assert run(board, "right").unblocked == ("top",)
    assert status(board, "top") is TaskStatus.PENDING


# --- scheduling ----------------------------------------------------------------------


def test_urgent_first_then_fifo_within_a_priority(board: TaskBoard) -> None:
    for task_id, priority in [
        ("n1", "normal"),
        ("l1", "low"),
        ("n2", "normal"),
        ("u1", "urgent"),
        ("h1", "high"),
        ("n3", "normal"),
        ("u2", "urgent"),
    ]:
        submit(board, mail(task_id, priority=priority))
    order = []
    while ready := board.next_ready(["backend"], T0, 1):
        order.append(ready[0].id)
        run(board, ready[0].id)
    assert order == ["u1", "u2", "h1", "n1", "n2", "n3", "l1"]


def test_one_task_per_idle_recipient_within_the_limit(board: TaskBoard) -> None:
    submit(board, mail("i1", to="infra"))
    submit(board, mail("b1", to="backend"))
    submit(board, mail("b2", to="backend", priority="urgent"))
    submit(board, mail("f1", to="frontend", priority="high"))
    submit(board, mail("d1", to="data"))

    ready = board.next_ready(["backend", "frontend", "infra", "backend"], T0, 10)
    assert [task.id for task in ready] == ["b2", "f1", "i1"]  # data is not idle
    assert [task.id for task in board.next_ready(["infra", "frontend"], T0, 1)] == ["f1"]
    assert board.next_ready(["backend"], T0, 0) == []
    assert board.next_ready(["nobody"], T0, 5) == []


def test_a_backing_off_task_waits_for_its_time(board: TaskBoard) -> None:
    submit(board, mail("flaky"))
    outcome = run(board, "flaky", BOOM, now=T0)  # finishes at T0 + 1
    assert outcome.record.status is TaskStatus.PENDING
    assert outcome.record.ready_at == T0 + 11
    assert board.next_ready(["backend"], T0 + 10.9, 5) == []
    assert board.next_wakeup(T0 + 1) == T0 + 11

    # Another task of the same recipient is not held up by the backoff.
    submit(board, mail("steady"))
    assert [t.id for t in board.next_ready(["backend"], T0 + 2, 5)] == ["steady"]
    assert [t.id for t in board.next_ready(["backend"], T0 + 11, 5)] == ["flaky"]
    assert board.next_wakeup(T0 + 11) is None


# --- retries, failure, costs ---------------------------------------------------------


def test_backoff_doubles_then_the_task_fails_and_cascades(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a", to="frontend"))
    submit(board, mail("c", "b", to="infra"))
    submit(board, mail("d", "a", "c", to="data"))

    now = T0
    for expected_delay in (10, 20, 40):
        board.mark_active("a", now, "logs/a.jsonl")
        outcome = board.finish("a", BOOM, now, max_attempts=4, backoff_base=10)
        assert outcome.record.status is TaskStatus.PENDING
        assert outcome.record.ready_at == now + expected_delay
        assert outcome.record.failure_reason == "boom"
        assert outcome.cascaded == ()
        now = outcome.record.ready_at

    board.mark_active("a", now, "logs/a.jsonl")
    outcome = board.finish("a", BOOM, now + 5, max_attempts=4, backoff_base=10)
    a = outcome.record
    assert (a.status, a.attempts, a.needs_attention) == (TaskStatus.FAILED, 4, True)
    assert a.finished_at == now + 5
    assert sorted(outcome.cascaded) == ["b", "c", "d"]

    b, c, d = (must_get(board, task_id) for task_id in "bcd")
    assert (b.status, b.failure_reason, b.cascaded_from) == (
        TaskStatus.FAILED,
        "dependency a failed",
        "a",
    )
    assert (c.status, c.failure_reason, c.cascaded_from) == (
        TaskStatus.FAILED,
        "dependency b failed",
        "b",
    )
    assert d.status is TaskStatus.FAILED
    assert [task.id for task in board.needs_attention()] == ["a"]
    assert board.counts()[TaskStatus.FAILED] == 4


def test_backoff_is_capped(board: TaskBoard) -> None:
    submit(board, mail("a"))
    for _ in range(3):
        board.mark_active("a", T0, "logs/a.jsonl")
        outcome = board.finish("a", BOOM, T0, max_attempts=10, backoff_base=10, backoff_cap=25)
    assert outcome.record.ready_at == T0 + 25


def test_costs_add_up_across_attempts(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("f", to="frontend"))
    run(board, "a", BOOM)
    run(board, "a", OK, now=T0 + 100)
    run(board, "f", OK)

    a = must_get(board, "a")
    assert (a.status, a.attempts, a.exit_code, a.result) == (TaskStatus.COMPLETED, 2, 0, "done")
    assert a.failure_reason is None
    assert a.cost_usd == pytest.approx(0.75)
    assert (a.input_tokens, a.output_tokens, a.num_turns, a.duration_ms) == (300, 30, 5, 2000)
    assert board.cost_by_recipient() == pytest.approx({"backend": 0.75, "frontend": 0.25})
    assert board.total_cost() == pytest.approx(1.0)


def test_a_failure_without_a_reason_names_the_exit_code(board: TaskBoard) -> None:
    submit(board, mail("a"))
    outcome = run(board, "a", SessionResult(success=False, exit_code=137), max_attempts=1)
    assert outcome.record.failure_reason == "the session exited with code 137"


# --- cancel --------------------------------------------------------------------------


def test_cancel_cascades_from_pending_and_blocked_tasks(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a"))
    submit(board, mail("c", "b"))
    submit(board, mail("other"))

    outcome = board.cancel("b", T0 + 3)
    assert outcome.previous is TaskStatus.BLOCKED
    assert outcome.cascaded == ("c",)
    assert outcome.record.finished_at == T0 + 3
    c = must_get(board, "c")
    assert (c.status, c.cascaded_from) == (TaskStatus.CANCELLED, "b")
    assert c.failure_reason == "dependency b was cancelled"

    assert board.cancel("a", T0).cascaded == ()  # b is already cancelled
    assert status(board, "other") is TaskStatus.PENDING


def test_cancel_an_active_task_then_its_finish_is_a_no_op(board: TaskBoard) -> None:
    submit(board, mail("a"))
    board.mark_active("a", T0, "logs/a.jsonl")
    board.record_process("a", pid=4242, pgid=4242, proc_start_time=T0 - 0.5)

    outcome = board.cancel("a", T0 + 1)
    assert outcome.previous is TaskStatus.ACTIVE
    assert (outcome.record.pid, outcome.record.pgid) == (4242, 4242)  # for stopping it
    assert board.active_tasks() == []

    late = board.finish("a", OK, T0 + 2, max_attempts=3, backoff_base=10)
    assert not late.applied
    assert late.record == must_get(board, "a") == outcome.record
    assert board.total_cost() == 0

    retried = board.retry("a", T0 + 3)
    assert (retried.status, retried.attempts, retried.pid, retried.pgid) == (
        TaskStatus.PENDING,
        0,
        None,
        None,
    )


def test_cancel_refuses_finished_and_unknown_tasks(board: TaskBoard) -> None:
    submit(board, mail("a"))
    run(board, "a")
    with pytest.raises(InvalidTransitionError) as refused:
        board.cancel("a", T0)
    assert str(refused.value) == "cannot cancel task 'a': it is already completed"
    assert (refused.value.task_id, refused.value.status) == ("a", TaskStatus.COMPLETED)
    with pytest.raises(TaskNotFoundError, match="'nope'"):
        board.cancel("nope", T0)


# --- retry, requeue, handoff ---------------------------------------------------------


def test_retry_reopens_the_cascaded_dependants_as_blocked(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a"))
    submit(board, mail("c", "b"))
    submit(board, mail("x"))
    submit(board, mail("y", "x"))
    board.cancel("y", T0)  # cancelled by hand, not by a cascade: stays cancelled
    submit(board, mail("z", "a", "y"))  # cancelled at birth by y
    submit(board, mail("h", "a"))
    board.cancel("h", T0)  # a dependant of a, but cancelled by hand: stays cancelled
    run(board, "a", BOOM, max_attempts=1)

    with pytest.raises(InvalidTransitionError, match="retry 'a' instead"):
        board.retry("b", T0)
    with pytest.raises(InvalidTransitionError, match="it is pending"):
        board.retry("x", T0)

    a = board.retry("a", T0 + 60)
    assert (a.status, a.attempts, a.needs_attention, a.failure_reason) == (
        TaskStatus.PENDING,
        0,
        False,
        None,
    )
    assert (a.ready_at, a.finished_at, a.exit_code) == (T0 + 60, None, None)
    assert a.cost_usd == pytest.approx(0.5)  # money already spent stays spent
    assert status(board, "b") is TaskStatus.BLOCKED
    c = must_get(board, "c")
    assert (c.status, c.cascaded_from, c.failure_reason) == (TaskStatus.BLOCKED, None, None)
    assert status(board, "z") is TaskStatus.CANCELLED
    assert status(board, "h") is TaskStatus.CANCELLED
    assert board.needs_attention() == []

    run(board, "a")
    run(board, "b")
    assert status(board, "c") is TaskStatus.PENDING


def test_retry_of_a_cancelled_task_with_unfinished_deps_blocks_it(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a"))
    board.cancel("b", T0)
    assert board.retry("b", T0).status is TaskStatus.BLOCKED
    assert run(board, "a").unblocked == ("b",)


def test_requeue_interrupted_does_not_count_the_attempt(board: TaskBoard) -> None:
    submit(board, mail("a"))
    board.mark_active("a", T0, "logs/a.jsonl")
    board.record_process("a", pid=100, pgid=100, proc_start_time=T0)

    requeued = board.requeue_interrupted("a", T0 + 7)
    assert (requeued.status, requeued.attempts, requeued.ready_at) == (
        TaskStatus.PENDING,
        0,
        T0 + 7,
    )
    assert (requeued.pid, requeued.pgid, requeued.proc_start_time) == (None, None, None)
    assert board.mark_active("a", T0 + 8, "logs/a.jsonl").attempts == 1
    board.requeue_interrupted("a", T0 + 9)
    with pytest.raises(InvalidTransitionError, match="cannot requeue task 'a': it is pending"):
        board.requeue_interrupted("a", T0 + 9)


def test_a_completed_task_can_never_start_again(board: TaskBoard) -> None:
    submit(board, mail("a"))
    run(board, "a")
    with pytest.raises(InvalidTransitionError) as refused:
        board.mark_active("a", T0, "logs/a.jsonl")
    assert refused.value.action == "start"
    assert refused.value.status is TaskStatus.COMPLETED
    assert must_get(board, "a").attempts == 1
    with pytest.raises(InvalidTransitionError):
        board.record_process("a", pid=1, pgid=1, proc_start_time=None)


def test_handoffs_go_back_to_the_queue_and_flag_too_many(board: TaskBoard) -> None:
    submit(board, mail("a"))
    for expected in (1, 2, 3):
        board.mark_active("a", T0, "logs/a.jsonl")
        handed = board.mark_handoff("a", T0 + expected, max_handoffs=2, usage=OK)
        assert (handed.status, handed.attempts, handed.handoffs) == (
            TaskStatus.PENDING,
            0,
            expected,
        )
        assert handed.needs_attention is (expected > 2)
    assert handed.cost_usd == pytest.approx(0.75)


# --- reads ---------------------------------------------------------------------------


def test_reads_for_status_and_listing(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a"))
    submit(board, mail("f", to="frontend"))
    submit(board, mail("g", to="frontend"))
    board.mark_active("g", T0, "logs/g.jsonl")

    counts = board.counts()
    assert counts == {
        TaskStatus.PENDING: 2,
        TaskStatus.BLOCKED: 1,
        TaskStatus.ACTIVE: 1,
        TaskStatus.COMPLETED: 0,
        TaskStatus.FAILED: 0,
        TaskStatus.CANCELLED: 0,
        TaskStatus.AWAITING_APPROVAL: 0,
    }
    assert board.queued_by_recipient() == {"backend": 2, "frontend": 1}
    assert [t.id for t in board.active_tasks()] == ["g"]
    assert [t.id for t in board.list_tasks()] == ["g", "f", "b", "a"]
    assert [t.id for t in board.list_tasks(limit=2)] == ["g", "f"]
    assert [t.id for t in board.list_tasks(status=TaskStatus.PENDING)] == ["f", "a"]
    assert [t.id for t in board.list_tasks(recipient="backend")] == ["b", "a"]
    assert [t.id for t in board.list_tasks(status=TaskStatus.PENDING, recipient="frontend")] == [
        "f"
    ]
    assert board.get("nope") is None
    assert board.waits_on("nope") == []


def test_task_json_has_the_interface_shape(board: TaskBoard) -> None:
    submit(board, mail("a"))
    submit(board, mail("b", "a", priority="high"), now=T0 + 1)
    run(board, "a", now=T0 + 2)

    shown = must_get(board, "a").to_json()
    assert {
        "id",
        "from",
        "to",
        "type",
        "status",
        "depends_on",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "exit_code",
        "cost_usd",
        "result",
    } <= shown.keys()
    assert shown["from"] == "concierge"
    assert shown["status"] == "completed"
    assert shown["created_at"] == "2027-01-15T08:00:00.000Z"
    assert shown["finished_at"] == "2027-01-15T08:00:03.000Z"
    assert (shown["exit_code"], shown["result"], shown["attempts"]) == (0, "done", 1)

    pending = must_get(board, "b").to_json()
    assert pending["depends_on"] == ["a"]
    assert pending["priority"] == "high"
    assert pending["started_at"] is None
    assert pending["needs_attention"] is False


# --- durability and readers ----------------------------------------------------------


def test_everything_survives_close_and_reopen(board_path: Path) -> None:
    with TaskBoard.open(board_path) as board:
        submit(board, mail("a"))
        submit(board, mail("b", "a", priority="urgent"))
        run(board, "a", BOOM)
        run(board, "a", OK, now=T0 + 50)
        before = [board.get("a"), board.get("b")]
        counts = board.counts()

    with TaskBoard.open(board_path) as board:
        assert [board.get("a"), board.get("b")] == before
        assert board.counts() == counts
        assert board.total_cost() == pytest.approx(0.75)
        assert board.record_message(mail("a"), digest(mail("a")), T0) is RecordOutcome.IDENTICAL
        assert board.mark_active("b", T0 + 60, "logs/b.jsonl").attempts == 1


def test_a_reader_sees_commits_while_the_writer_stays_open(board_path: Path) -> None:
    with TaskBoard.open(board_path) as writer:
        submit(writer, mail("a"))
        with TaskBoard.open_readonly(board_path) as reader:
            assert reader.read_only
            assert status(reader, "a") is TaskStatus.PENDING

            with writer.transaction():
                submit(writer, mail("b"))
                writer.mark_active("a", T0, "logs/a.jsonl")
                assert not reader.has_task("b")  # not committed yet
                assert status(reader, "a") is TaskStatus.PENDING
            assert reader.has_task("b")
            assert status(reader, "a") is TaskStatus.ACTIVE
            assert reader.counts()[TaskStatus.ACTIVE] == 1

            with pytest.raises(BoardReadOnlyError):
                reader.record_message(mail("c"), "x", T0)
            with pytest.raises(BoardReadOnlyError):
                reader.cancel("a", T0)
            assert not writer.has_task("c")
            assert status(writer, "a") is TaskStatus.ACTIVE


def test_sqlite_itself_refuses_writes_through_a_reader_connection(board_path: Path) -> None:
    TaskBoard.open(board_path).close()
    uri = f"{board_path.resolve().as_uri()}?mode=ro"
    with (
        contextlib.closing(sqlite3.connect(uri, uri=True)) as conn,
        pytest.raises(sqlite3.OperationalError, match="readonly"),
    ):
        conn.execute("DELETE FROM tasks")
    with TaskBoard.open_readonly(board_path) as reader:
        assert reader.list_tasks() == []


def test_a_reader_needs_an_existing_board(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "board.sqlite"
    with pytest.raises(BoardNotFoundError, match="does not exist") as caught:
        TaskBoard.open_readonly(missing)
    assert caught.value.path == missing
    assert not missing.parent.exists()


def test_a_file_that_is_not_a_board_is_reported(tmp_path: Path) -> None:
    junk = tmp_path / "board.sqlite"
    junk.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(BoardOpenError, match="not a usable task board"):
        TaskBoard.open(junk)
    with pytest.raises(BoardOpenError):
        TaskBoard.open_readonly(junk)


def test_a_board_from_a_newer_version_is_refused(board_path: Path) -> None:
    TaskBoard.open(board_path).close()
    with contextlib.closing(sqlite3.connect(board_path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(BoardOpenError, match="schema 99"):
        TaskBoard.open(board_path)
    with pytest.raises(BoardOpenError, match="schema 99"):
        TaskBoard.open_readonly(board_path)


def test_the_writer_uses_wal_and_records_its_schema_version(board_path: Path) -> None:
    TaskBoard.open(board_path).close()
    with contextlib.closing(sqlite3.connect(board_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)


def test_the_scheduling_queries_search_an_index(board: TaskBoard, board_path: Path) -> None:
    for n in range(50):
        submit(board, mail(f"t-{n}", to=f"e{n % 5}", priority=list(Priority)[n % 4]))
        if n % 3 == 0:
            run(board, f"t-{n}")
    with contextlib.closing(sqlite3.connect(board_path)) as conn:
        plan = [
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + board_sql.NEXT_READY, ("e1", T0))
        ]
        wake = [
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + board_sql.NEXT_WAKEUP, (T0,))
        ]
    assert any("USING INDEX tasks_queue (status=? AND recipient=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN") or "TEMP B-TREE" in step for step in plan), plan
    assert wake, wake
    assert all("USING INDEX tasks_wakeup" in step for step in wake), wake


def test_a_board_still_being_created_reads_as_no_board_yet(tmp_path: Path) -> None:
    """Between the daemon creating the file and its schema, readers see no board."""
    path = tmp_path / "board.sqlite"
    sqlite3.connect(path).close()  # the file exists, the schema does not yet
    with pytest.raises(BoardNotReadyError, match="being created"):
        TaskBoard.open_readonly(path)
    assert TaskBoard.open_readonly_if_ready(path) is None
    assert TaskBoard.open_readonly_if_ready(tmp_path / "missing.sqlite") is None
    TaskBoard.open(path).close()
    ready = TaskBoard.open_readonly_if_ready(path)
    assert ready is not None
    ready.close()
