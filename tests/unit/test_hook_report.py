"""The Stop hook's decision, the hook runners and the JSONL records they leave."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from agent_pool.hooks.report import (
    DENIALS_LOG,
    HANDOFF_MARKER,
    HOOKS_LOG,
    REMINDED_MARKER,
    REQUIRE_STATE_MARKER,
    RESPONDED_MARKER,
    STATE_REMINDER,
    STATE_UPDATED_MARKER,
    STOP_REMINDER,
    append_record,
    mark_reminded,
    stop_decision,
    timestamp,
)
from agent_pool.hooks.run import run_pre_tool_use, run_stop
from agent_pool.tools.knowledge import STATE_MARKER

NOW = 1_790_000_000.25


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _stop_input(active: object = False) -> dict[str, object]:
    return {
        "session_id": "s1",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/tmp",
        "hook_event_name": "Stop",
        "stop_hook_active": active,
        "last_assistant_message": "done",
    }


def test_a_session_that_did_not_respond_is_sent_back(tmp_path: Path) -> None:
    code, reason = stop_decision(_stop_input(), session_dir=tmp_path)
    assert code == 2
    assert reason == STOP_REMINDER
    assert "mcp__agent-pool__send_response" in reason
    assert "mcp__agent-pool__update_state" in reason
    assert "\n" not in reason
    assert len(reason) < 200


def test_a_missing_flag_counts_as_the_first_stop(tmp_path: Path) -> None:
    assert stop_decision({}, session_dir=tmp_path)[0] == 2


def test_a_session_that_responded_stops(tmp_path: Path) -> None:
    (tmp_path / RESPONDED_MARKER).write_text("")
    assert stop_decision(_stop_input(), session_dir=tmp_path) == (0, "")


def test_a_handoff_ends_the_session_even_without_a_response(tmp_path: Path) -> None:
    (tmp_path / HANDOFF_MARKER).write_text("# handoff\n")
    assert stop_decision(_stop_input(), session_dir=tmp_path) == (0, "")


@pytest.mark.parametrize("active", [True, "true", 1, None])
def test_a_session_already_sent_back_is_never_sent_back_again(
    tmp_path: Path, active: object
) -> None:
    assert stop_decision(_stop_input(active), session_dir=tmp_path) == (0, "")


def test_our_own_marker_also_prevents_a_second_reminder(tmp_path: Path) -> None:
    mark_reminded(tmp_path)
    assert (tmp_path / REMINDED_MARKER).exists()
    assert stop_decision(_stop_input(False), session_dir=tmp_path) == (0, "")


def test_mark_reminded_tolerates_a_missing_folder(tmp_path: Path) -> None:
    mark_reminded(tmp_path / "gone")


def test_append_record_writes_one_json_line_each(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    assert append_record(log, {"a": 1, "path": "/p/\udcff/é"})
    assert append_record(log, {"b": "two\nlines"})
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {"a": 1, "path": "/p/\udcff/é"}
    assert json.loads(lines[1]) == {"b": "two\nlines"}


def test_append_record_reports_failure_instead_of_raising(tmp_path: Path) -> None:
    assert not append_record(tmp_path / "missing" / "x.jsonl", {"a": 1})


def test_parallel_appends_never_interleave(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"

    def write(worker: int) -> None:
        for index in range(50):
            append_record(log, {"worker": worker, "index": index, "pad": "x" * 2000})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = _lines(log)
    assert len(records) == 400
    assert {(r["worker"], r["index"]) for r in records} == {
        (w, i) for w in range(8) for i in range(50)
    }


@pytest.mark.parametrize("now", [0.0, NOW, 1_790_000_000.9999, 1_790_000_000.001])
def test_timestamp_matches_the_boards_iso_format(now: float) -> None:
    text = timestamp(now)
    parsed = datetime.fromisoformat(text)
    assert abs(parsed.timestamp() - now) < 0.001
    assert text.endswith("+00:00")
    assert len(text.split(".")[1]) == len("000+00:00")


# --- runners: what the hook process does with its stdin -----------------------


def test_run_stop_blocks_once_and_records_both_decisions(tmp_path: Path) -> None:
    stdin = json.dumps(_stop_input()).encode()
    assert run_stop(stdin, session_dir=str(tmp_path), now=NOW) == (2, STOP_REMINDER)
    # Even if Claude Code forgot the flag, the marker makes the second stop final.
    assert run_stop(stdin, session_dir=str(tmp_path), now=NOW + 1) == (0, "")
    records = _lines(tmp_path / HOOKS_LOG)
    assert [(r["event"], r["decision"]) for r in records] == [("stop", "block"), ("stop", "allow")]
    assert records[0]["reason"] == STOP_REMINDER
    assert records[0]["time"] == timestamp(NOW)
    assert not (tmp_path / DENIALS_LOG).exists()


@pytest.mark.parametrize("stdin", [b"", b"not json", b"[1, 2]", b"\xff\xfe\x00", b"[" * 100_000])
def test_run_stop_lets_malformed_input_stop_and_records_it(tmp_path: Path, stdin: bytes) -> None:
    assert run_stop(stdin, session_dir=str(tmp_path), now=NOW) == (0, "")
    (record,) = _lines(tmp_path / HOOKS_LOG)
    assert record["decision"] == "allow"
    assert str(record["reason"]).startswith("malformed hook input")


def test_run_stop_without_a_session_folder_still_decides(tmp_path: Path) -> None:
    stdin = json.dumps(_stop_input()).encode()
    assert run_stop(stdin, session_dir=str(tmp_path / "gone"), now=NOW)[0] == 2


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".agent-pool").mkdir(parents=True)
    (root / "src").mkdir()
    return root


def _pre(
    project: Path, session: Path, hook_input: object, owns: tuple[str, ...] = ("src/**",)
) -> tuple[int, str]:
    stdin = hook_input if isinstance(hook_input, bytes) else json.dumps(hook_input).encode()
    return run_pre_tool_use(
        stdin,
        pool_dir=str(project / ".agent-pool"),
        project_dir=str(project),
        session_dir=str(session),
        owns=owns,
        now=NOW,
    )


def _write_input(project: Path, path: str, tool: str = "Write") -> dict[str, object]:
    return {
        "session_id": "s1",
        "cwd": str(project),
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": {"file_path": path, "content": "x"},
    }


def test_run_pre_tool_use_allows_and_records(project: Path, tmp_path: Path) -> None:
    assert _pre(project, tmp_path, _write_input(project, "src/a.py")) == (0, "")
    (record,) = _lines(tmp_path / HOOKS_LOG)
    assert record == {
        "event": "pre-tool-use",
        "decision": "allow",
        "tool": "Write",
        "path": "src/a.py",
        "reason": "",
        "time": timestamp(NOW),
    }
    assert not (tmp_path / DENIALS_LOG).exists()


def test_run_pre_tool_use_denies_and_records_the_denial(project: Path, tmp_path: Path) -> None:
    code, reason = _pre(project, tmp_path, _write_input(project, "lib/a.py", "Edit"))
    assert code == 2
    assert "src/**" in reason
    (denial,) = _lines(tmp_path / DENIALS_LOG)
    assert denial == {
        "event": "pre-tool-use",
        "tool": "Edit",
        "path": "lib/a.py",
        "reason": reason,
        "time": timestamp(NOW),
    }
    (record,) = _lines(tmp_path / HOOKS_LOG)
    assert record["decision"] == "deny"
    assert record["reason"] == reason


def test_run_pre_tool_use_resolves_relative_paths_against_the_inputs_cwd(
    project: Path, tmp_path: Path
) -> None:
    hook_input = _write_input(project, "a.py")
    hook_input["cwd"] = str(project / "src")
    assert _pre(project, tmp_path, hook_input)[0] == 0
    hook_input["cwd"] = str(project)
    assert _pre(project, tmp_path, hook_input)[0] == 2


@pytest.mark.parametrize(
    "stdin", [b"", b"{", b"null", b'"Write"', b"[]", b'{"tool_input": {}}', b'{"tool_name": 3}']
)
def test_run_pre_tool_use_allows_malformed_input_and_records_it(
    project: Path, tmp_path: Path, stdin: bytes
) -> None:
    assert _pre(project, tmp_path, stdin) == (0, "")
    (record,) = _lines(tmp_path / HOOKS_LOG)
    assert record["decision"] == "allow"
    assert str(record["reason"]).startswith("malformed hook input")
    assert not (tmp_path / DENIALS_LOG).exists()


@pytest.mark.parametrize(
    ("tool_input", "recorded_path"),
    [(None, None), ("x", None), ({}, None), ({"file_path": ""}, ""), ({"file_path": 7}, None)],
)
def test_run_pre_tool_use_denies_a_write_without_a_path(
    project: Path, tmp_path: Path, tool_input: object, recorded_path: str | None
) -> None:
    hook_input = {"tool_name": "Write", "cwd": str(project), "tool_input": tool_input}
    code, reason = _pre(project, tmp_path, hook_input, owns=())
    assert code == 2
    assert "file_path" in reason
    (denial,) = _lines(tmp_path / DENIALS_LOG)
    # The path as the tool call gave it when it is a string, else null.
    assert denial["path"] == recorded_path


def test_run_pre_tool_use_ignores_other_tools(project: Path, tmp_path: Path) -> None:
    hook_input = {"tool_name": "Bash", "cwd": str(project), "tool_input": {"command": "ls"}}
    assert _pre(project, tmp_path, hook_input) == (0, "")


def test_a_task_session_must_also_leave_its_state_current(tmp_path: Path) -> None:
    (tmp_path / REQUIRE_STATE_MARKER).touch()
    assert stop_decision({}, session_dir=tmp_path) == (2, STOP_REMINDER)
    (tmp_path / RESPONDED_MARKER).write_text("r-1")
    assert stop_decision({}, session_dir=tmp_path) == (2, STATE_REMINDER)
    assert stop_decision({"stop_hook_active": True}, session_dir=tmp_path) == (0, "")
    (tmp_path / STATE_UPDATED_MARKER).write_text("now")
    assert stop_decision({}, session_dir=tmp_path) == (0, "")


def test_the_hook_and_the_tool_agree_on_the_state_marker() -> None:
    assert STATE_UPDATED_MARKER == STATE_MARKER
