"""`agent-pool init`: create a pool's folders and starter files without clobbering any."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from agent_pool.errors import PoolLayoutError
from agent_pool.names import ROLE_NAMES, check_expert_name
from agent_pool.pool import starters
from agent_pool.pool.layout import PoolLayout


@dataclass
class InitReport:
    """What `init` did: every path it created, and the existing ones it left alone."""

    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def init_pool(
    layout: PoolLayout, *, experts: list[str], project_dir: Path | None = None
) -> InitReport:
    """Create the pool at `layout.root`; safe to run again (nothing existing is touched)."""
    for name in experts:
        check_expert_name(name)
    report = InitReport()
    try:
        _make_dir(layout.root, report)
        relative_project = _relative_project_dir(layout.root, project_dir)
        pool_name = (layout.root / relative_project).resolve().name or "pool"
        _write_new(layout.pool_toml, starters.pool_toml_text(pool_name, relative_project), report)
        for folder in (
            layout.postoffice,
            layout.dead_letter,
            layout.contracts,
            layout.formulas,
            layout.experts_dir,
            layout.shared_state_dir,
        ):
            _make_dir(folder, report)
        _make_dir(layout.runtime_dir, report, mode=0o700)
        for role in sorted(ROLE_NAMES):
            create_agent_folder(layout, role, role=role, report=report)
        for name in experts:
            create_agent_folder(layout, name, role=None, report=report)
    except OSError as exc:
        where = exc.filename or layout.root
        raise PoolLayoutError(f"cannot create {where}: {exc.strerror or exc}") from exc
    return report


def create_agent_folder(
    layout: PoolLayout, name: str, *, role: str | None, report: InitReport
) -> None:
    """Create a role or expert folder with its starter knowledge files, inbox and logs."""
    folder = layout.role_dir(name) if role else layout.expert_dir(check_expert_name(name))
    _make_dir(folder, report)
    _make_dir(folder / "inbox", report)
    _make_dir(folder / "logs", report)
    _write_new(folder / "identity.md", starters.identity_text(name, role=role), report)
    _write_new(folder / "state.md", starters.state_text(name), report)
    _write_new(folder / "errors.md", starters.errors_text(name), report)


def _relative_project_dir(pool_root: Path, project_dir: Path | None) -> str:
    if project_dir is None:
        return ".."
    target = project_dir.expanduser().resolve()
    if not target.is_dir():
        raise PoolLayoutError(f"--project-dir {target}: not a folder")
    return os.path.relpath(target, pool_root.resolve())


def _make_dir(path: Path, report: InitReport, mode: int = 0o755) -> None:
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        if not path.is_dir():
            raise PoolLayoutError(f"cannot create {path}: a file with that name exists") from None
        report.kept.append(path)
    else:
        report.created.append(path)


def _write_new(path: Path, text: str, report: InitReport) -> None:
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        report.kept.append(path)
    else:
        report.created.append(path)
