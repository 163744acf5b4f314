from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_pool.errors import InvalidNameError
from agent_pool.pool.layout import MAX_SOCKET_PATH, PoolLayout, home_layout


def test_paths_come_from_validated_names(tmp_path: Path) -> None:
    layout = PoolLayout(tmp_path / ".agent-pool")
    assert layout.inbox("backend") == tmp_path / ".agent-pool/experts/backend/inbox"
    assert layout.inbox("architect") == tmp_path / ".agent-pool/architect/inbox"
    for hostile in ("../../etc", "a/b", "Backend", ""):
        with pytest.raises(InvalidNameError):
            layout.inbox(hostile)
    with pytest.raises(InvalidNameError):
        layout.postoffice_file("../escape")


def test_short_pool_paths_keep_the_socket_inside_the_pool(tmp_path: Path) -> None:
    layout = PoolLayout(Path("/p/.agent-pool"))
    assert layout.socket_path == Path("/p/.agent-pool/daemon/control.sock")


def test_deep_pool_paths_move_the_socket_to_a_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    deep = tmp_path.joinpath(*["deep-folder-name"] * 12, ".agent-pool")
    socket = PoolLayout(deep).socket_path
    assert len(os.fsencode(socket)) <= MAX_SOCKET_PATH
    assert socket.parent.stat().st_mode & 0o777 == 0o700
    # Two different pools never share a socket.
    assert PoolLayout(deep.parent / "other" / ".agent-pool").socket_path != socket


def test_home_layout_honours_agent_pool_home(tmp_path: Path) -> None:
    assert home_layout({"AGENT_POOL_HOME": str(tmp_path)}).config_toml == tmp_path / "config.toml"
    assert home_layout({}).root == Path.home() / ".agent-pool"
