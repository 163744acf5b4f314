"""`agent-pool doctor`: check everything a pool needs, one line per check."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from agent_pool import __version__
from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError


@dataclass(frozen=True)
class Check:
    ok: bool
    subject: str
    detail: str


@click.command()
@click.pass_obj
def doctor(obj: CliContext) -> None:
    """Check Python, the configuration, the claude CLI and the pool's folders."""
    checks = list(run_checks(obj))
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.subject}: {check.detail}")
    failed = [check for check in checks if not check.ok]
    if failed:
        raise click.exceptions.Exit(1)


def run_checks(obj: CliContext) -> list[Check]:
    checks = [
        Check(
            sys.version_info >= (3, 11), "python", f"{platform.python_version()} ({sys.executable})"
        ),
        Check(True, "agent-pool", __version__),
    ]
    try:
        layout = obj.layout
    except AgentPoolError as exc:
        checks.append(Check(False, "pool", exc.message))
        checks.append(_claude_check(obj.environ.get("AGENT_POOL_CLAUDE_BIN") or "claude"))
        return checks
    checks.append(Check(True, "pool", str(layout.root)))
    try:
        config = obj.config
    except AgentPoolError as exc:
        checks.append(Check(False, "config", exc.message))
        checks.append(_claude_check(obj.environ.get("AGENT_POOL_CLAUDE_BIN") or "claude"))
        return checks
    checks.append(Check(True, "config", f"valid ({layout.pool_toml}, {obj.home.config_toml})"))
    checks.append(Check(config.project_dir.is_dir(), "project dir", str(config.project_dir)))
    checks.append(_claude_check(config.runner.claude_bin))
    checks.extend(_folder_checks(obj))
    return checks


def _claude_check(claude_bin: str) -> Check:
    found = shutil.which(claude_bin)
    if found is None:
        return Check(
            False,
            "claude",
            f"{claude_bin!r} not found (set AGENT_POOL_CLAUDE_BIN or [runner] claude_bin)",
        )
    try:
        result = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(False, "claude", f"{found} does not run: {exc}")
    if result.returncode != 0:
        first = (result.stderr or result.stdout).strip().splitlines()[:1]
        return Check(False, "claude", f"{found} --version exited {result.returncode}: {first}")
    return Check(True, "claude", f"{result.stdout.strip()} ({found})")


def _folder_checks(obj: CliContext) -> list[Check]:
    layout = obj.layout
    checks: list[Check] = []
    folders: list[Path] = [
        layout.postoffice,
        layout.dead_letter,
        layout.contracts,
        layout.formulas,
        layout.experts_dir,
    ]
    folders += [layout.inbox(name) for name in obj.registry.roles]
    folders += [layout.inbox(name) for name in sorted(obj.registry.experts)]
    problems = [
        f"{path} is missing" if not path.is_dir() else f"{path} is not writable"
        for path in folders
        if not (path.is_dir() and os.access(path, os.W_OK | os.X_OK))
    ]
    checks.append(
        Check(not problems, "folders", "; ".join(problems) or f"{len(folders)} folders writable")
    )
    runtime = layout.runtime_dir
    if runtime.is_dir():
        private = runtime.stat().st_mode & 0o077 == 0
        checks.append(
            Check(
                private,
                "runtime folder",
                f"{runtime} is {'private' if private else 'readable by others (chmod 700 it)'}",
            )
        )
    experts = obj.registry.expert_names()
    checks.append(Check(True, "experts", ", ".join(experts) if experts else "none yet"))
    return checks
