"""The ownership guard and its glob matcher: pure decisions on real (temporary) paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_pool.hooks.globs import glob_to_regex, match_any, match_glob
from agent_pool.hooks.guard import POOL_DIR_NAME, WRITE_TOOLS, check_write
from agent_pool.pool.layout import POOL_DIR_NAME as LAYOUT_POOL_DIR_NAME


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # `*` stays inside one segment.
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/deep/a.py", False),
        ("src/*.py", "src/.hidden.py", True),
        ("src/*.py", "src/a.pyc", False),
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),
        ("src/*", "src/a", True),
        ("src/*", "src/a/b", False),
        ("src/*", "src", False),
        ("*", "README.md", True),
        ("*", "a/b", False),
        # `**` spans folders.
        ("src/**", "src/a.py", True),
        ("src/**", "src/a/b/c.py", True),
        ("src/**", "src", False),
        ("src/**", "srcx/a.py", False),
        ("src/**", "other/src/a.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/a/b/c.py", True),
        ("src/**/*.py", "src/a/b/c.txt", False),
        ("src/**/test_*.py", "src/a/test_x.py", True),
        ("src/**/test_*.py", "src/a/x_test.py", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/a/b.md", True),
        ("**/*.md", "docs/a/b.mdx", False),
        ("**", "anything/at/all", True),
        ("**", "top", True),
        ("a/**/b/**/c", "a/b/c", True),
        ("a/**/b/**/c", "a/x/b/y/z/c", True),
        ("a/**/b/**/c", "a/x/c", False),
        ("a/**/**/b", "a/b", True),
        # `**` inside a segment is an ordinary `*`.
        ("src/a**b", "src/axyb", True),
        ("src/a**b", "src/ax/yb", False),
        # `?` and sets never match `/`.
        ("src/?.py", "src/a.py", True),
        ("src/?.py", "src/ab.py", False),
        ("a?b", "a/b", False),
        ("src/[abc].py", "src/b.py", True),
        ("src/[abc].py", "src/d.py", False),
        ("src/[!abc].py", "src/d.py", True),
        ("src/[!abc].py", "src/a.py", False),
        ("src/[a-c]x", "src/bx", True),
        ("src/[a-c]x", "src/dx", False),
        ("a[!x]b", "a/b", False),
        ("a[+-0]b", "a/b", False),
        ("a[+-0]b", "a,b", True),
        ("src/[]]x", "src/]x", True),
        ("src/[!]]x", "src/ax", True),
        ("src/[!]]x", "src/]x", False),
        # An unclosed `[` is literal; regex metacharacters are literal.
        ("src/[ab", "src/[ab", True),
        ("src/a.b", "src/axb", False),
        ("src/a+(b)", "src/a+(b)", True),
        ("src/^x$", "src/^x$", True),
        ("src/[\\^]", "src/^", True),
        # A trailing slash is the folder's contents; `./` and `//` are ignored.
        ("src/", "src/a/b.py", True),
        ("src/", "src", False),
        ("./src/*.py", "src/a.py", True),
        ("src//*.py", "src/a.py", True),
        # Case-sensitive, anchored at both ends.
        ("src/*.py", "SRC/a.py", False),
        ("src", "src", True),
        ("src", "src/a.py", False),
        ("src/a.py", "x/src/a.py", False),
    ],
)
def test_glob_matching(pattern: str, path: str, expected: bool) -> None:
    assert match_glob(pattern, path) is expected, glob_to_regex(pattern)


def test_a_malformed_glob_owns_nothing() -> None:
    assert not match_glob("src/[z-a].py", "src/b.py")
    assert not match_glob("src/[z-a].py", "src/[z-a].py")


def test_match_any_needs_one_match() -> None:
    assert match_any(["docs/**", "src/*.py"], "src/a.py")
    assert not match_any(["docs/**", "src/*.py"], "lib/a.py")
    assert not match_any([], "src/a.py")


def test_pool_dir_name_mirrors_the_layout() -> None:
    assert POOL_DIR_NAME == LAYOUT_POOL_DIR_NAME


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "my project"
    (root / ".agent-pool" / "experts" / "api").mkdir(parents=True)
    (root / "src" / "api").mkdir(parents=True)
    (root / "docs").mkdir()
    return root


def _check(
    project: Path,
    path: str | None,
    *,
    owns: tuple[str, ...] = ("src/api/**", "docs/*.md"),
    tool: str = "Write",
    cwd: Path | None = None,
    key: str = "file_path",
) -> str | None:
    tool_input: dict[str, object] = {"content": "x"}
    if path is not None:
        tool_input[key] = path
    return check_write(
        tool,
        tool_input,
        cwd=cwd or project,
        pool_dir=project / ".agent-pool",
        project_dir=project,
        owns=owns,
    )


@pytest.mark.parametrize("tool", sorted(WRITE_TOOLS))
@pytest.mark.parametrize("path", ["src/api/handler.py", "src/api/v2/deep/x.py", "docs/api.md"])
def test_owned_paths_are_allowed_for_every_write_tool(project: Path, tool: str, path: str) -> None:
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    assert _check(project, str(project / path), tool=tool, key=key) is None


@pytest.mark.parametrize("path", ["src/web/app.py", "docs/sub/api.md", "README.md", "src/api"])
def test_paths_outside_the_owns_globs_are_denied_naming_them(project: Path, path: str) -> None:
    reason = _check(project, str(project / path))
    assert reason is not None
    assert "src/api/**, docs/*.md" in reason
    assert path in reason
    assert "\n" not in reason


def test_relative_paths_resolve_against_cwd(project: Path) -> None:
    assert _check(project, "src/api/x.py") is None
    assert _check(project, "x.py", cwd=project / "src" / "api") is None
    assert _check(project, "x.py", cwd=project / "src") is not None


@pytest.mark.parametrize(
    "path",
    ["src/api/../web/x.py", "src/api/../../README.md", "../elsewhere.py", "/etc/passwd"],
)
def test_dot_dot_escapes_are_caught(project: Path, path: str) -> None:
    assert _check(project, path) is not None


def test_dot_dot_that_stays_inside_is_fine(project: Path) -> None:
    assert _check(project, "src/web/../api/x.py") is None
    assert _check(project, str(project / "docs" / "." / "x.md")) is None


def test_outside_the_project_the_reason_says_so(project: Path) -> None:
    reason = _check(project, "/tmp/elsewhere/x.py")
    assert reason is not None
    assert "outside the project folder" in reason


@pytest.mark.parametrize(
    "path",
    [
        ".agent-pool/experts/api/state.md",
        ".agent-pool",
        ".agent-pool/pool.toml",
        "src/api/../../.agent-pool/experts/api/identity.md",
    ],
)
@pytest.mark.parametrize("owns", [(), ("**",), (".agent-pool/**",)])
def test_the_pool_folder_is_always_denied(project: Path, path: str, owns: tuple[str, ...]) -> None:
    reason = _check(project, path, owns=owns)
    assert reason is not None
    assert "mcp__agent-pool__update_state" in reason
    assert "pool folder" in reason


def test_any_folder_named_like_a_pool_is_denied_naming_that_folder(
    project: Path, tmp_path: Path
) -> None:
    reason = _check(project, str(tmp_path / "home" / ".agent-pool" / "experts" / "x.md"), owns=())
    assert reason is not None
    assert f"pool folder {tmp_path / 'home' / '.agent-pool'}," in reason


def test_a_pool_folder_outside_the_project_is_denied(project: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pools" / "custom"
    pool.mkdir(parents=True)
    reason = check_write(
        "Write",
        {"file_path": str(pool / "state.md")},
        cwd=project,
        pool_dir=pool,
        project_dir=project,
        owns=(),
    )
    assert reason is not None
    assert "pool folder" in reason


def test_a_symlink_into_the_pool_is_caught(project: Path) -> None:
    (project / "src" / "api" / "notes").symlink_to(project / ".agent-pool" / "experts" / "api")
    reason = _check(project, "src/api/notes/state.md")
    assert reason is not None
    assert "pool folder" in reason
    # Empty owns allows everything else, but still not this.
    assert _check(project, "src/api/notes/state.md", owns=()) is not None


def test_a_symlinked_file_into_the_pool_is_caught(project: Path) -> None:
    target = project / ".agent-pool" / "experts" / "api" / "state.md"
    target.write_text("state\n")
    (project / "docs" / "state.md").symlink_to(target)
    assert _check(project, "docs/state.md", owns=()) is not None


def test_a_symlink_out_of_the_project_is_caught(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "src" / "api" / "ext").symlink_to(outside)
    assert _check(project, "src/api/ext/x.py") is not None
    # Without owns only the pool folder is protected.
    assert _check(project, "src/api/ext/x.py", owns=()) is None


def test_a_symlink_to_an_unowned_part_of_the_project_is_caught(project: Path) -> None:
    (project / "src" / "web").mkdir()
    (project / "src" / "api" / "web").symlink_to(project / "src" / "web")
    reason = _check(project, "src/api/web/app.py")
    assert reason is not None
    assert "src/web/app.py" in reason


def test_a_project_reached_through_a_symlink_still_matches(project: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(project)
    # The model names the real path; the daemon named the alias (or the other way round).
    assert (
        check_write(
            "Write",
            {"file_path": str(project / "src/api/x.py")},
            cwd=alias,
            pool_dir=alias / ".agent-pool",
            project_dir=alias,
            owns=("src/api/**",),
        )
        is None
    )
    assert _check(project, str(alias / "src/api/x.py"), owns=("src/api/**",)) is None
    assert _check(project, str(alias / ".agent-pool/x"), owns=()) is not None


def test_a_symlink_inside_that_resolves_to_an_owned_path_is_fine(project: Path) -> None:
    (project / "src" / "api" / "current").symlink_to(project / "src" / "api" / "v2")
    assert _check(project, "src/api/current/x.py") is None


@pytest.mark.parametrize("path", ["src/web/x.py", "/etc/hosts", "../x", "README.md"])
def test_empty_owns_allows_anything_outside_the_pool(project: Path, path: str) -> None:
    assert _check(project, path, owns=()) is None


def test_notebook_edit_uses_notebook_path(project: Path) -> None:
    assert _check(project, "src/api/a.ipynb", tool="NotebookEdit", key="notebook_path") is None
    reason = _check(project, "src/web/a.ipynb", tool="NotebookEdit", key="notebook_path")
    assert reason is not None
    assert "src/web/a.ipynb" in reason


@pytest.mark.parametrize("tool", ["Read", "Bash", "Glob", "mcp__agent-pool__update_state", ""])
def test_other_tools_are_not_checked(project: Path, tool: str) -> None:
    assert _check(project, ".agent-pool/pool.toml", tool=tool) is None
    assert _check(project, None, tool=tool) is None


@pytest.mark.parametrize("value", [None, "", "   ", 42, ["a"], "src/api/\0x.py"])
@pytest.mark.parametrize("owns", [(), ("src/**",)])
def test_a_missing_or_invalid_path_is_denied(
    project: Path, value: object, owns: tuple[str, ...]
) -> None:
    tool_input: dict[str, object] = {} if value is None else {"file_path": value}
    reason = check_write(
        "Edit",
        tool_input,
        cwd=project,
        pool_dir=project / ".agent-pool",
        project_dir=project,
        owns=owns,
    )
    assert reason is not None
    assert "file_path" in reason
    assert "absolute path" in reason


def test_a_home_relative_path_is_expanded(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(project))
    assert _check(project, "~/src/api/x.py") is None
    assert _check(project, "~/.agent-pool/pool.toml", owns=()) is not None


def test_a_path_with_a_newline_keeps_the_reason_on_one_line(project: Path) -> None:
    reason = _check(project, "src/web/a\nb.py")
    assert reason is not None
    assert "\n" not in reason
    assert "a\\nb.py" in reason


def test_the_project_folder_itself_is_not_owned(project: Path) -> None:
    reason = _check(project, str(project))
    assert reason is not None
    assert str(project) in reason


def test_paths_may_be_strings(project: Path) -> None:
    reason = check_write(
        "Write",
        {"file_path": "src/api/x.py"},
        cwd=os.fspath(project),
        pool_dir=os.fspath(project / ".agent-pool"),
        project_dir=os.fspath(project),
        owns=["src/api/**"],
    )
    assert reason is None


def test_an_unowned_name_linking_to_an_owned_file_is_denied(project: Path) -> None:
    (project / "lib").symlink_to(project / "src" / "api")
    reason = _check(project, "lib/x.py")
    assert reason is not None
    assert "lib/x.py" in reason


def test_an_alias_outside_the_project_is_judged_by_where_it_lands(
    project: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(project)
    assert _check(project, str(alias / "src/web/x.py")) is not None
    assert _check(project, str(alias / ".agent-pool/pool.toml"), owns=()) is not None
