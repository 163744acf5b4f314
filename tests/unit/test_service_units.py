"""The service files: systemd unit text and quoting, the launchd plist, the service name."""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_pool.service.units import (
    SERVICE_NAME_PATTERN,
    ServiceFileError,
    ServiceSpec,
    captured_environment,
    launchd_plist,
    pool_slug,
    service_name,
    systemd_unit,
)

# Every character systemd treats specially somewhere: space, quotes, backslash, the
# specifier `%`, the variable `$` and the command separator `;`.
AWKWARD = "my proj 'a' \"b\" \\c 100% $HOME ;"


def make_spec(root: Path, **changes: Any) -> ServiceSpec:
    fields: dict[str, Any] = {
        "pool_dir": root / "project" / ".agent-pool",
        "pool_name": "project",
        "python": root / "venv" / "bin" / "python",
        "project_dir": root / "project",
        "drain_grace_s": 30.0,
        "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin"},
    }
    fields.update(changes)
    return ServiceSpec(**fields)


def settings(unit: str, key: str) -> list[str]:
    """Every value of `key` in the unit, as written."""
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


def setting(unit: str, key: str) -> str:
    values = settings(unit, key)
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def systemd_words(value: str) -> list[str]:
    """How systemd splits an Environment= value into words.

    Within double quotes it reads the C escapes `\\\\` and `\\"` (as POSIX shlex
    does for our text), then `%%` is one `%`.
    """
    return [word.replace("%%", "%") for word in shlex.split(value)]


def exec_words(value: str) -> list[str]:
    """How systemd reads ExecStart: as above, and in the arguments (not the executable,
    which systemd never expands) `$$` is one `$`."""
    executable, *arguments = systemd_words(value)
    return [executable, *(word.replace("$$", "$") for word in arguments)]


# -- the service name -------------------------------------------------------------------


def test_the_name_is_a_slug_of_the_pool_name_and_a_hash_of_its_path() -> None:
    pool_dir = Path("/home/me/work/shop/.agent-pool")
    digest = hashlib.sha256(os.fsencode(pool_dir)).hexdigest()[:8]
    assert service_name(pool_dir, "Shop Front_2!") == f"agent-pool-shop-front-2-{digest}"
    assert service_name(pool_dir, "shop") == service_name(pool_dir, "shop")
    same_name_elsewhere = service_name(Path("/home/me/other/shop/.agent-pool"), "shop")
    assert same_name_elsewhere != service_name(pool_dir, "shop")


def test_the_slug_keeps_only_lowercase_letters_digits_and_dashes() -> None:
    assert pool_slug("My Pool") == "my-pool"
    assert pool_slug("../../etc/passwd") == "etc-passwd"
    assert pool_slug("--a--b--") == "a-b"
    assert pool_slug("Ünïcode") == "n-code"
    assert pool_slug("!!!") == "pool"
    assert pool_slug("日本") == "pool"
    assert len(pool_slug("x" * 200)) == 32
    assert not pool_slug("a" * 31 + "-b").endswith("-")


@given(name=st.text(), path=st.text(min_size=1).map(lambda text: Path("/", text)))
def test_any_pool_name_and_path_give_a_safe_file_name(name: str, path: Path) -> None:
    result = service_name(path, name)
    assert SERVICE_NAME_PATTERN.fullmatch(result)
    assert re.fullmatch(r"[a-z0-9-]+", result)


# -- the systemd unit ---------------------------------------------------------------------


def test_the_unit_runs_the_daemon_in_the_foreground_under_systemd(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        drain_grace_s=45.5,
        environment={"PATH": "/opt/bin:/usr/bin", "AGENT_POOL_CLAUDE_BIN": "/opt/bin/claude"},
    )
    unit = systemd_unit(spec)

    words = exec_words(setting(unit, "ExecStart"))
    assert words == [str(spec.python), "-m", "agent_pool", "--pool", str(spec.pool_dir), "start"]
    assert "--detach" not in unit
    assert setting(unit, "WorkingDirectory") == str(spec.project_dir)
    assert [systemd_words(value) for value in settings(unit, "Environment")] == [
        ["PATH=/opt/bin:/usr/bin"],
        ["AGENT_POOL_CLAUDE_BIN=/opt/bin/claude"],
    ]
    assert setting(unit, "EnvironmentFile") == "-%h/.agent-pool/service.env"
    assert setting(unit, "StandardInput") == "null"
    assert setting(unit, "Restart") == "on-failure"
    assert setting(unit, "RestartSec") == "5"
    assert setting(unit, "KillMode") == "process"
    assert setting(unit, "TimeoutStopSec") == "76"  # ceil(45.5) + 30
    assert setting(unit, "WantedBy") == "default.target"
    sections = [line for line in unit.splitlines() if line.startswith("[")]
    assert sections == ["[Unit]", "[Service]", "[Install]"]
    # The reason for KillMode=process is written next to it.
    assert "adopts the ones still running" in unit


def test_awkward_paths_are_quoted_and_escaped_for_systemd(tmp_path: Path) -> None:
    root = tmp_path / AWKWARD
    spec = make_spec(
        root,
        python=tmp_path / "venv 100% $x ;" / "bin" / "python",
        pool_name="100% $HOME",
        environment={"PATH": f"{root}/bin:/usr/bin", "AGENT_POOL_HOME": f"{root}/home"},
        secrets_file=root / "home" / "service.env",
    )
    unit = systemd_unit(spec)

    assert exec_words(setting(unit, "ExecStart")) == spec.argv
    assert "$$HOME" in setting(unit, "ExecStart")  # `$HOME` would be expanded
    assert [systemd_words(value) for value in settings(unit, "Environment")] == [
        [f"PATH={root}/bin:/usr/bin"],
        [f"AGENT_POOL_HOME={root}/home"],
    ]
    # These two are read unquoted to the end of the line: only `%` needs doubling.
    assert setting(unit, "WorkingDirectory") == str(spec.project_dir).replace("%", "%%")
    assert setting(unit, "EnvironmentFile") == "-" + f"{root}/home/service.env".replace("%", "%%")
    assert setting(unit, "Description") == "agent-pool daemon (pool 100%% $HOME)"


def test_plain_words_stay_unquoted(tmp_path: Path) -> None:
    spec = make_spec(Path("/home/me"))
    assert setting(systemd_unit(spec), "ExecStart") == (
        "/home/me/venv/bin/python -m agent_pool --pool /home/me/project/.agent-pool start"
    )


@pytest.mark.parametrize("folder", ["o'brien", 'say "hi"', "back\\slash"])
def test_systemd_cannot_run_a_python_whose_path_holds_a_quote(tmp_path: Path, folder: str) -> None:
    spec = make_spec(tmp_path, python=tmp_path / folder / "python")
    with pytest.raises(ServiceFileError, match="quote or a backslash"):
        systemd_unit(spec)
    assert plistlib.loads(launchd_plist(spec))["ProgramArguments"][0] == str(spec.python)


def test_values_that_cannot_go_into_a_service_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceFileError, match="absolute path"):
        make_spec(tmp_path, project_dir=Path("relative/project"))
    with pytest.raises(ServiceFileError, match="control character") as caught:
        make_spec(tmp_path, project_dir=tmp_path / "two\nlines")
    assert "\n" not in str(caught.value).replace("\\n", "")
    with pytest.raises(ServiceFileError, match="ends with a space"):
        make_spec(tmp_path, project_dir=tmp_path / "trailing ")
    with pytest.raises(ServiceFileError, match="variable name"):
        make_spec(tmp_path, environment={"BAD NAME": "x"})
    with pytest.raises(ServiceFileError, match="control character"):
        make_spec(tmp_path, environment={"PATH": "/bin\n[Service]"})
    with pytest.raises(ServiceFileError, match="drain grace"):
        make_spec(tmp_path, drain_grace_s=float("nan"))


def test_a_pool_name_cannot_break_the_unit(tmp_path: Path) -> None:
    unit = systemd_unit(make_spec(tmp_path, pool_name="evil\nExecStartPre=/bin/rm -rf ~"))
    keys = [line.split("=", 1)[0] for line in unit.splitlines() if "=" in line]
    assert "ExecStartPre" not in keys
    assert (
        setting(unit, "Description") == "agent-pool daemon (pool evil ExecStartPre=/bin/rm -rf ~)"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    root = tmp_path / AWKWARD
    # Everything systemd allows in an executable's path: no quotes, no backslash.
    python = tmp_path / "venv 100% $x ;" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)  # verify checks that ExecStart can be executed
    spec = make_spec(
        root,
        python=python,
        environment={"PATH": f"{root}/bin:/usr/bin"},
        secrets_file=root / "home" / "service.env",
    )
    spec.project_dir.mkdir(parents=True)

    accepted = _verify(tmp_path / "units", spec.name, systemd_unit(spec))
    assert accepted.returncode == 0, accepted.stderr
    # Unknown keys and bad values are only warnings: none may name our unit.
    assert spec.name not in accepted.stdout + accepted.stderr

    # The check is live here: a command that does not exist is refused.
    missing = make_spec(root, python=tmp_path / "no such python")
    refused = _verify(tmp_path / "broken", missing.name, systemd_unit(missing))
    assert refused.returncode != 0
    assert "no such python" in refused.stderr


def _verify(folder: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    # Plain `verify` (the system manager's view) works as root in a container, where
    # `--user` fails for want of a user runtime folder; the unit syntax is the same.
    folder.mkdir()
    unit_file = folder / f"{name}.service"
    unit_file.write_text(text, encoding="utf-8")
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- the launchd agent ---------------------------------------------------------------------


def test_the_plist_round_trips_with_the_right_keys(tmp_path: Path) -> None:
    root = tmp_path / AWKWARD
    environment = {"PATH": "/opt/homebrew/bin:/usr/bin", "AGENT_POOL_HOME": f"{root}/home"}
    spec = make_spec(root, drain_grace_s=12, environment=environment)

    agent = plistlib.loads(launchd_plist(spec))

    assert agent["Label"] == spec.name
    assert agent["ProgramArguments"] == [
        str(spec.python),
        "-m",
        "agent_pool",
        "--pool",
        str(spec.pool_dir),
        "start",
    ]
    assert agent["WorkingDirectory"] == str(spec.project_dir)
    assert agent["EnvironmentVariables"] == environment
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ExitTimeOut"] == 42
    assert agent["AbandonProcessGroup"] is True
    log = spec.pool_dir / "daemon" / "service.log"
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == str(log)


# -- what the service takes from the installing shell -----------------------------------


def test_only_the_needed_variables_are_captured_with_absolute_paths(tmp_path: Path) -> None:
    environ = {
        "PATH": "/usr/bin:/bin",
        "AGENT_POOL_HOME": "relative/home",
        "AGENT_POOL_CLAUDE_BIN": "claude",
        "ANTHROPIC_API_KEY": "sk-secret",
        "AGENT_POOL_DIR": "/somewhere/else",
        "HOME": "/home/me",
    }
    assert captured_environment(environ, tmp_path) == {
        "PATH": "/usr/bin:/bin",
        "AGENT_POOL_HOME": str(tmp_path / "relative" / "home"),
        "AGENT_POOL_CLAUDE_BIN": "claude",  # a bare name is looked up on PATH
    }
    relative_bin = captured_environment({"AGENT_POOL_CLAUDE_BIN": "bin/claude"}, tmp_path)
    assert relative_bin == {"AGENT_POOL_CLAUDE_BIN": str(tmp_path / "bin" / "claude")}
    assert captured_environment({"PATH": ""}, tmp_path) == {}
