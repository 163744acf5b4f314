"""Fixtures of the fault-injection suite: the e2e fixtures, and folders that fail.

The real-CLI fixtures are re-exported from tests/e2e/conftest.py (one definition).
Full and read-only folders are real mounts (root only: a full disk cannot be faked
by mode bits, and root ignores mode bits anyway), or the immutable attribute, which
refuses even root any new entry in a folder while leaving it on the same mount.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import real_pool

__all__ = ["real_pool"]  # re-exported: a fixture is found through a conftest


class Mounts:
    """Mounts made during one test; every one is undone after it, even on failure."""

    def __init__(self) -> None:
        self._mounted: list[Path] = []
        self._immutable: list[Path] = []

    def tmpfs(self, folder: Path, *, size: str, read_only: bool = False) -> None:
        """Mount a `size` tmpfs over `folder`, hiding what it held until unmounted."""
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        self._run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder))
        self._mounted.append(folder)

    def bind(self, source: Path, target: Path) -> None:
        """Mount `source` (a file or folder) over `target`, which must exist already."""
        self._run("mount", "--bind", str(source), str(target))
        self._mounted.append(target)

    def remount(self, folder: Path, *, read_only: bool = False, size: str | None = None) -> None:
        """Change a mount of this test in place: writable again, or given more room."""
        assert folder in self._mounted, f"{folder} is not one of this test's mounts"
        options = "remount," + ("ro" if read_only else "rw") + (f",size={size}" if size else "")
        self._run("mount", "-o", options, str(folder))

    def immutable(self, folder: Path, *, on: bool = True) -> None:
        """Refuse every new entry in `folder`, to root as well (EPERM): chattr +i."""
        self._run("chattr", "+i" if on else "-i", str(folder))
        if on:
            self._immutable.append(folder)
        elif folder in self._immutable:
            self._immutable.remove(folder)

    def undo(self) -> None:
        for folder in reversed(self._immutable):
            subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
        for folder in reversed(self._mounted):
            # Lazy: a session killed a moment ago may still hold a file open in it.
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        self._immutable.clear()
        self._mounted.clear()

    @staticmethod
    def _run(*argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"{' '.join(argv)} is not possible here: {done.stderr.strip()}")


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    """Mount tmpfs folders or make folders immutable; needs root (skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("full or read-only folders need root (mount, chattr)")
    for tool in ("mount", "umount", "chattr"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    made = Mounts()
    try:
        yield made
    finally:
        made.undo()
