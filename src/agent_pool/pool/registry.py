"""Who lives in a pool: roles, the experts (a directory listing), and shared experts.

Topology is a directory listing: an expert exists when `experts/<name>/` exists, or when
pool.toml declares it. The registry is a cheap immutable snapshot; the daemon rebuilds
it when the folder changes, so adding an expert needs no restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agent_pool.errors import UnknownRecipientError
from agent_pool.names import RESERVED_NAMES, ROLE_NAMES, is_valid_name
from agent_pool.pool.layout import PoolLayout


class AgentKind(StrEnum):
    ROLE = "role"
    EXPERT = "expert"
    SHARED_EXPERT = "shared-expert"


@dataclass(frozen=True)
class PoolRegistry:
    experts: frozenset[str]
    shared_experts: frozenset[str]
    roles: frozenset[str] = ROLE_NAMES

    def kind_of(self, name: str) -> AgentKind | None:
        if name in self.roles:
            return AgentKind.ROLE
        if name in self.experts:
            return AgentKind.EXPERT
        if name in self.shared_experts:
            return AgentKind.SHARED_EXPERT
        return None

    def resolve(self, name: str) -> AgentKind:
        """The kind of agent `name` is; raises UnknownRecipientError naming who exists."""
        kind = self.kind_of(name)
        if kind is None:
            raise UnknownRecipientError(name, self.names())
        return kind

    def names(self) -> list[str]:
        return sorted(self.roles | self.experts | self.shared_experts)

    def expert_names(self) -> list[str]:
        """Every expert a task can go to, local and shared."""
        return sorted(self.experts | self.shared_experts)


def expert_folders(layout: PoolLayout) -> set[str]:
    """Names of the real expert folders; stray files, symlinks and bad names are ignored."""
    try:
        entries = list(os.scandir(layout.experts_dir))
    except FileNotFoundError:
        return set()
    return {
        entry.name
        for entry in entries
        if entry.is_dir(follow_symlinks=False)
        and is_valid_name(entry.name)
        and entry.name not in RESERVED_NAMES
    }


def scan_registry(
    layout: PoolLayout, *, declared_experts: Iterable[str], shared_experts: Iterable[str]
) -> PoolRegistry:
    local = expert_folders(layout) | set(declared_experts)
    # A local expert of the same name shadows a shared one: the pool's own folder wins.
    return PoolRegistry(experts=frozenset(local), shared_experts=frozenset(shared_experts) - local)


def agent_folder(layout: PoolLayout, registry: PoolRegistry, name: str) -> Path:
    """The pool-side folder of an agent: role folder, expert folder, or shared overlay."""
    kind = registry.resolve(name)
    if kind is AgentKind.ROLE:
        return layout.role_dir(name)
    if kind is AgentKind.SHARED_EXPERT:
        return layout.shared_overlay(name)
    return layout.expert_dir(name)


def all_logs_dirs(layout: PoolLayout) -> list[Path]:
    """Every agent's pool-side `logs/` folder: roles, experts, shared experts' overlays.

    Found on disk (not from the config), so logs of an expert no longer declared are
    still found, read and archived.
    """
    folders = [layout.logs(role) for role in sorted(ROLE_NAMES)]
    folders += [layout.expert_dir(name) / "logs" for name in sorted(expert_folders(layout))]
    try:
        shared = sorted(entry.name for entry in os.scandir(layout.shared_state_dir))
    except (FileNotFoundError, NotADirectoryError):
        shared = []
    folders += [layout.shared_overlay(name) / "logs" for name in shared if is_valid_name(name)]
    return folders
