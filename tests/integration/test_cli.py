from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent_pool import __version__
from agent_pool.mail import parse_mail
from tests.conftest import CliEnv


@pytest.fixture
def pool_dir(cli: CliEnv) -> Path:
    assert cli.run("init", "--expert", "backend").code == 0
    return cli.cwd / ".agent-pool"


def postoffice_files(pool_dir: Path) -> list[Path]:
    return sorted((pool_dir / "postoffice").glob("*.md"))


def test_version_and_help(cli: CliEnv) -> None:
    assert cli.run("--version").out.strip() == f"agent-pool {__version__}"
    result = cli.run("--help")
    assert result.code == 0
    for command in ("init", "submit", "doctor"):
        assert command in result.out


def test_usage_errors_are_one_line_with_exit_code_2(cli: CliEnv) -> None:
    for args in (["no-such-command"], ["submit"], ["init", "--bogus"]):
        result = cli.run(*args)
        assert result.code == 2, args
        assert len(result.err.strip().splitlines()) == 1, result.err
        assert result.err.startswith("agent-pool: error:")


def test_submit_posts_a_valid_mail_and_prints_its_id(cli: CliEnv, pool_dir: Path) -> None:
    result = cli.run(
        "submit", "--to", "backend", "--priority", "high", "--depends-on", "t-0", "Add /health"
    )
    assert result.code == 0, result.err
    message_id = result.out.strip()
    [posted] = postoffice_files(pool_dir)
    assert posted.name == f"{message_id}.md"
    message = parse_mail(posted.read_bytes())
    assert (message.id, message.sender, message.to) == (message_id, "concierge", "backend")
    assert (message.type, message.priority, message.depends_on) == ("task", "high", ("t-0",))
    assert message.body == "Add /health"
    assert message.timestamp is not None


def test_submit_reads_the_body_from_a_file_or_stdin(cli: CliEnv, pool_dir: Path) -> None:
    (cli.cwd / "plan.md").write_text("# Plan\n\nline two\n")
    from_file = cli.run("submit", "--to", "architect", "-f", "plan.md", "--id", "plan-1")
    from_stdin = cli.run("submit", "--to", "backend", "--type", "question", "-", stdin="why?\n")
    assert from_file.code == 0, from_file.err
    assert from_stdin.code == 0, from_stdin.err
    assert parse_mail((pool_dir / "postoffice" / "plan-1.md").read_bytes()).body == (
        "# Plan\n\nline two\n"
    )
    asked = parse_mail((pool_dir / "postoffice" / f"{from_stdin.out.strip()}.md").read_bytes())
    assert (asked.type, asked.body) == ("question", "why?\n")


def test_submit_to_an_unknown_expert_is_refused(cli: CliEnv, pool_dir: Path) -> None:
    result = cli.run("submit", "--to", "nobody", "hello")
    assert result.code == 2
    assert "unknown recipient 'nobody'" in result.err
    assert "backend" in result.err
    assert postoffice_files(pool_dir) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--to", "../../etc", "x"], "'../../etc'"),
        (["--to", "backend", "--id", "../escape", "x"], "'../escape'"),
        (["--to", "backend", "--from", "nobody", "x"], "unknown sender 'nobody'"),
        (["--to", "backend", "--depends-on", "a b", "x"], "a b"),
        (["--to", "backend"], "no body"),
        (["--to", "backend", "-f", "missing.md"], "missing.md"),
    ],
)
def test_submit_refuses_bad_arguments_without_posting(
    cli: CliEnv, pool_dir: Path, args: list[str], fragment: str
) -> None:
    result = cli.run("submit", *args)
    assert result.code == 2, result.err
    assert fragment in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert postoffice_files(pool_dir) == []


def test_submit_never_overwrites_an_existing_id(cli: CliEnv, pool_dir: Path) -> None:
    assert cli.run("submit", "--to", "backend", "--id", "t-1", "first").code == 0
    again = cli.run("submit", "--to", "backend", "--id", "t-1", "second")
    assert again.code == 1
    assert "'t-1' already exists" in again.err
    assert parse_mail((pool_dir / "postoffice" / "t-1.md").read_bytes()).body == "first"


def test_submit_refuses_a_body_over_the_mail_size_limit(cli: CliEnv, pool_dir: Path) -> None:
    (cli.cwd / "huge.md").write_text("x" * (5 * 1024 * 1024))
    result = cli.run("submit", "--to", "backend", "-f", "huge.md")
    assert result.code == 2
    assert "max_bytes" in result.err
    assert postoffice_files(pool_dir) == []


def test_submit_works_from_a_subfolder_and_with_pool_flag(cli: CliEnv, pool_dir: Path) -> None:
    nested = cli.cwd / "src" / "deep"
    nested.mkdir(parents=True)
    assert cli.run("submit", "--to", "backend", "x", cwd=nested).code == 0
    elsewhere = cli.cwd.parent
    assert (
        cli.run("--pool", str(pool_dir), "submit", "--to", "backend", "y", cwd=elsewhere).code == 0
    )
    assert len(postoffice_files(pool_dir)) == 2


def test_commands_outside_a_pool_say_how_to_create_one(cli: CliEnv) -> None:
    result = cli.run("submit", "--to", "backend", "x")
    assert result.code == 2
    assert "agent-pool init" in result.err


def test_config_errors_name_the_file_and_key(cli: CliEnv, pool_dir: Path) -> None:
    (pool_dir / "pool.toml").write_text("[defaults]\nmax_atempts = 3\n")
    result = cli.run("submit", "--to", "backend", "x")
    assert result.code == 2
    assert str(pool_dir / "pool.toml") in result.err
    assert "max_atempts" in result.err
    assert "max_attempts" in result.err  # the did-you-mean
    assert len(result.err.strip().splitlines()) == 1


def write_fake_claude(folder: Path, body: str) -> Path:
    path = folder / "fake-claude"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_doctor_reports_every_check(cli: CliEnv, pool_dir: Path) -> None:
    fake = write_fake_claude(cli.cwd, 'echo "9.9.9 (Claude Code)"')
    cli.env["AGENT_POOL_CLAUDE_BIN"] = str(fake)
    result = cli.run("doctor")
    assert result.code == 0, result.out + result.err
    assert "ok    python: 3." in result.out
    assert f"ok    pool: {pool_dir}" in result.out
    assert "ok    config: valid" in result.out
    assert f"ok    claude: 9.9.9 (Claude Code) ({fake})" in result.out
    assert "ok    folders:" in result.out
    assert "ok    experts: backend" in result.out


def test_doctor_fails_on_a_missing_claude_and_bad_config(cli: CliEnv, pool_dir: Path) -> None:
    cli.env["AGENT_POOL_CLAUDE_BIN"] = "/nonexistent/claude"
    missing = cli.run("doctor")
    assert missing.code == 1
    assert "FAIL  claude: '/nonexistent/claude' not found" in missing.out
    (pool_dir / "pool.toml").write_text("[approval]\nmode = 'sometimes'\n")
    broken = cli.run("doctor")
    assert broken.code == 1
    assert "FAIL  config:" in broken.out
    assert "approval.mode" in broken.out


def test_doctor_reports_a_broken_claude(cli: CliEnv, pool_dir: Path) -> None:
    fake = write_fake_claude(cli.cwd, "echo boom >&2; exit 3")
    cli.env["AGENT_POOL_CLAUDE_BIN"] = str(fake)
    result = cli.run("doctor")
    assert result.code == 1
    assert "--version exited 3" in result.out
