"""What a session is given and what is kept after it: prompts, notices, index, logs."""

from __future__ import annotations

from agent_pool.mail import MessageType
from tests.harness import Pool, wait_until


def test_the_prompt_carries_knowledge_notices_and_the_task(pool: Pool) -> None:
    backend = pool.layout.root / "experts" / "backend"
    (backend / "state.md").write_text("# State\nThe API uses FastAPI.\n")
    (backend / "errors.md").write_text("- never edit migrations by hand\n")
    pool.layout.contracts.joinpath("auth-api.md").write_text("POST /login returns a token\n")
    pool.start()
    notice = pool.post(
        "backend", "the schema moved to v2", sender="frontend", type=MessageType.NOTIFY
    )
    task_id = pool.post("backend", "Add the endpoint\nfake: text ok", contracts=("auth-api",))
    pool.wait_status(task_id, "completed")
    [run] = [run for run in pool.invocations() if run["env"]["AGENT_POOL_TASK_ID"] == task_id]
    prompt = run["stdin"]
    for expected in (
        "The API uses FastAPI.",
        "never edit migrations by hand",
        "the schema moved to v2",
        "POST /login returns a token",
        "Add the endpoint",
        "mcp__agent-pool__send_response",
    ):
        assert expected in prompt, expected
    assert prompt.index("The API uses FastAPI.") < prompt.index("Add the endpoint")
    inbox = backend / "inbox"
    # Read notices and finished task mail leave the inbox; nothing is deleted. The board
    # records the end first and the bookkeeping follows at once: wait for it.
    wait_until((inbox / "read" / f"{task_id}.md").exists, 10, "the task mail to be read")
    assert not (inbox / "notices" / f"{notice}.md").exists()
    assert (inbox / "notices" / "read" / f"{notice}.md").exists()
    assert not (inbox / f"{task_id}.md").exists()


def test_a_notice_is_shown_once(pool: Pool) -> None:
    pool.start()
    pool.post("backend", "heads up: new lint rules", sender="frontend", type=MessageType.NOTIFY)
    first = pool.post("backend", "task one\nfake: text ok")
    pool.wait_status(first, "completed")
    second = pool.post("backend", "task two\nfake: text ok")
    pool.wait_status(second, "completed")
    prompts = {run["env"]["AGENT_POOL_TASK_ID"]: run["stdin"] for run in pool.invocations()}
    assert "new lint rules" in prompts[first]
    assert "new lint rules" not in prompts[second]


def test_over_budget_state_is_trimmed_and_curation_requested(pool: Pool) -> None:
    pool.configure('[defaults]\nstate_max_bytes = "1KiB"\n')
    backend = pool.layout.root / "experts" / "backend"
    (backend / "state.md").write_text("".join(f"fact number {n}\n" for n in range(500)))
    pool.start()
    task_id = pool.post("backend", "work\nfake: text ok")
    pool.wait_status(task_id, "completed")
    [run] = pool.invocations()
    assert "fact number 0\n" in run["stdin"]
    assert "fact number 499" not in run["stdin"]
    assert "trimmed" in run["stdin"]
    assert "state.md" in (backend / "curation-requested.md").read_text()


def test_every_run_adds_a_row_to_the_index_and_logs_shows_the_transcript(pool: Pool) -> None:
    pool.configure('[defaults]\nmax_attempts = 2\nretry_backoff = "50ms"\n')
    pool.start()
    good = pool.post("backend", "fake: text everything fine")
    bad = pool.post("backend", "fake: exit 4")
    pool.wait_status(good, "completed")
    pool.wait_status(bad, "failed")
    index = pool.layout.root / "experts" / "backend" / "logs" / "index.md"

    def rows_so_far() -> list[str]:
        lines = index.read_text().splitlines() if index.exists() else []
        return [line for line in lines if good in line or bad in line]

    # The row is written right after the board records the end: wait for the last one.
    rows = wait_until(lambda: len(rows_so_far()) >= 3 and rows_so_far(), 10, "three index rows")
    assert len(rows) == 3  # one success, two failed attempts
    assert any("everything fine" in row and "completed" in row for row in rows)
    assert sum("exited with code 4" in row for row in rows) == 2

    shown = pool.cli.run("logs", good)
    assert shown.code == 0, shown.err
    assert "everything fine" in shown.out
    both = pool.cli.run("logs", bad)
    assert both.code == 0
    assert "attempt" in both.out.lower()
    missing = pool.cli.run("logs", "no-such-task")
    assert missing.code == 1
    assert "no-such-task" in missing.err


def test_session_scratch_folders_are_removed(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: text ok")
    pool.wait_status(task_id, "completed")
    assert list(pool.layout.sessions_dir.iterdir()) == []
