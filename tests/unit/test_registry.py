from __future__ import annotations

from pathlib import Path

import pytest

from agent_pool.errors import UnknownRecipientError
from agent_pool.pool.layout import PoolLayout
from agent_pool.pool.registry import AgentKind, scan_registry


def test_topology_is_a_directory_listing(tmp_path: Path) -> None:
    layout = PoolLayout(tmp_path)
    for name in ("backend", "frontend", "Bad Name", "architect"):
        (layout.experts_dir / name).mkdir(parents=True)
    (layout.experts_dir / "stray-file").write_text("x")
    (layout.experts_dir / "linked").symlink_to(layout.experts_dir / "backend")

    registry = scan_registry(layout, declared_experts=["infra"], shared_experts=["security"])

    assert registry.experts == {"backend", "frontend", "infra"}
    assert registry.kind_of("architect") is AgentKind.ROLE
    assert registry.kind_of("security") is AgentKind.SHARED_EXPERT
    assert registry.kind_of("linked") is None
    assert registry.expert_names() == ["backend", "frontend", "infra", "security"]


def test_unknown_recipient_names_the_known_ones(tmp_path: Path) -> None:
    registry = scan_registry(PoolLayout(tmp_path), declared_experts=["api"], shared_experts=[])
    with pytest.raises(UnknownRecipientError) as caught:
        registry.resolve("nobody")
    assert "'nobody'" in str(caught.value)
    assert "api" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_local_expert_shadows_a_shared_one(tmp_path: Path) -> None:
    registry = scan_registry(PoolLayout(tmp_path), declared_experts=["db"], shared_experts=["db"])
    assert registry.kind_of("db") is AgentKind.EXPERT
