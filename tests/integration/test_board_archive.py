"""The board archive against real SQLite files: what moves, and ids that stay answered."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent_pool.board import (
    BoardReadOnlyError,
    DependencyCycleError,
    RecordOutcome,
    TaskBoard,
    TaskRecord,
    TaskStatus,
)
from agent_pool.board import archive as board_archive
from agent_pool.board import sql as board_sql
from agent_pool.mail import Message, MessageType
from agent_pool.pool.layout import PoolLayout
from tests.conftest import CliEnv
from tests.integration.test_board import BOOM, T0, digest, mail, must_get, run, submit

# Tasks finished before this are old enough to archive in these tests.
CUTOFF = T0 + 1000


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    return tmp_path / "board-archive.db"


@pytest.fixture
def board(tmp_path: Path, archive_path: Path) -> Iterator[TaskBoard]:
    with TaskBoard.open(tmp_path / "board.sqlite", archive=archive_path) as opened:
        yield opened


def archive_all(board: TaskBoard, archive_path: Path, before: float = CUTOFF) -> int:
    moved = total = board.archive_finished(archive_path, before=before, limit=2)
    while moved:
        moved = board.archive_finished(archive_path, before=before, limit=2)
        total += moved
    return total


def hot_ids(board: TaskBoard) -> set[str]:
    return {task.id for task in board.list_tasks()}


def archived(board: TaskBoard, task_id: str) -> TaskRecord:
    task = must_get(board, task_id)
    assert task.archived, task_id
    return task


# --- what moves ------------------------------------------------------------------------


def test_only_old_finished_tasks_move(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("done"))
    run(board, "done")
    submit(board, mail("broken"))
    run(board, "broken", BOOM, max_attempts=1)
    submit(board, mail("dropped"))
    board.cancel("dropped", T0 + 5)
    submit(board, mail("recent"))
    run(board, "recent", now=CUTOFF)
    submit(board, mail("waiting"))
    submit(board, mail("running"))
    board.mark_active("running", T0, "logs/running.jsonl")
    submit(board, mail("backing-off"))
    run(board, "backing-off", BOOM)  # failed once, back to pending after a backoff
    before = {task_id: must_get(board, task_id) for task_id in ("done", "broken", "dropped")}

    assert archive_all(board, archive_path) == 3

    assert hot_ids(board) == {"recent", "waiting", "running", "backing-off"}
    for task_id, record in before.items():
        assert not board.has_task(task_id)
        assert archived(board, task_id) == replace(record, archived=True)
    assert board.archived_count() == 3
    assert not must_get(board, "recent").archived


def test_a_task_something_unfinished_depends_on_stays(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("base"))
    run(board, "base")
    submit(board, mail("waiter", "base", "ghost"))  # blocked on a missing task
    submit(board, mail("root"))
    run(board, "root", BOOM, max_attempts=1)
    submit(board, mail("leaf", "root"))  # born failed: finished, so no anchor

    assert archive_all(board, archive_path) == 2
    assert hot_ids(board) == {"base", "waiter"}
    assert archived(board, "leaf").cascaded_from == "root"

    board.cancel("waiter", T0 + 10)
    assert archive_all(board, archive_path) == 2
    assert hot_ids(board) == set()
    assert archived(board, "waiter").depends_on == ("base", "ghost")


def test_limit_moves_small_batches_earliest_finished_first(
    board: TaskBoard, archive_path: Path
) -> None:
    for n in range(7):
        submit(board, mail(f"t-{n}"))
    for n in reversed(range(7)):  # t-6 finishes first
        run(board, f"t-{n}", now=T0 + 100 - n)

    batches = []
    while moved := board.archive_finished(archive_path, before=CUTOFF, limit=3):
        batches.append(moved)
        if moved == 3:
            assert hot_ids(board) == {f"t-{n}" for n in range(7 - sum(batches))}
    assert batches == [3, 3, 1]
    assert board.archive_finished(archive_path, before=CUTOFF, limit=0) == 0


def test_counts_drop_and_costs_stay(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("a"))
    run(board, "a")
    submit(board, mail("b", to="frontend"))
    run(board, "b", BOOM, max_attempts=1)
    submit(board, mail("c"))
    cost, by_recipient = board.total_cost(), board.cost_by_recipient()
    assert cost == pytest.approx(0.75)

    assert archive_all(board, archive_path) == 2

    counts = board.counts()
    assert (counts[TaskStatus.COMPLETED], counts[TaskStatus.FAILED]) == (0, 0)
    assert counts[TaskStatus.PENDING] == 1
    assert board.total_cost() == pytest.approx(cost)
    assert board.cost_by_recipient() == pytest.approx(by_recipient)
    assert board.archived_count() == 2


def test_no_archive_file_until_something_moves(tmp_path: Path, archive_path: Path) -> None:
    with TaskBoard.open(tmp_path / "board.sqlite") as board:
        submit(board, mail("a", "ghost"))
        assert board.get("ghost") is None
        assert board.archive_path is None
        assert board.archive_finished(archive_path, before=CUTOFF) == 0
        assert board.archive_path == archive_path  # adopted, for lookups from now on
        assert board.archived_count() == 0
        assert board.prune_archive(0) == 0
    assert not archive_path.exists()


# --- ids that left the board -----------------------------------------------------------


def test_a_dependency_on_an_archived_task_counts_as_on_the_board(
    board: TaskBoard, archive_path: Path
) -> None:
    submit(board, mail("done"))
    run(board, "done")
    submit(board, mail("broken"))
    run(board, "broken", BOOM, max_attempts=1)
    submit(board, mail("dropped"))
    board.cancel("dropped", T0)
    assert archive_all(board, archive_path) == 3

    after_done = submit(board, mail("after-done", "done"), now=CUTOFF)
    assert after_done.status is TaskStatus.PENDING
    assert board.waits_on("after-done") == []

    on_failed = submit(board, mail("on-failed", "broken"), now=CUTOFF)
    assert on_failed.status is TaskStatus.FAILED
    assert on_failed.failure_reason == "dependency broken failed"
    assert on_failed.cascaded_from == "broken"
    assert on_failed.finished_at == CUTOFF

    on_cancelled = submit(board, mail("on-cancelled", "dropped"))
    assert on_cancelled.status is TaskStatus.CANCELLED
    assert on_cancelled.failure_reason == "dependency dropped was cancelled"

    # A task born failed from the archive cascades on to what waited for it.
    submit(board, mail("leaf", "middle"))
    submit(board, mail("middle", "broken"))
    assert must_get(board, "leaf").status is TaskStatus.FAILED
    assert must_get(board, "leaf").cascaded_from == "middle"


def test_an_archived_dependency_does_not_hold_back_an_unblock(
    board: TaskBoard, archive_path: Path
) -> None:
    submit(board, mail("done"))
    run(board, "done")
    assert archive_all(board, archive_path) == 1
    submit(board, mail("other"))
    submit(board, mail("both", "done", "other"))
    assert board.waits_on("both") == [("other", "pending")]

    assert run(board, "other", now=CUTOFF).unblocked == ("both",)
    assert must_get(board, "both").status is TaskStatus.PENDING


def test_a_retry_finds_its_archived_dependency_done(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("done"))
    run(board, "done")
    assert archive_all(board, archive_path) == 1
    submit(board, mail("next", "done"), now=CUTOFF)
    run(board, "next", BOOM, now=CUTOFF, max_attempts=1)

    assert board.retry("next", CUTOFF + 10).status is TaskStatus.PENDING


def test_an_archived_id_is_a_known_id(board: TaskBoard, archive_path: Path) -> None:
    original = mail("t-1", body="Version one.\n")
    submit(board, original)
    run(board, "t-1")
    assert archive_all(board, archive_path) == 1

    assert board.record_message(original, digest(original), CUTOFF) is RecordOutcome.IDENTICAL
    changed = mail("t-1", body="Version two.\n")
    assert board.record_message(changed, digest(changed), CUTOFF) is RecordOutcome.CONFLICT
    notice = Message(
        id="t-1", sender="backend", to="concierge", type=MessageType.NOTIFY, body="Hi.\n"
    )
    assert board.record_message(notice, digest(notice), CUTOFF) is RecordOutcome.CONFLICT

    assert not board.has_task("t-1")
    assert archived(board, "t-1").body == "Version one.\n"
    assert board.messages_to("concierge") == []


def test_a_cycle_through_an_archived_task_is_refused(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("a", "n"))  # n is missing for now
    board.cancel("a", T0)
    assert archive_all(board, archive_path) == 1

    closing = mail("n", "a")
    with pytest.raises(DependencyCycleError) as caught:
        board.record_message(closing, digest(closing), CUTOFF)
    assert caught.value.cycle == ["n", "a", "n"]
    assert board.get("n") is None


def test_an_archived_task_json_says_so(board: TaskBoard, archive_path: Path) -> None:
    submit(board, mail("a"))
    run(board, "a")
    hot = must_get(board, "a").to_json()
    assert "archived" not in hot

    assert archive_all(board, archive_path) == 1

    shown = must_get(board, "a").to_json()
    assert shown.pop("archived") is True
    assert shown == hot


def test_a_reader_finds_archived_tasks_once_the_archive_exists(
    tmp_path: Path, board: TaskBoard, archive_path: Path
) -> None:
    submit(board, mail("a"))
    run(board, "a")
    with TaskBoard.open_readonly(board.path, archive=archive_path) as reader:
        assert board.archive_finished(archive_path, before=T0) == 0
        assert not archive_path.exists()
        assert not must_get(reader, "a").archived

        assert archive_all(board, archive_path) == 1
        assert archived(reader, "a").status is TaskStatus.COMPLETED
        assert reader.archived_count() == 1
        assert reader.waits_on("a") == []
        with pytest.raises(BoardReadOnlyError):
            reader.prune_archive(0)
        with pytest.raises(BoardReadOnlyError):
            reader.archive_finished(archive_path, before=CUTOFF)
    with TaskBoard.open_readonly(board.path) as blind:
        assert blind.get("a") is None  # no archive named: the board alone


def test_task_show_reads_an_archived_task(cli: CliEnv) -> None:
    assert cli.run("init", "--expert", "backend").code == 0
    layout = PoolLayout(cli.cwd / ".agent-pool")
    layout.runtime_dir.mkdir(mode=0o700, exist_ok=True)
    with TaskBoard.open(layout.board_db, archive=layout.board_archive_db) as board:
        submit(board, mail("old-1"))
        run(board, "old-1")
        assert archive_all(board, layout.board_archive_db) == 1
        submit(board, mail("new-1", "old-1"), now=CUTOFF)

    shown = cli.run("task", "show", "old-1", "--json")
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    assert (data["id"], data["status"], data["archived"]) == ("old-1", "completed", True)
    assert data["result"] == "done"
    text = cli.run("task", "show", "old-1")
    assert "archived:" in text.out
    assert json.loads(cli.run("task", "show", "new-1", "--json").out)["waits_on"] == {}
    listed = json.loads(cli.run("tasks", "--json").out)
    assert [task["id"] for task in listed] == ["new-1"]
    missing = cli.run("task", "show", "never-was")
    assert (missing.code, missing.err.strip()) == (
        1,
        "agent-pool: error: no task 'never-was' on the board",
    )


# --- crash safety and pruning ----------------------------------------------------------


def test_a_crash_between_copy_and_delete_is_finished_next_time(
    tmp_path: Path, archive_path: Path
) -> None:
    path = tmp_path / "board.sqlite"
    with TaskBoard.open(path, archive=archive_path) as board:
        submit(board, mail("a"))
        run(board, "a")
        submit(board, mail("b"))
        run(board, "b", BOOM, max_attempts=1)
        # Step one only, then the daemon dies before deleting.
        assert board._copy_to_archive(archive_path, before=CUTOFF, limit=10) == ("a", "b")

    with TaskBoard.open(path, archive=archive_path) as board:
        assert hot_ids(board) == {"a", "b"}  # on both: the board's row wins
        assert not must_get(board, "a").archived
        assert board.archived_count() == 2
        # Meanwhile b is retried and completes: the archive's copy is out of date.
        board.retry("b", CUTOFF)
        run(board, "b", now=CUTOFF)

        assert board.archive_finished(archive_path, before=CUTOFF, limit=10) == 1
        assert hot_ids(board) == {"b"}
        assert board.archived_count() == 2
        assert archived(board, "a").status is TaskStatus.COMPLETED

        assert archive_all(board, archive_path, before=CUTOFF + 10) == 1
        assert board.archived_count() == 2
        b = archived(board, "b")
        assert (b.status, b.attempts, b.finished_at) == (TaskStatus.COMPLETED, 1, CUTOFF + 1)
        assert board.counts()[TaskStatus.COMPLETED] == 0


def test_prune_deletes_the_earliest_finished_beyond_the_cap(
    board: TaskBoard, archive_path: Path
) -> None:
    for n in range(6):
        submit(board, mail(f"t-{n}", *([f"t-{n - 1}"] if n else [])))
        run(board, f"t-{n}", now=T0 + 10 * n)
    assert archive_all(board, archive_path) == 6

    assert board.prune_archive(10) == 0
    assert board.prune_archive(4, limit=1) == 1
    assert board.prune_archive(4) == 1
    assert board.archived_count() == 4
    assert board.get("t-0") is None
    assert board.get("t-1") is None
    assert archived(board, "t-2").depends_on == ("t-1",)

    # A pruned id is forgotten: reusable, and a dependency on it is missing.
    assert submit(board, mail("t-0")).status is TaskStatus.PENDING
    assert submit(board, mail("after", "t-1")).status is TaskStatus.BLOCKED
    with pytest.raises(ValueError, match="at least 0"):
        board.prune_archive(-1)
    assert board.prune_archive(0, limit=3) == 3
    assert board.archived_count() == 1
    with contextlib.closing(sqlite3.connect(archive_path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)
        assert conn.execute("SELECT task_id FROM deps").fetchall() == [("t-5",)]


# --- misuse and plans -------------------------------------------------------------------


def test_archiving_refuses_misuse(board: TaskBoard, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="archive is"):
        board.archive_finished(tmp_path / "elsewhere.db", before=CUTOFF)
    with board.transaction(), pytest.raises(RuntimeError, match="inside a board transaction"):
        board.archive_finished(board.archive_path or tmp_path, before=CUTOFF)


def test_the_layout_names_the_archive_beside_the_board(tmp_path: Path) -> None:
    layout = PoolLayout(tmp_path / ".agent-pool")
    assert layout.board_archive_db == layout.runtime_dir / "board-archive.db"
    assert layout.board_archive_db != layout.board_db


def test_the_archive_queries_search_an_index(board: TaskBoard, archive_path: Path) -> None:
    for n in range(30):
        submit(board, mail(f"t-{n}", *([f"t-{n - 1}"] if n else [])))
        run(board, f"t-{n}")
        if n >= 20:
            submit(board, mail(f"p-{n}", f"t-{n}"))
    assert archive_all(board, archive_path) == 20

    def plan(conn: sqlite3.Connection, query: str, params: tuple[object, ...]) -> list[str]:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query, params)]

    with contextlib.closing(sqlite3.connect(board.path)) as conn:
        moves = plan(conn, board_archive.ARCHIVABLE, (CUTOFF, 10))
        unfinished = plan(conn, board_sql.UNFINISHED_DEPS, ("t-3",))
    assert any("USING INDEX tasks_finished" in step for step in moves), moves
    assert not any("TEMP B-TREE" in step for step in moves), moves
    assert not any(step.startswith("SCAN") for step in unfinished), unfinished
    with contextlib.closing(sqlite3.connect(archive_path)) as conn:
        for query in (board_sql.GET_TASK, board_sql.MESSAGE_DIGEST, board_sql.DEPENDANTS_OF):
            steps = plan(conn, query, ("t-2",))
            assert not any(step.startswith("SCAN") for step in steps), (query, steps)
