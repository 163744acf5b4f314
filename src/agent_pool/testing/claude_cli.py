"""Finding the pinned Claude Code CLI and running it hermetically against a local server.

`make test` installs the pinned CLI into `<repo>/.claude-cli/` (never globally);
`AGENT_POOL_TEST_CLAUDE` points elsewhere. `hermetic_claude_env` gives the variables
that keep a run offline and away from the user's own configuration (see the spec's
claude-cli.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

CLAUDE_ENV_VAR: Final = "AGENT_POOL_TEST_CLAUDE"
PINNED_VERSION: Final = "2.1.330"
_IN_REPO: Final = Path(".claude-cli") / "node_modules" / ".bin" / "claude"
# Inherited variables with these prefixes could point the CLI at a real account, a
# cloud provider (CLAUDE_CODE_USE_BEDROCK...) or the user's settings: all dropped.
_DROPPED_PREFIXES: Final = ("ANTHROPIC_", "CLAUDE")


def find_claude_cli() -> Path | None:
    """The `claude` to test with: `$AGENT_POOL_TEST_CLAUDE`, else the repo's install.

    The repo is found by walking up from this file to a folder holding
    `.claude-cli/node_modules/.bin/claude`. None when neither exists.
    """
    override = os.environ.get(CLAUDE_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() else None
    for folder in Path(__file__).resolve().parents:
        candidate = folder / _IN_REPO
        if candidate.is_file():
            return candidate
    return None


def hermetic_claude_env(
    base_url: str,
    config_dir: Path,
    *,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Variables for an offline `claude` run against the model server at `base_url`.

    Everything the CLI writes (settings, transcripts, its temp files and sockets) stays
    under `config_dir`; HOME points there too. With `base`, returns a copy of it with
    every `ANTHROPIC_*` / `CLAUDE*` variable removed and these set; without, only these.
    """
    env = {
        key: value for key, value in (base or {}).items() if not key.startswith(_DROPPED_PREFIXES)
    }
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url.rstrip("/").removesuffix("/v1"),
            "ANTHROPIC_API_KEY": "offline-test-key",
            "CLAUDE_CONFIG_DIR": str(config_dir),
            "HOME": str(config_dir),
            # The CLI creates it if missing; its sockets fall back to /tmp when too long.
            "TMPDIR": str(config_dir / "tmp"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # else it also dials the real API
            "CLAUDE_CODE_MAX_RETRIES": "0",  # scripted errors fail at once, no back-off
            "ENABLE_TOOL_SEARCH": "false",  # list MCP tools directly, not behind ToolSearch
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }
    )
    return env
