"""Reading the result event and deciding whether a session truly succeeded."""

from __future__ import annotations

from typing import Any

import pytest

from agent_pool.session import ResultEvent, Verdict, judge


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "num_turns": 2,
        "result": "all done",
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 1200, "output_tokens": 340, "cache_read_input_tokens": 9},
        "permission_denials": [],
        "terminal_reason": "completed",
        "api_error_status": None,
        "session_id": "abc",
        "duration_ms": 4567,
    }
    base.update(changes)
    return base


def result(**changes: Any) -> ResultEvent:
    return ResultEvent.from_event(event(**changes))


def test_from_event_reads_every_field() -> None:
    parsed = result(
        permission_denials=[{"tool_name": "Write", "tool_use_id": "t1", "tool_input": {}}, "Bash"]
    )
    assert parsed == ResultEvent(
        subtype="success",
        is_error=False,
        result="all done",
        total_cost_usd=0.0123,
        input_tokens=1200,
        output_tokens=340,
        num_turns=2,
        duration_ms=4567,
        permission_denials=("Write", "Bash"),
        terminal_reason="completed",
        api_error_status=None,
        session_id="abc",
    )


def test_from_event_tolerates_missing_keys() -> None:
    parsed = ResultEvent.from_event({"type": "result"})
    assert parsed.subtype == ""
    assert parsed.total_cost_usd == 0.0
    assert parsed.permission_denials == ()
    # A result that does not say `is_error: false` is never taken for a clean run.
    assert parsed.is_error
    assert not judge(0, parsed).success


def test_from_event_tolerates_wrong_types() -> None:
    parsed = ResultEvent.from_event(
        {
            "subtype": 3,
            "is_error": "false",
            "result": ["x"],
            "total_cost_usd": "1.5",
            "usage": "lots",
            "num_turns": True,
            "duration_ms": 12.0,
            "permission_denials": "Write",
            "terminal_reason": 7,
            "api_error_status": "529",
            "session_id": None,
        }
    )
    assert parsed == ResultEvent(is_error=True, duration_ms=12)


def test_unreadable_denial_entries_still_count() -> None:
    parsed = result(permission_denials=[{"tool_use_id": "t1"}, 42])
    assert parsed.permission_denials == ("unknown tool", "unknown tool")


def test_success() -> None:
    assert judge(0, result()) == Verdict(True, None)


def test_adopted_session_with_unknown_exit_code_and_clean_result() -> None:
    assert judge(None, result()) == Verdict(True, None)


def test_adopted_session_without_result() -> None:
    assert judge(None, None) == Verdict(False, "no result event in the session output")


def test_exit_code() -> None:
    assert judge(3, None) == Verdict(False, "exited with code 3")
    # A clean-looking result does not excuse a non-zero exit.
    assert judge(3, result()) == Verdict(False, "exited with code 3")


@pytest.mark.parametrize(("code", "name"), [(-9, "SIGKILL"), (-15, "SIGTERM"), (-6, "SIGABRT")])
def test_killed_by_signal(code: int, name: str) -> None:
    assert judge(code, result()) == Verdict(False, f"killed by signal {name}")


def test_unknown_signal_number() -> None:
    assert judge(-99, None) == Verdict(False, "killed by signal signal 99")


def test_no_result_event() -> None:
    assert judge(0, None) == Verdict(False, "no result event in the session output")


def test_api_error() -> None:
    verdict = judge(1, result(is_error=True, api_error_status=529, result="API Error: overloaded"))
    assert verdict == Verdict(False, "API error (status 529): API Error: overloaded")


def test_error_result_with_success_subtype() -> None:
    verdict = judge(1, result(is_error=True, result="something broke"))
    assert verdict == Verdict(False, "error result (success): something broke")


def test_error_subtype() -> None:
    verdict = judge(0, result(subtype="error_during_execution", is_error=True, result=""))
    assert verdict == Verdict(False, "error result (error_during_execution)")


def test_max_turns() -> None:
    verdict = judge(0, result(subtype="error_max_turns", is_error=True, num_turns=8))
    assert verdict == Verdict(False, "exceeded max turns (8)")


def test_denied_tools_are_listed_once_in_order() -> None:
    denials = [{"tool_name": name} for name in ("Write", "Bash", "Write")]
    assert judge(0, result(permission_denials=denials)) == Verdict(
        False, "tool denied: Write, Bash"
    )


def test_stop_reason_wins() -> None:
    verdict = judge(-15, result(), stop_reason="timed out after 30m")
    assert verdict == Verdict(False, "timed out after 30m")
    assert judge(0, result(), stop_reason="cancelled") == Verdict(False, "cancelled")


def test_long_result_text_is_cut_to_one_short_line() -> None:
    text = "line one\n" + "word " * 200
    reason = judge(1, result(is_error=True, api_error_status=500, result=text)).reason
    assert reason is not None
    assert "\n" not in reason
    assert reason.startswith("API error (status 500): line one word")
    assert reason.endswith("…")
    assert len(reason) < 240
