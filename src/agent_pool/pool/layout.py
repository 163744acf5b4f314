"""Every path inside a pool, computed in one place from validated names.

Nothing else in the package joins strings onto the pool folder: callers ask the
layout, and the layout validates the name before it becomes a path component.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent_pool.errors import InvalidNameError
from agent_pool.names import ROLE_NAMES, check_message_id, check_name

POOL_DIR_NAME: Final = ".agent-pool"
POOL_FILE_NAME: Final = "pool.toml"
KNOWLEDGE_FILES: Final = ("identity.md", "state.md", "errors.md")
# Unix socket paths are limited to 104 bytes on macOS and 108 on Linux.
MAX_SOCKET_PATH: Final = 100
# A token file is named by the SHA-256 of its bearer token, in lowercase hex.
TOKEN_DIGEST_PATTERN: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PoolLayout:
    """The folder tree of one pool, rooted at its `.agent-pool` folder."""

    root: Path

    @property
    def pool_toml(self) -> Path:
        return self.root / POOL_FILE_NAME

    @property
    def postoffice(self) -> Path:
        return self.root / "postoffice"

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead-letter"

    @property
    def contracts(self) -> Path:
        return self.root / "contracts"

    @property
    def formulas(self) -> Path:
        return self.root / "formulas"

    @property
    def experts_dir(self) -> Path:
        return self.root / "experts"

    @property
    def shared_state_dir(self) -> Path:
        return self.root / "shared-state"

    @property
    def runtime_dir(self) -> Path:
        """Daemon-owned files: lock, task board, daemon log, socket (when short enough)."""
        return self.root / "daemon"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / "daemon.lock"

    @property
    def board_db(self) -> Path:
        return self.runtime_dir / "board.sqlite3"

    @property
    def board_archive_db(self) -> Path:
        """Finished tasks moved off the board after `board_retention`."""
        return self.runtime_dir / "board-archive.db"

    @property
    def daemon_log(self) -> Path:
        return self.runtime_dir / "daemon.log"

    @property
    def tools_port_file(self) -> Path:
        """The loopback port of the tools endpoint, kept so a restart can reuse it."""
        return self.runtime_dir / "tools-port"

    @property
    def tokens_dir(self) -> Path:
        """One file per live session token, named by its hash, read by the tools process."""
        return self.runtime_dir / "tokens"

    def token_file(self, digest: str) -> Path:
        if not isinstance(digest, str) or TOKEN_DIGEST_PATTERN.fullmatch(digest) is None:
            raise InvalidNameError("token digest", str(digest), "use 64 lowercase hex digits")
        return self.tokens_dir / f"{digest}.json"

    @property
    def sessions_dir(self) -> Path:
        """Per-session scratch folders (MCP config, hook settings), removed after each run."""
        return self.runtime_dir / "sessions"

    @property
    def socket_path(self) -> Path:
        preferred = self.runtime_dir / "control.sock"
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
            return preferred
        # A deep project path would overflow sun_path: fall back to a private per-user
        # folder, named by a hash of the pool so pools never collide.
        digest = hashlib.sha256(os.fsencode(self.root.resolve())).hexdigest()[:24]
        return private_socket_dir(len(digest) + len(".sock") + 1) / f"{digest}.sock"

    def role_dir(self, role: str) -> Path:
        if role not in ROLE_NAMES:
            raise ValueError(f"not a role: {role!r}")
        return self.root / role

    def expert_dir(self, name: str) -> Path:
        return self.experts_dir / check_name(name, "expert name")

    def agent_dir(self, name: str) -> Path:
        """The folder of a role or an expert, whichever `name` is."""
        return self.role_dir(name) if name in ROLE_NAMES else self.expert_dir(name)

    def inbox(self, name: str) -> Path:
        return self.agent_dir(name) / "inbox"

    def logs(self, name: str) -> Path:
        return self.agent_dir(name) / "logs"

    def shared_overlay(self, name: str) -> Path:
        return self.shared_state_dir / check_name(name, "shared expert name")

    def postoffice_file(self, message_id: str) -> Path:
        return self.postoffice / f"{check_message_id(message_id)}.md"


def private_socket_dir(name_length: int) -> Path:
    """A private folder for sockets, short enough to hold a name of `name_length` bytes."""
    folder_name = f"agent-pool-{os.getuid()}"
    candidates = [os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"]  # noqa: S108
    for base in filter(None, candidates):
        folder = Path(base) / folder_name
        if len(os.fsencode(folder)) + name_length <= MAX_SOCKET_PATH:
            break
    folder.mkdir(mode=0o700, exist_ok=True)
    stat = folder.stat()
    if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
        raise PermissionError(f"{folder} must be owned by you and private (mode 0700)")
    return folder


@dataclass(frozen=True)
class HomeLayout:
    """The user-level folder (`~/.agent-pool`, or `AGENT_POOL_HOME`)."""

    root: Path

    @property
    def config_toml(self) -> Path:
        return self.root / "config.toml"

    @property
    def experts_dir(self) -> Path:
        return self.root / "experts"

    def shared_expert_dir(self, name: str) -> Path:
        return self.experts_dir / check_name(name, "shared expert name")


def home_layout(environ: dict[str, str] | os._Environ[str] | None = None) -> HomeLayout:
    env = os.environ if environ is None else environ
    configured = env.get("AGENT_POOL_HOME")
    return HomeLayout(Path(configured).expanduser() if configured else Path.home() / POOL_DIR_NAME)
