"""The per-session `--settings` file that installs the hooks (pure, plus one writer).

Claude Code runs each hook `command` through a shell, so every argument is quoted.
The command runs `python -P -m agent_pool.hooks`: `-P` keeps the session's working
directory (the project, which the expert may write) off `sys.path`, so a file named
`agent_pool` there can never replace the guard.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HOOK_MODULE: Final = "agent_pool.hooks"
SETTINGS_FILE_NAME: Final = "hook-settings.json"
# Every built-in tool that writes a file; the guard checks exactly these.
WRITE_TOOLS_MATCHER: Final = "Write|Edit|MultiEdit|NotebookEdit"


def hook_command(python: str, *args: str) -> str:
    """The shell command line running `python -P -m agent_pool.hooks ARGS`."""
    return shlex.join([python, "-P", "-m", HOOK_MODULE, *args])


def hook_settings(
    *, python: str, pool_dir: Path, project_dir: Path, owns: Sequence[str], session_dir: Path
) -> dict[str, Any]:
    """The settings JSON for one session: the ownership guard and the report-back check."""
    # `--opt=VALUE` keeps a value that starts with `-` from reading as an option.
    guard_args = [
        "pre-tool-use",
        f"--pool-dir={pool_dir}",
        f"--project-dir={project_dir}",
        f"--session-dir={session_dir}",
        *(f"--owns={glob}" for glob in owns),
    ]
    return {
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": WRITE_TOOLS_MATCHER,
                    "hooks": [{"type": "command", "command": hook_command(python, *guard_args)}],
                }
            ],
            "Stop": [
                {
                    "hooks": [
                        {
                            "type": "command",
                            "command": hook_command(python, "stop", f"--session-dir={session_dir}"),
                        }
                    ]
                }
            ],
        }
    }


def write_hook_settings(
    session_dir: Path, *, python: str, pool_dir: Path, project_dir: Path, owns: Sequence[str]
) -> Path:
    """Write the session's settings file into `session_dir` and return its path."""
    settings = hook_settings(
        python=python,
        pool_dir=pool_dir,
        project_dir=project_dir,
        owns=owns,
        session_dir=session_dir,
    )
    path = session_dir / SETTINGS_FILE_NAME
    # A scratch file of one session (swept after a crash): no fsync needed, and the
    # session starts only after this returns, so it never sees half a file.
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path
