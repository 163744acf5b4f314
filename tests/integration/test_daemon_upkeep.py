"""Bounded growth in a running daemon: logs, index and board history are archived."""

from __future__ import annotations

import json

from tests.harness import EventCollector, Pool, wait_until

FAST_UPKEEP = """
[defaults]
log_retention = "1s"
index_max_rows = 1

[daemon]
upkeep_interval = "1s"
board_retention = "1s"
"""


def test_upkeep_archives_logs_caps_the_index_and_moves_old_tasks_off_the_board(
    pool: Pool,
) -> None:
    pool.configure(FAST_UPKEEP)
    pool.start()
    stream = EventCollector(pool)
    try:
        first = pool.post("backend", "first\nfake: text one\nfake: cost 0.5")
        second = pool.post("backend", "second\nfake: text two")
        pool.wait_status(first, "completed")
        pool.wait_status(second, "completed")
        logs_dir = pool.layout.expert_dir("backend") / "logs"
        archived = [logs_dir / "archive" / f"{task}.jsonl.gz" for task in (first, second)]
        wait_until(
            lambda: (
                all(path.is_file() for path in archived) and pool.status()["archived_tasks"] == 2
            ),
            30,
            "both logs and both tasks to be archived",
        )
        report = stream.wait_for(lambda e: e["type"] == "upkeep.done" and e["tasks_archived"])
        assert report["errors"] == []
        assert (logs_dir / "archive" / f"{first}.jsonl.gz").is_file()
        assert not (logs_dir / f"{first}.jsonl").exists()
        index_rows = [
            line
            for line in (logs_dir / "index.md").read_text().splitlines()
            if line.startswith("| 2")
        ]
        assert len(index_rows) == 1

        # Still readable by the user, from the archives.
        shown = pool.cli.run("logs", first)
        assert shown.code == 0, shown.err
        assert "one" in shown.out
        task = pool.cli.run("task", "show", first, "--json")
        assert task.code == 0, task.err
        record = json.loads(task.out)
        assert record["archived"] is True
        assert record["status"] == "completed"

        status = pool.status()
        assert status["archived_tasks"] == 2
        assert status["tasks"]["completed"] == 0  # the hot board no longer holds them
        assert status["cost_usd"] >= 0.5  # money spent stays spent
        assert status["cost_today_usd"] >= 0.5
        # Token usage per agent and per pool is kept too, archived tasks included.
        backend = next(agent for agent in status["experts"] if agent["name"] == "backend")
        assert backend["input_tokens"] > 0
        assert backend["output_tokens"] > 0
        assert status["tokens"]["input"] == sum(a["input_tokens"] for a in status["experts"])

        # A new task may still depend on an archived one.
        third = pool.post("frontend", "third", depends_on=(first,))
        pool.wait_status(third, "completed")
    finally:
        stream.close()


def test_status_lists_the_newest_dead_letters_with_their_reasons(pool: Pool) -> None:
    pool.start()
    (pool.layout.postoffice / "broken.md").write_text("no front matter here", encoding="utf-8")
    stream = EventCollector(pool)
    try:
        stream.wait_for(lambda e: e["type"] == "mail.dead_letter", timeout=15)
    finally:
        stream.close()
    status = pool.status()
    assert status["dead_letters"] == 1
    (letter,) = status["dead_letter_recent"]
    assert letter["file"] == "broken.md"
    assert "front matter" in letter["reason"]
    shown = pool.cli.run("status")
    assert "broken.md:" in shown.out
