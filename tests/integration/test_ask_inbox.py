"""`agent-pool ask` and `inbox`: questions answered into the user's inbox."""

from __future__ import annotations

import json

from tests.harness import Pool


def test_ask_prints_the_experts_answer_and_inbox_lists_it(pool: Pool) -> None:
    pool.start()
    result = pool.cli.run("ask", "backend", "Which port?\nfake: respond It listens on 8080.")
    assert result.code == 0, result.err
    assert result.out.strip() == "It listens on 8080."
    listed = json.loads(pool.cli.run("inbox", "--json").out)
    assert [item["body"].strip() for item in listed] == ["It listens on 8080."]
    assert listed[0]["from"] == "backend"
    assert listed[0]["type"] == "response"
    question_id = listed[0]["in_reply_to"]
    assert pool.task(question_id) is not None
    human = pool.cli.run("inbox").out
    assert f"from backend (response re {question_id})" in human


def test_ask_times_out_with_a_clear_message(pool: Pool) -> None:
    pool.start()
    result = pool.cli.run("ask", "backend", "slow?\nfake: sleep 5", "--timeout", "0.5")
    assert result.code == 1
    assert "no answer to" in result.err
    assert "within 0.5 s" in result.err


def test_ask_reports_a_failed_question(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_attempts = 1\n")
    pool.start()
    result = pool.cli.run("ask", "backend", "crash?\nfake: exit 3")
    assert result.code == 1
    assert "failed: exited with code 3" in result.err


def test_ask_refuses_unknown_experts_and_a_stopped_daemon(pool: Pool) -> None:
    unknown = pool.cli.run("ask", "nobody", "hello?")
    assert unknown.code == 2
    assert "unknown recipient 'nobody'" in unknown.err
    stopped = pool.cli.run("ask", "backend", "hello?")
    assert stopped.code == 1
    assert "not running" in stopped.err
    assert list(pool.layout.postoffice.glob("*.md")) == []


def test_an_empty_inbox(pool: Pool) -> None:
    assert pool.cli.run("inbox").out.strip() == "your inbox is empty"
    assert json.loads(pool.cli.run("inbox", "--json").out) == []
