"""Running the service manager's programs (systemctl, launchctl) through one seam.

Install, uninstall and status take a `Runner`, so tests can answer for the service
manager and check what would have been run without a user systemd or a Mac.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

# Quick questions (is it active?) and the default for anything not given a timeout.
QUERY_TIMEOUT_S: Final = 30.0
# A missing program answers like a shell would, so callers need no special case.
EXIT_NOT_FOUND: Final = 127
EXIT_TIMED_OUT: Final = 124


@dataclass(frozen=True)
class CommandResult:
    code: int
    out: str = ""
    err: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def reason(self) -> str:
        """The last thing the program said, else its exit code: one line for an error."""
        for text in (self.err, self.out):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit code {self.code}"


Runner = Callable[[Sequence[str], float], CommandResult]


def run_command(argv: Sequence[str], timeout: float = QUERY_TIMEOUT_S) -> CommandResult:
    """Run `argv` (never through a shell) with no input, and capture what it says."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return CommandResult(EXIT_NOT_FOUND, err=f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(
            EXIT_TIMED_OUT, err=f"{shlex.join(argv)} timed out after {timeout:g} s"
        )
    return CommandResult(done.returncode, done.stdout, done.stderr)
