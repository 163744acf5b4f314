"""What every command needs: the pool it acts on and its configuration, loaded lazily."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from agent_pool.pool.discovery import find_pool
from agent_pool.pool.layout import HomeLayout, PoolLayout, home_layout

if TYPE_CHECKING:
    from agent_pool.config import PoolConfig
    from agent_pool.pool.registry import PoolRegistry


@dataclass
class CliContext:
    pool_option: Path | None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)

    @cached_property
    def home(self) -> HomeLayout:
        return home_layout(dict(self.environ))

    @cached_property
    def layout(self) -> PoolLayout:
        return find_pool(self.pool_option, self.environ, self.cwd)

    @cached_property
    def config(self) -> PoolConfig:
        from agent_pool.config import load_config

        return load_config(self.layout, self.home, self.environ)

    @cached_property
    def registry(self) -> PoolRegistry:
        from agent_pool.pool.registry import scan_registry

        return scan_registry(
            self.layout,
            declared_experts=self.config.experts.keys(),
            shared_experts=self.config.shared.include,
        )
