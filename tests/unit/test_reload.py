"""ConfigWatch: notices edits, waits for a file being written, refuses a bad one."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent_pool.config import load_config
from agent_pool.daemon.reload import SETTLE_SECONDS, ConfigWatch, changed_keys
from agent_pool.pool.create import init_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout


def _watch(tmp_path: Path) -> tuple[ConfigWatch, PoolLayout]:
    (tmp_path / "project").mkdir()
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    init_pool(layout, experts=[])
    home = HomeLayout(tmp_path / "home")
    config = load_config(layout, home, {})
    watch = ConfigWatch(
        (layout.pool_toml, home.config_toml), lambda: load_config(layout, home, {}), config
    )
    return watch, layout


def _write_settled(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    past = time.time() - 10 * SETTLE_SECONDS
    os.utime(path, (past, past))


def test_nothing_changed_means_nothing_to_do(tmp_path: Path) -> None:
    watch, _ = _watch(tmp_path)
    assert watch.check() is None


def test_an_edit_reports_the_keys_that_changed(tmp_path: Path) -> None:
    watch, layout = _watch(tmp_path)
    original = layout.pool_toml.read_text(encoding="utf-8")
    assert "# max_concurrent = 4" in original  # the starter file shows the default
    _write_settled(
        layout.pool_toml, original.replace("# max_concurrent = 4", "max_concurrent = 2", 1)
    )
    reload = watch.check()
    assert reload is not None
    assert reload.config is not None
    assert reload.config.defaults.max_concurrent == 2
    assert reload.changed == ("defaults.max_concurrent",)
    assert watch.check() is None  # applied once


def test_a_file_still_being_written_is_not_read_yet(tmp_path: Path) -> None:
    watch, layout = _watch(tmp_path)
    layout.pool_toml.write_text("", encoding="utf-8")  # truncated by an in-place writer
    reload = watch.check()
    assert reload is not None
    assert reload.settling
    assert reload.config is None
    _write_settled(layout.pool_toml, "[defaults]\nmax_concurrent = 3\n")
    settled = watch.check()
    assert settled is not None
    assert settled.config is not None
    assert settled.config.defaults.max_concurrent == 3


def test_an_invalid_edit_is_an_error_and_the_next_good_one_applies(tmp_path: Path) -> None:
    watch, layout = _watch(tmp_path)
    _write_settled(layout.pool_toml, "[defaults]\nmax_concurrent = 0\n")
    bad = watch.check()
    assert bad is not None
    assert bad.config is None
    assert bad.error is not None
    assert "defaults.max_concurrent" in bad.error
    assert watch.check() is None  # the same bad file is reported once
    _write_settled(layout.pool_toml, "[defaults]\nmax_concurrent = 5\n")
    good = watch.check()
    assert good is not None
    assert good.config is not None
    assert good.config.defaults.max_concurrent == 5


def test_a_touched_file_with_the_same_settings_changes_nothing(tmp_path: Path) -> None:
    watch, layout = _watch(tmp_path)
    _write_settled(layout.pool_toml, layout.pool_toml.read_text(encoding="utf-8") + "\n# note\n")
    assert watch.check() is None


def test_changed_keys_walks_nested_tables() -> None:
    old = {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    new = {"a": {"b": 1, "c": {"d": 4}}, "f": 5}
    assert changed_keys(old, new) == ["a.c.d", "e", "f"]
