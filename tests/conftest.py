"""Fixtures shared by every test layer: a hermetic environment and a real CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.harness import Pool


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@dataclass
class CliEnv:
    """Runs `python -m agent_pool` as a real child process in a hermetic environment."""

    cwd: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, cwd: Path | None = None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "agent_pool", *args],
            cwd=cwd or self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> CliEnv:
    home = tmp_path / "home"
    project = tmp_path / "project"
    project.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENT_POOL_", "ANTHROPIC_", "CLAUDE"))
    }
    env["AGENT_POOL_HOME"] = str(home)
    env["HOME"] = str(tmp_path)
    return CliEnv(cwd=project, env=env)


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can create anything in, even root (a read-only tmpfs mount)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    assert mounted.returncode == 0, f"cannot mount a read-only tmpfs: {mounted.stderr!r}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def pool(cli: CliEnv) -> Iterator[Pool]:
    """An initialised pool with two experts and the fake claude; cleaned up strictly."""
    from tests.harness import cleanup, make_pool  # noqa: PLC0415  # harness imports the package

    made = make_pool(cli)
    yield made
    cleanup(made)
