"""The configuration as typed, frozen models: one class per TOML table.

Every table is strict (no silent "3" -> 3, no bool for an int) and closed (unknown
keys are errors), so a typo in pool.toml is reported instead of ignored. Validators
raise `ValueError` with plain-language messages; `load.py` turns pydantic's errors
into one `ConfigError` line naming the file and key path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

from agent_pool.config.units import parse_byte_size, parse_duration, parse_timeout
from agent_pool.errors import InvalidNameError
from agent_pool.names import ROLE_NAMES, check_expert_name

# Tables that only make sense for one pool; the global config.toml may not hold them.
POOL_ONLY_SECTIONS: Final = frozenset({"pool", "experts", "shared"})

DEFAULT_ALLOWED_TOOLS: Final = ("Read", "Glob", "Grep", "Edit", "Write", "MultiEdit")

_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _as_tuple(value: object) -> object:
    # TOML arrays arrive as lists; tuples keep the frozen models deeply immutable.
    return tuple(value) if isinstance(value, list) else value


def _positive_duration(value: object) -> timedelta:
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("must be greater than 0")
    return duration


def _timeout_override(value: object) -> timedelta | None:
    # None means "inherit [defaults]" (the key is absent: TOML has no null), so an
    # explicit "none" or 0 is kept as a zero duration meaning "no timeout".
    if value is None:
        return None
    return parse_timeout(value) or timedelta(0)


def _check_expert_name(value: str) -> str:
    try:
        return check_expert_name(value)
    except InvalidNameError as exc:
        # pydantic only collects ValueError; anything else would escape unreported.
        raise ValueError(f"invalid expert name {value!r}: {exc.problem}") from None


def _check_env_name(value: str) -> str:
    if _ENV_NAME.fullmatch(value) is None:
        raise ValueError(
            f"invalid environment variable name {value!r}: use letters, digits and '_', "
            "not starting with a digit"
        )
    return value


def _check_owns_pattern(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    if value.startswith(("/", "~")):
        raise ValueError(f"{value!r} must be relative to the project folder, not absolute")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"{value!r} must stay inside the project folder (no '..')")
    return value


def _check_project_dir(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    if value.startswith("~"):
        raise ValueError(
            "'~' is not expanded: use an absolute path or one relative to the .agent-pool folder"
        )
    return value


def _check_unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"lists {value!r} more than once")
        seen.add(value)
    return values


def _check_argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    if not argv[0]:
        raise ValueError("the program (first item) must not be empty")
    return argv


Duration = Annotated[timedelta, PlainValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, PlainValidator(_positive_duration)]
# None = no timeout.
Timeout = Annotated[timedelta | None, PlainValidator(parse_timeout)]
# None = inherit; timedelta(0) = explicitly no timeout.
TimeoutOverride = Annotated[timedelta | None, PlainValidator(_timeout_override)]
ByteSize = Annotated[int, PlainValidator(parse_byte_size)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
StrList = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
ExpertName = Annotated[str, AfterValidator(_check_expert_name)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
OwnsPattern = Annotated[str, AfterValidator(_check_owns_pattern)]
Argv = Annotated[
    tuple[str, ...], BeforeValidator(_as_tuple), Field(min_length=1), AfterValidator(_check_argv)
]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class PoolSection(_Table):
    """`[pool]`: identity and location of the project (pool.toml only)."""

    name: NonEmptyStr | None = None  # None: the name of the folder holding .agent-pool
    project_dir: Annotated[NonEmptyStr, AfterValidator(_check_project_dir)] = ".."


class DefaultsSection(_Table):
    """`[defaults]`: what every role and expert gets unless it overrides it."""

    model: NonEmptyStr = "sonnet"
    allowed_tools: StrList = DEFAULT_ALLOWED_TOOLS
    session_timeout: Timeout = None
    stall_timeout: PositiveDuration = timedelta(minutes=10)
    max_attempts: PositiveInt = 3
    max_concurrent: PositiveInt = 4
    max_turns: PositiveInt | None = None
    max_budget_usd: PositiveFloat | None = None
    retry_backoff: Duration = timedelta(seconds=10)  # base of the exponential backoff
    log_retention: PositiveDuration = timedelta(days=14)
    log_archive_max_bytes: ByteSize = 256 * 1024 * 1024
    index_max_rows: PositiveInt = 2000
    state_max_bytes: ByteSize = 16 * 1024
    errors_max_bytes: ByteSize = 8 * 1024


class RunnerSection(_Table):
    """`[runner]`: how sessions are started."""

    claude_bin: NonEmptyStr = "claude"
    env: Mapping[EnvName, str] = Field(default_factory=dict)


class DaemonSection(_Table):
    """`[daemon]`: the supervisor's own timing and log cap."""

    drain_grace: Duration = timedelta(seconds=30)
    reconcile_interval: PositiveDuration = timedelta(seconds=30)
    log_max_bytes: ByteSize = 10 * 1024 * 1024
    upkeep_interval: PositiveDuration = timedelta(hours=1)
    board_retention: PositiveDuration = timedelta(days=30)
    board_archive_max_tasks: PositiveInt = 1_000_000


class MailSection(_Table):
    """`[mail]`: limits on posted mail."""

    max_bytes: ByteSize = 1024 * 1024


class RoleConfig(_Table):
    """`[architect]`, `[researcher]`, `[concierge]`: overrides of `[defaults]` (None = inherit)."""

    model: NonEmptyStr | None = None
    allowed_tools: StrList | None = None
    timeout: TimeoutOverride = None
    max_turns: PositiveInt | None = None
    max_budget_usd: PositiveFloat | None = None


class ExpertConfig(RoleConfig):
    """`[experts.NAME]`: an expert's overrides, the files it owns, and what it knows."""

    owns: Annotated[tuple[OwnsPattern, ...], BeforeValidator(_as_tuple)] = ()
    description: str = ""


class SharedSection(_Table):
    """`[shared]`: user-level experts (in ~/.agent-pool/experts) this pool uses."""

    include: Annotated[
        tuple[ExpertName, ...], BeforeValidator(_as_tuple), AfterValidator(_check_unique)
    ] = ()


class CurationSection(_Table):
    """`[curation]`: when the researcher tidies the experts' knowledge."""

    enabled: bool = True
    every_tasks: PositiveInt = 20
    every: PositiveDuration = timedelta(hours=24)
    promote_threshold: Annotated[int, Field(ge=2)] = 3


class ApprovalSection(_Table):
    """`[approval]`: which dispatches wait for a human (or a command) to approve."""

    mode: Literal["none", "decomposition", "all"] = "none"
    # An argv, never a shell string, so nothing in it is ever interpreted by a shell.
    command: Argv | None = None


class ConfigFile(_Table):
    """The schema of one config file (and of the global + pool files merged)."""

    pool: PoolSection = PoolSection()
    defaults: DefaultsSection = DefaultsSection()
    runner: RunnerSection = RunnerSection()
    daemon: DaemonSection = DaemonSection()
    mail: MailSection = MailSection()
    architect: RoleConfig = RoleConfig()
    researcher: RoleConfig = RoleConfig()
    concierge: RoleConfig = RoleConfig()
    experts: Mapping[ExpertName, ExpertConfig] = Field(default_factory=dict)
    shared: SharedSection = SharedSection()
    curation: CurationSection = CurationSection()
    approval: ApprovalSection = ApprovalSection()


@dataclass(frozen=True, slots=True)
class EffectiveAgentSettings:
    """What one role or expert actually runs with, `[defaults]` filled in."""

    model: str
    allowed_tools: tuple[str, ...]
    timeout: timedelta | None  # None: no timeout
    max_turns: int | None
    max_budget_usd: float | None


_NO_OVERRIDES: Final = RoleConfig()


class PoolConfig(ConfigFile):
    """The loaded configuration of one pool: the merged files plus resolved values."""

    name: NonEmptyStr
    project_dir: Path  # absolute; `pool.project_dir` resolved against the .agent-pool folder

    def overrides_for(self, name: str) -> RoleConfig:
        """The role's or expert's own table; empty for an expert not declared here."""
        if name in ROLE_NAMES:
            roles = {
                "architect": self.architect,
                "researcher": self.researcher,
                "concierge": self.concierge,
            }
            return roles[name]
        return self.experts.get(name, _NO_OVERRIDES)

    def settings_for(self, name: str) -> EffectiveAgentSettings:
        own = self.overrides_for(name)
        defaults = self.defaults
        if own.timeout is None:
            timeout = defaults.session_timeout
        else:
            timeout = own.timeout if own.timeout > timedelta(0) else None
        return EffectiveAgentSettings(
            model=own.model if own.model is not None else defaults.model,
            allowed_tools=(
                own.allowed_tools if own.allowed_tools is not None else defaults.allowed_tools
            ),
            timeout=timeout,
            max_turns=own.max_turns if own.max_turns is not None else defaults.max_turns,
            max_budget_usd=(
                own.max_budget_usd if own.max_budget_usd is not None else defaults.max_budget_usd
            ),
        )
