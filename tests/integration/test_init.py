from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import CliEnv

ROLE_TOOLS = {
    "architect": "define_contract",
    "researcher": "promote_pattern",
    "concierge": "ask_expert",
}


def test_init_creates_the_whole_layout_with_real_starter_files(cli: CliEnv) -> None:
    result = cli.run("init", "--expert", "backend", "--expert", "frontend")
    assert result.code == 0, result.err
    root = cli.cwd / ".agent-pool"
    for folder in ("postoffice", "dead-letter", "contracts", "formulas", "shared-state"):
        assert (root / folder).is_dir()
    assert (root / "daemon").stat().st_mode & 0o777 == 0o700
    for role, tool in ROLE_TOOLS.items():
        identity = (root / role / "identity.md").read_text()
        assert tool in identity
        assert (root / role / "inbox").is_dir()
    for expert in ("backend", "frontend"):
        folder = root / "experts" / expert
        identity = (folder / "identity.md").read_text()
        assert expert in identity
        assert "mcp__agent-pool__send_response" in identity
        assert "mcp__agent-pool__update_state" in identity
        assert expert in (folder / "state.md").read_text()
        assert (folder / "errors.md").is_file()
        assert (folder / "logs").is_dir()
    config = tomllib.loads((root / "pool.toml").read_text())
    assert config["pool"] == {"name": "project", "project_dir": ".."}


def test_init_twice_clobbers_nothing_and_adds_new_experts(cli: CliEnv) -> None:
    assert cli.run("init", "--expert", "backend").code == 0
    root = cli.cwd / ".agent-pool"
    state = root / "experts" / "backend" / "state.md"
    state.write_text("learned things")
    (root / "pool.toml").write_text('[pool]\nname = "mine"\n')

    again = cli.run("init", "--expert", "backend", "--expert", "infra")

    assert again.code == 0, again.err
    assert state.read_text() == "learned things"
    assert (root / "pool.toml").read_text() == '[pool]\nname = "mine"\n'
    assert (root / "experts" / "infra" / "identity.md").is_file()
    assert "updated pool" in again.out
    assert cli.run("init").out.strip().endswith("nothing changed")


def test_init_with_a_project_dir_records_it_relative_to_the_pool(cli: CliEnv) -> None:
    repo = cli.cwd / "repo"
    repo.mkdir()
    assert cli.run("init", "--project-dir", "repo").code == 0
    config = tomllib.loads((cli.cwd / ".agent-pool" / "pool.toml").read_text())
    assert config["pool"] == {"name": "repo", "project_dir": "../repo"}
    status = cli.run("doctor")
    assert f"project dir: {repo}" in status.out


def test_init_refuses_bad_and_reserved_expert_names(cli: CliEnv) -> None:
    for bad in ("Back", "a/b", "..", "has space", "architect", "auto"):
        result = cli.run("init", "--expert", bad)
        assert result.code == 2, bad
        assert repr(bad) in result.err
        assert len(result.err.strip().splitlines()) == 1
    assert not (cli.cwd / ".agent-pool").exists()


def test_init_in_a_read_only_folder_fails_with_one_clear_line(
    cli: CliEnv, readonly_dir: Path
) -> None:
    result = cli.run("init", cwd=readonly_dir)
    assert result.code == 1
    assert result.err.startswith("agent-pool: error: cannot create")
    assert str(readonly_dir / ".agent-pool") in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_init_over_a_file_named_like_a_folder_fails_cleanly(cli: CliEnv) -> None:
    (cli.cwd / ".agent-pool").write_text("not a folder")
    result = cli.run("init")
    assert result.code == 1
    assert "a file with that name exists" in result.err
