from __future__ import annotations

from pathlib import Path

import pytest

from agent_pool.errors import PoolNotFoundError
from agent_pool.pool.discovery import find_pool


def make_pool(project: Path) -> Path:
    root = project / ".agent-pool"
    root.mkdir(parents=True)
    (root / "pool.toml").write_text("")
    return root


def test_walks_up_from_the_cwd(tmp_path: Path) -> None:
    root = make_pool(tmp_path / "repo")
    nested = tmp_path / "repo" / "src" / "pkg"
    nested.mkdir(parents=True)
    assert find_pool(None, {}, nested).root == root


def test_flag_beats_env_beats_walk(tmp_path: Path) -> None:
    walked = make_pool(tmp_path / "walked")
    from_env = make_pool(tmp_path / "env")
    from_flag = make_pool(tmp_path / "flag")
    env = {"AGENT_POOL_DIR": str(from_env)}
    assert find_pool(from_flag, env, walked.parent).root == from_flag
    assert find_pool(None, env, walked.parent).root == from_env
    assert find_pool(None, {}, walked.parent).root == walked


def test_the_project_folder_is_accepted_for_the_pool_folder(tmp_path: Path) -> None:
    root = make_pool(tmp_path / "repo")
    assert find_pool(tmp_path / "repo", {}, tmp_path).root == root


def test_no_pool_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(PoolNotFoundError, match="agent-pool init") as caught:
        find_pool(None, {}, tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(PoolNotFoundError, match="AGENT_POOL_DIR"):
        find_pool(None, {"AGENT_POOL_DIR": str(tmp_path / "nowhere")}, tmp_path)
