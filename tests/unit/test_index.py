"""The per-agent run index: rows appended safely, summaries shortened, search."""

from __future__ import annotations

from pathlib import Path

from agent_pool.session.index import (
    HEADER,
    SUMMARY_MAX_CHARS,
    IndexRow,
    append_index_row,
    format_duration,
    search_index,
    summary_line,
)

T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC


def row(task_id: str = "t-1", summary: str = "Added /health.", **changes: object) -> IndexRow:
    values: dict[str, object] = {
        "finished_at": T0,
        "task_id": task_id,
        "sender": "concierge",
        "type": "task",
        "status": "completed",
        "attempts": 1,
        "turns": 3,
        "cost_usd": 0.0123,
        "duration_ms": 4200,
        "summary": summary,
    }
    values.update(changes)
    return IndexRow(**values)  # type: ignore[arg-type]


def table_cells(line: str) -> list[str]:
    """Split a row the way a Markdown table does: on pipes not escaped by a backslash."""
    cells, current, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(current.strip())
            current = ""
        else:
            current += char
        escaped = char == "\\" and not escaped
    cells.append(current.strip())
    return cells


def test_first_row_creates_the_file_with_a_header(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    append_index_row(logs, row())
    append_index_row(logs, row("t-2", "Fixed it.", status="failed", attempts=3))
    text = (logs / "index.md").read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    first, second = text[len(HEADER) :].splitlines()
    assert table_cells(first) == [
        "2026-11-18 11:06:40",
        "t-1",
        "concierge",
        "task",
        "completed",
        "1",
        "3",
        "$0.0123",
        "4.2s",
        "Added /health.",
    ]
    cells = table_cells(second)
    assert (cells[1], cells[4], cells[5], cells[9]) == ("t-2", "failed", "3", "Fixed it.")
    assert len(table_cells(HEADER.splitlines()[0])) == 10


def test_pipes_newlines_and_control_characters_never_break_the_table(tmp_path: Path) -> None:
    nasty = "a | b || c\r\nsecond line\x1b[31m"
    append_index_row(tmp_path, row(summary=nasty, sender="x|y"))
    [line] = (tmp_path / "index.md").read_text(encoding="utf-8").splitlines()[2:]
    cells = table_cells(line)
    assert len(cells) == 10
    assert cells[2] == "x\\|y"
    assert cells[-1] == "a \\| b \\|\\| c"


def test_summary_is_the_first_line_cut_at_a_character() -> None:
    assert summary_line("\n\n  Done: all good.  \nmore detail") == "Done: all good."
    assert summary_line(None) == ""
    long = "é😀" * 200
    short = summary_line(long)
    assert len(short) == SUMMARY_MAX_CHARS
    assert short.endswith("…")
    assert long.startswith(short[:-1])
    short.encode("utf-8")  # every character whole: encodes without error


def test_a_torn_last_line_does_not_swallow_the_next_row(tmp_path: Path) -> None:
    append_index_row(tmp_path, row("t-1"))
    with (tmp_path / "index.md").open("a", encoding="utf-8") as index:
        index.write("| 2026-11-18 | t-half")  # a crash mid-write
    append_index_row(tmp_path, row("t-2"))
    lines = (tmp_path / "index.md").read_text(encoding="utf-8").splitlines()
    assert lines[-2] == "| 2026-11-18 | t-half"
    assert table_cells(lines[-1])[1] == "t-2"


def test_an_empty_index_file_gets_its_header(tmp_path: Path) -> None:
    (tmp_path / "index.md").touch()
    append_index_row(tmp_path, row())
    assert (tmp_path / "index.md").read_text(encoding="utf-8").startswith(HEADER)


def test_search_is_case_insensitive_and_skips_the_header(tmp_path: Path) -> None:
    append_index_row(tmp_path, row("t-1", "Added the HEALTH endpoint"))
    append_index_row(tmp_path, row("t-2", "Renamed a | column"))
    append_index_row(tmp_path, row("t-3", "health check again", status="failed"))
    assert [table_cells(line)[1] for line in search_index(tmp_path, "health")] == ["t-1", "t-3"]
    assert [table_cells(line)[1] for line in search_index(tmp_path, "a | col")] == ["t-2"]
    assert [table_cells(line)[1] for line in search_index(tmp_path, "FAILED")] == ["t-3"]
    assert len(search_index(tmp_path, "")) == 3
    assert search_index(tmp_path, "summary") == []  # the header is not a row
    assert [table_cells(line)[1] for line in search_index(tmp_path, "", limit=2)] == ["t-2", "t-3"]


def test_search_without_an_index_finds_nothing(tmp_path: Path) -> None:
    assert search_index(tmp_path / "missing", "x") == []


def test_durations_read_naturally() -> None:
    assert format_duration(0) == "0.0s"
    assert format_duration(4200) == "4.2s"
    assert format_duration(125_000) == "2m05s"
    assert format_duration(3_725_000) == "1h02m"
