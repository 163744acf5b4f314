"""Finding the pool a command acts on: `--pool DIR` > `AGENT_POOL_DIR` > walk up from cwd."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent_pool.errors import PoolNotFoundError
from agent_pool.pool.layout import POOL_DIR_NAME, POOL_FILE_NAME, PoolLayout


def find_pool(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> PoolLayout:
    """Return the layout of the pool the user means, or raise PoolNotFoundError."""
    if explicit is not None:
        return PoolLayout(_named_pool(explicit, "--pool", cwd))
    from_env = environ.get("AGENT_POOL_DIR")
    if from_env:
        return PoolLayout(_named_pool(Path(from_env), "AGENT_POOL_DIR", cwd))
    for folder in (cwd, *cwd.parents):
        candidate = folder / POOL_DIR_NAME
        if (candidate / POOL_FILE_NAME).is_file():
            return PoolLayout(candidate)
    raise PoolNotFoundError(
        f"no pool found in {cwd} or any parent folder; "
        "create one with `agent-pool init` or name one with --pool DIR"
    )


def _named_pool(path: Path, source: str, cwd: Path) -> Path:
    """Accept the `.agent-pool` folder itself, or the project folder that holds one."""
    path = (cwd / path.expanduser()).resolve()
    if (path / POOL_FILE_NAME).is_file():
        return path
    if (path / POOL_DIR_NAME / POOL_FILE_NAME).is_file():
        return path / POOL_DIR_NAME
    raise PoolNotFoundError(
        f"{source} {path}: not a pool (no {POOL_FILE_NAME} there or in {path / POOL_DIR_NAME}); "
        "create one with `agent-pool init`"
    )
