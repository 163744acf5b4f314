"""The service files of one pool's daemon: a systemd user unit and a launchd agent (pure).

Both run `python -m agent_pool --pool DIR start` in the foreground: the service manager
is the supervisor, so the daemon must not detach. Every value that reaches a file is
checked here (absolute paths, no control characters) and quoted for its format, so a
project path with spaces, quotes, `%` or `$` in it means exactly itself.
"""

from __future__ import annotations

import hashlib
import math
import os
import plistlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent_pool.errors import UsageError
from agent_pool.pool.layout import PoolLayout

SERVICE_NAME_PATTERN: Final = re.compile(r"agent-pool-[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{8}")
SLUG_MAX_LENGTH: Final = 32
# The daemon may need all of its drain grace to stop; this much more covers stopping
# the sessions it then has to kill and closing the board.
STOP_MARGIN_S: Final = 30
RESTART_DELAY_S: Final = 5
# What the service needs from the installing shell to find `claude` and the same
# user-level configuration; nothing else is copied (secrets above all).
CAPTURED_VARIABLES: Final = ("PATH", "AGENT_POOL_HOME", "AGENT_POOL_CLAUDE_BIN")
SECRETS_FILE_NAME: Final = "service.env"
# `%h` is systemd's specifier for the user's home folder.
DEFAULT_SECRETS_FILE: Final = f"%h/.agent-pool/{SECRETS_FILE_NAME}"
SERVICE_LOG_NAME: Final = "service.log"

# Words systemd reads literally without quotes: no whitespace, quotes, backslash,
# `%` (specifiers), `$` (variable expansion) or `;` (command separator).
_PLAIN_WORD: Final = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x1f\x7f]")
_VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ServiceFileError(UsageError):
    """A value cannot be written into a service file."""


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a service file says about one pool's daemon."""

    pool_dir: Path  # the absolute `.agent-pool` folder
    pool_name: str
    python: Path  # the interpreter that runs `-m agent_pool` (sys.executable)
    project_dir: Path  # the daemon's working directory
    drain_grace_s: float  # `[daemon] drain_grace`
    environment: Mapping[str, str] = field(default_factory=dict)
    # Read by systemd for secrets; None: ~/.agent-pool/service.env.
    secrets_file: Path | None = None

    def __post_init__(self) -> None:
        paths = {
            "the pool folder": self.pool_dir,
            "the python executable": self.python,
            "the project folder": self.project_dir,
        }
        if self.secrets_file is not None:
            paths["the secrets file"] = self.secrets_file
        for what, path in paths.items():
            if not path.is_absolute():
                raise ServiceFileError(f"{what} must be an absolute path, not {str(path)!r}")
            _check_text(what, str(path))
        # systemd reads these two unquoted to the end of the line, which it strips.
        for raw in (self.project_dir, self.secrets_file):
            if raw is not None and str(raw).endswith(" "):
                raise ServiceFileError(
                    f"{str(raw)!r} cannot go into a service file: it ends with a space"
                )
        for key, value in self.environment.items():
            if _VARIABLE_NAME.fullmatch(key) is None:
                raise ServiceFileError(f"invalid environment variable name {key!r}")
            _check_text(f"the variable {key}", value)
        if not math.isfinite(self.drain_grace_s) or self.drain_grace_s < 0:
            raise ServiceFileError(f"invalid drain grace: {self.drain_grace_s!r} s")

    @property
    def name(self) -> str:
        return service_name(self.pool_dir, self.pool_name)

    @property
    def argv(self) -> list[str]:
        """The daemon in the foreground: the service manager supervises it."""
        return [str(self.python), "-m", "agent_pool", "--pool", str(self.pool_dir), "start"]

    @property
    def stop_timeout_s(self) -> int:
        return math.ceil(self.drain_grace_s) + STOP_MARGIN_S

    @property
    def log_file(self) -> Path:
        """Where launchd sends the daemon's stdout and stderr."""
        return PoolLayout(self.pool_dir).runtime_dir / SERVICE_LOG_NAME


def pool_slug(pool_name: str) -> str:
    """The pool name reduced to `[a-z0-9-]`, for a readable service name."""
    slug = re.sub(r"[^a-z0-9]+", "-", pool_name.lower()).strip("-")
    return slug[:SLUG_MAX_LENGTH].strip("-") or "pool"


def service_name(pool_dir: Path, pool_name: str) -> str:
    """`agent-pool-<slug>-<hash>`: the hash of the pool's path tells apart two pools
    with the same name, and only validated characters ever reach a file name."""
    digest = hashlib.sha256(os.fsencode(pool_dir)).hexdigest()[:8]
    name = f"agent-pool-{pool_slug(pool_name)}-{digest}"
    if SERVICE_NAME_PATTERN.fullmatch(name) is None:  # unreachable; a guard for the path
        raise ValueError(f"bad service name {name!r}")
    return name


def captured_environment(environ: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """The variables the service needs from the installing shell, paths made absolute.

    The service starts in the project folder, so a path relative to where `install` ran
    would point elsewhere. A bare `AGENT_POOL_CLAUDE_BIN` (`claude`) is looked up on
    PATH and stays as it is.
    """
    captured: dict[str, str] = {}
    for key in CAPTURED_VARIABLES:
        value = environ.get(key)
        if not value:
            continue
        if key == "AGENT_POOL_HOME" or (key == "AGENT_POOL_CLAUDE_BIN" and "/" in value):
            value = str(cwd / Path(value).expanduser())
        captured[key] = value
    return captured


def systemd_unit(spec: ServiceSpec) -> str:
    """The text of a systemd user unit for `spec`."""
    executable, *arguments = spec.argv
    exec_start = " ".join([_executable(Path(executable)), *map(_argument, arguments)])
    environment = [
        f"Environment={_quoted(f'{key}={value}', exec_line=False)}"
        for key, value in spec.environment.items()
    ]
    secrets = (
        DEFAULT_SECRETS_FILE if spec.secrets_file is None else _specifiers(str(spec.secrets_file))
    )
    lines = [
        "# Written by `agent-pool service install` for the pool at",
        f"# {spec.pool_dir}",
        "# Regenerate it with `agent-pool service install --force` rather than editing it.",
        "[Unit]",
        f"Description=agent-pool daemon (pool {_specifiers(_printable(spec.pool_name))})",
        "",
        "[Service]",
        "Type=simple",
        # WorkingDirectory takes the rest of the line as the path: no quotes, specifiers only.
        f"WorkingDirectory={_specifiers(str(spec.project_dir))}",
        f"ExecStart={exec_start}",
        *environment,
        "# Secrets such as ANTHROPIC_API_KEY go in this file (mode 0600), never in this",
        "# unit, which is world-readable. The leading '-' lets the file be absent.",
        f"EnvironmentFile=-{secrets}",
        "StandardInput=null",
        "Restart=on-failure",
        f"RestartSec={RESTART_DELAY_S}",
        "# Stopping sends SIGTERM to the daemon alone: it stops dispatching, lets running",
        "# sessions finish for up to [daemon] drain_grace, then stops them itself; hence",
        f"# the timeout of drain_grace ({spec.drain_grace_s:g} s) + {STOP_MARGIN_S} s.",
        "# KillMode=process also keeps systemd from killing the sessions when the daemon",
        "# crashes: the restarted daemon adopts the ones still running instead of losing",
        "# paid work.",
        "KillMode=process",
        f"TimeoutStopSec={spec.stop_timeout_s}",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def launchd_plist(spec: ServiceSpec) -> bytes:
    """The property list of a launchd user agent for `spec`."""
    agent: dict[str, object] = {
        "Label": spec.name,
        "ProgramArguments": spec.argv,
        "WorkingDirectory": str(spec.project_dir),
        "EnvironmentVariables": dict(spec.environment),
        "RunAtLoad": True,
        # Restart after a crash, not after `agent-pool stop` (which exits 0).
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY_S,
        "ExitTimeOut": spec.stop_timeout_s,
        # Sessions run in process groups of their own; say outright that launchd must
        # leave them be when the daemon dies, so a restarted daemon can adopt them.
        "AbandonProcessGroup": True,
        "StandardOutPath": str(spec.log_file),
        "StandardErrorPath": str(spec.log_file),
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML, sort_keys=False)


def _check_text(what: str, value: str) -> None:
    # A newline would end the setting (systemd) or the value (launchd, XML) early.
    if _CONTROL_CHARACTER.search(value):
        raise ServiceFileError(
            f"{what} cannot go into a service file: {value!r} contains a control character"
        )
    # Both formats are UTF-8 text; a path of undecodable bytes cannot be written in one.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ServiceFileError(
            f"{what} cannot go into a service file: {value!r} is not valid UTF-8"
        ) from None


def _executable(path: Path) -> str:
    """The first word of ExecStart. systemd expands specifiers in it but not variables,
    and refuses an executable whose path holds a quote or a backslash, however quoted."""
    text = str(path)
    if any(char in text for char in "\"'\\"):
        raise ServiceFileError(
            f"systemd cannot run an executable whose path holds a quote or a backslash: "
            f"{text!r}; install agent-pool under a folder without them"
        )
    return text if _PLAIN_WORD.fullmatch(text) else f'"{_specifiers(text)}"'


def _argument(word: str) -> str:
    return word if _PLAIN_WORD.fullmatch(word) else _quoted(word, exec_line=True)


def _quoted(text: str, *, exec_line: bool) -> str:
    """A double-quoted systemd word: C escapes for `\\` and `"`, `%%` for `%`, and on
    command lines `$$` for `$` (which would otherwise expand a variable)."""
    escaped = _specifiers(text.replace("\\", "\\\\").replace('"', '\\"'))
    if exec_line:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else " " for char in text)
