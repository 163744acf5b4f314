"""The PreToolUse guard: may this write tool call touch this path? (pure: no writes)

Two rules. The pool's own folder is never written by a tool call: knowledge and mail
change only through the agent-pool MCP tools, which validate and lock. And an expert
with `owns` globs may change only files inside the project that match one of them.

Every target is checked twice: as written (`..` collapsed textually, so a path that
only *names* the pool folder is caught) and with symlinks resolved (so a link inside
the project that points into the pool folder, or out of the project, is caught). A
write is allowed only if both forms pass; the one exception is a written path outside
the project that resolves into it (the project reached through a symlinked alias).
"""

# ruff: noqa: PTH100, PTH111, PTH118, PTH206
# `os.path` on purpose: `pathlib` would add milliseconds to every hooked tool call.

from __future__ import annotations

import os

from agent_pool.hooks.globs import match_any

# `typing` costs a hook several milliseconds at start-up; only the type checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Final

    StrPath = str | os.PathLike[str]

WRITE_TOOLS: Final = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
# Mirrors `pool.layout.POOL_DIR_NAME` (a unit test keeps them equal): importing the
# layout module would cost every tool call its imports.
POOL_DIR_NAME: Final = ".agent-pool"
_PATH_KEYS: Final = ("file_path", "notebook_path")


def check_write(
    tool_name: str,
    tool_input: Mapping[str, object],
    *,
    cwd: StrPath,
    pool_dir: StrPath,
    project_dir: StrPath,
    owns: Sequence[str],
) -> str | None:
    """Why this tool call must not run (one line for the model), or None to allow it.

    Only write tools are checked. A relative path is taken relative to `cwd`, as
    Claude Code does. With `owns` empty, anything outside the pool folder is allowed.
    """
    if tool_name not in WRITE_TOOLS:
        return None
    raw = _target_path(tool_input)
    if raw is None:
        key = "notebook_path" if tool_name == "NotebookEdit" else "file_path"
        return f"{tool_name} was called without a usable {key}: give the file's absolute path."
    shown = _show(raw)
    try:
        targets = _forms(os.path.join(os.path.abspath(cwd), os.path.expanduser(raw)))
        pools = _forms(os.path.abspath(pool_dir))
        projects = _forms(os.path.abspath(project_dir))
    except (OSError, ValueError) as exc:
        return f"{tool_name} on {shown} is refused: the path cannot be resolved ({exc})."
    for target in targets:
        pool = _pool_containing(target, pools)
        if pool is not None:
            return (
                f"{tool_name} on {shown} is refused: it is inside the pool folder "
                f"{_show(pool)}, whose files are changed only through the agent-pool "
                "tools: use mcp__agent-pool__update_state (or append_error, send_response) "
                "instead."
            )
    if not owns:
        return None
    return _ownership_denial(tool_name, shown, targets, projects, owns)


def _ownership_denial(
    tool_name: str,
    shown: str,
    targets: tuple[str, ...],
    projects: tuple[str, ...],
    owns: Sequence[str],
) -> str | None:
    globs = ", ".join(owns)
    resolved = targets[-1]
    for target in targets:
        relative = _relative_to_any(target, projects)
        if relative is None and target is not resolved:
            # A path outside the project that a symlink leads into it (the project
            # reached through an alias): where the write lands is what counts.
            continue
        if relative is None:
            return (
                f"{tool_name} on {shown} is refused: it is outside the project folder "
                f"{_show(projects[0])}; this expert may change only files matching {globs} "
                "there."
            )
        if not match_any(owns, relative):
            return (
                f"{tool_name} on {_show(relative) if relative else shown} is refused: this "
                f"expert owns only {globs} (relative to {_show(projects[0])}); leave that "
                "file to its owner and say in your response what should change there."
            )
    return None


def _target_path(tool_input: Mapping[str, object]) -> str | None:
    for key in _PATH_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip() and "\0" not in value:
            return value
    return None


def _forms(path: str) -> tuple[str, ...]:
    """`path` with `..` collapsed as written, and with symlinks resolved: one or both."""
    textual = os.path.normpath(path)
    # POSIX keeps a leading `//` as implementation-defined; on Linux and macOS it is `/`.
    if textual.startswith("//"):
        textual = "/" + textual.lstrip("/")
    resolved = os.path.realpath(path)
    return (textual,) if resolved == textual else (textual, resolved)


def _pool_containing(path: str, pools: tuple[str, ...]) -> str | None:
    """The pool folder `path` is in (or is), if any."""
    for pool in pools:
        if _inside(path, pool):
            return pool
    # Any folder named like a pool is off limits too: another pool's control files,
    # or the user-level `~/.agent-pool` that holds shared experts.
    parts = path.split(os.sep)
    if POOL_DIR_NAME in parts:
        return os.sep.join(parts[: parts.index(POOL_DIR_NAME) + 1])
    return None


def _relative_to_any(path: str, roots: tuple[str, ...]) -> str | None:
    """`path` relative to the first root that contains it, as a POSIX path."""
    for root in roots:
        if path == root:
            return ""
        if _inside(path, root):
            relative = path[len(root) :].lstrip(os.sep)
            return relative.replace(os.sep, "/")
    return None


def _inside(path: str, root: str) -> bool:
    """`path` is `root` or below it (both absolute and normalised)."""
    if root == os.sep:
        return True
    return path == root or path.startswith(root + os.sep)


def _show(path: str) -> str:
    # The reason must stay one line even for a path with a newline in it.
    return path if path.isprintable() else repr(path)
