"""Session grants: what each bearer token speaks for, kept as files the tools process reads.

The daemon makes one token per session. Before the session starts it writes the
token's grant (agent, task, scratch folder, budgets, the registry of that moment) to
`daemon/tokens/<sha256 of the token>.json`, and deletes the file when the session ends.
The tools process resolves every request's token by hashing it and reading that file:

- revocation is immediate: a deleted grant is refused at the next request (one `stat`
  per request; a parsed grant is reused only while the file is the same file);
- grants outlive the tools process and the daemon: a restarted tools process, and a
  daemon adopting sessions after a crash, find them where they were;
- the tokens folder holds hashes, never tokens: a token's only copy on disk is its
  session's private MCP config.

This module imports no SDK: the daemon writes and deletes grants with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent_pool.errors import AgentPoolError
from agent_pool.names import check_message_id, check_name
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import PoolRegistry
from agent_pool.tools.context import ToolBudgets, ToolContext, agent_context

GRANT_VERSION: Final = 1
GRANT_MODE: Final = 0o600
_MAX_GRANT_BYTES: Final = 1 << 20  # a grant is a few hundred bytes; more is not ours
_MAX_CACHED: Final = 512  # parsed grants kept; live sessions are far fewer
_BUDGET_FIELDS: Final = ("state_max_bytes", "errors_max_bytes", "mail_max_bytes")
_FILE_SUFFIX: Final = ".json"


class GrantError(AgentPoolError):
    """A grant file is unreadable or says something a grant cannot say."""


def token_digest(token: str) -> str:
    """The name under which a token's grant is kept (lowercase hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionGrant:
    """Everything needed to rebuild a session's ToolContext in another process."""

    agent: str
    task_id: str | None
    task_sender: str | None
    session: str | None  # the scratch folder's name under `daemon/sessions/`
    home: Path  # the user-level folder (shared experts' knowledge lives there)
    experts: tuple[str, ...]
    shared_experts: tuple[str, ...]
    budgets: ToolBudgets

    @classmethod
    def of(cls, layout: PoolLayout, ctx: ToolContext, home: HomeLayout) -> SessionGrant:
        """The grant of a context built by `agent_context` for this pool."""
        session = None
        if ctx.session_dir is not None:
            if ctx.session_dir.parent != layout.sessions_dir:
                raise ValueError(f"a session folder outside {layout.sessions_dir}")
            session = ctx.session_dir.name
        return cls(
            agent=ctx.agent,
            task_id=ctx.task_id,
            task_sender=ctx.task_sender,
            session=session,
            home=home.root.absolute(),  # the tools process may not share our cwd
            experts=tuple(sorted(ctx.registry.experts)),
            shared_experts=tuple(sorted(ctx.registry.shared_experts)),
            budgets=ctx.budgets,
        )

    def to_bytes(self) -> bytes:
        data = {
            "version": GRANT_VERSION,
            "agent": self.agent,
            "task_id": self.task_id,
            "task_sender": self.task_sender,
            "session": self.session,
            "home": str(self.home),
            "experts": list(self.experts),
            "shared_experts": list(self.shared_experts),
            "budgets": {name: getattr(self.budgets, name) for name in _BUDGET_FIELDS},
        }
        return json.dumps(data, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> SessionGrant:
        """Parse and check a grant file; GrantError names the first thing wrong."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise GrantError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise GrantError("not a JSON object")
        if data.get("version") != GRANT_VERSION:
            raise GrantError(f"version must be {GRANT_VERSION}")
        try:
            agent = check_name(_text(data, "agent"), "agent")
            task_id = _optional_text(data, "task_id")
            if task_id is not None:
                check_message_id(task_id, "task id")
            session = _optional_text(data, "session")
            if session is not None:
                _check_session(session, task_id)
            return cls(
                agent=agent,
                task_id=task_id,
                task_sender=_optional_text(data, "task_sender"),
                session=session,
                home=_absolute_path(data, "home"),
                experts=_names(data, "experts"),
                shared_experts=_names(data, "shared_experts"),
                budgets=_budgets(data.get("budgets")),
            )
        except GrantError:
            raise
        except AgentPoolError as exc:
            raise GrantError(exc.message) from None

    def context(self, layout: PoolLayout) -> ToolContext:
        """The ToolContext this grant speaks for; AgentPoolError if the agent is unknown."""
        registry = PoolRegistry(
            experts=frozenset(self.experts), shared_experts=frozenset(self.shared_experts)
        )
        return agent_context(
            layout,
            HomeLayout(self.home),
            registry,
            self.agent,
            budgets=self.budgets,
            task_id=self.task_id,
            task_sender=self.task_sender,
            # `session` was checked to be one safe path component.
            session_dir=layout.sessions_dir / self.session if self.session else None,
        )


def write_grant(layout: PoolLayout, token: str, grant: SessionGrant) -> Path:
    """Publish `token`'s grant (replacing any earlier one); readable by this user only."""
    layout.tokens_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = layout.token_file(token_digest(token))
    _write_private(path, grant.to_bytes())
    return path


def revoke_grant(layout: PoolLayout, token: str) -> None:
    """Delete `token`'s grant: from now on the tools process refuses the token."""
    with contextlib.suppress(FileNotFoundError):
        layout.token_file(token_digest(token)).unlink()


def sweep_grants(layout: PoolLayout, keep_tokens: Iterable[str]) -> list[str]:
    """Delete every file in the tokens folder except the grants of `keep_tokens`.

    Run at start-up: grants of sessions that ended while no daemon watched, and temp
    files of an interrupted write, must not stay valid. Returns the names removed.
    """
    keep = {token_digest(token) + _FILE_SUFFIX for token in keep_tokens}
    removed = []
    try:
        entries = list(os.scandir(layout.tokens_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name in keep or entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):
            Path(entry.path).unlink()
            removed.append(entry.name)
    return removed


class GrantResolver:
    """Token → ToolContext for the tools process, from the grant files.

    Called on the event loop and from tool worker threads: the cache is a dict whose
    single lookups and stores are atomic, and a race only builds a context twice.
    """

    def __init__(self, layout: PoolLayout) -> None:
        self._layout = layout
        self._cache: dict[str, tuple[tuple[int, int, int], ToolContext]] = {}

    def resolve(self, token: str) -> ToolContext | None:
        """The context of a live token; None for an unknown, revoked or bad grant."""
        digest = token_digest(token)
        path = self._layout.token_file(digest)
        try:
            info = path.stat(follow_symlinks=False)
        except OSError:
            self._cache.pop(digest, None)
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        # Grants are replaced by rename, never edited: same inode and mtime, same grant.
        identity = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] == identity:
            return cached[1]
        try:
            ctx = SessionGrant.from_bytes(_read_regular(path)).context(self._layout)
        except (OSError, AgentPoolError):
            return None
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()  # revoked tokens are never asked for again: start afresh
        self._cache[digest] = (identity, ctx)
        return ctx


def _read_regular(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(_MAX_GRANT_BYTES + 1)
    if len(raw) > _MAX_GRANT_BYTES:
        raise GrantError("grant file too large")
    return raw


def _write_private(path: Path, data: bytes) -> None:
    # Temp dotfile + rename: the tools process never reads half a grant. No fsync: a
    # grant only matters to sessions that are running, and a power loss ends them too.
    temp = path.with_name(f".tmp-{secrets.token_hex(6)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temp, flags, GRANT_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise GrantError(f"{key} must be a non-empty string")
    return value


def _absolute_path(data: dict[str, Any], key: str) -> Path:
    path = Path(_text(data, key))
    if not path.is_absolute():
        raise GrantError(f"{key} must be an absolute path")
    return path


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _names(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        raise GrantError(f"{key} must be a list of names")
    return tuple(check_name(name, f"name in {key}") for name in value)


def _budgets(value: object) -> ToolBudgets:
    if not isinstance(value, dict):
        raise GrantError("budgets must be an object")
    sizes = {}
    for name in _BUDGET_FIELDS:
        size = value.get(name)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise GrantError(f"budgets.{name} must be a positive integer")
        sizes[name] = size
    return ToolBudgets(**sizes)


def _check_session(session: str, task_id: str | None) -> None:
    # A session folder is `<task id>-<attempt>`: one path component, no dots to climb.
    check_message_id(session, "session folder")
    prefix = f"{task_id}-"
    attempt = session[len(prefix) :] if task_id and session.startswith(prefix) else ""
    if not (attempt.isascii() and attempt.isdigit()):
        raise GrantError(f"session {session!r} is not a folder of task {task_id!r}")
