"""Configuration: the global config.toml and the pool's pool.toml, typed and validated."""

from agent_pool.config.load import CLAUDE_BIN_ENV, load_config, validate_config_text
from agent_pool.config.model import (
    DEFAULT_ALLOWED_TOOLS,
    POOL_ONLY_SECTIONS,
    ApprovalSection,
    ConfigFile,
    CurationSection,
    DaemonSection,
    DefaultsSection,
    EffectiveAgentSettings,
    ExpertConfig,
    MailSection,
    PoolConfig,
    PoolSection,
    RoleConfig,
    RunnerSection,
    SharedSection,
)
from agent_pool.config.units import (
    format_duration,
    parse_byte_size,
    parse_duration,
    parse_timeout,
)

__all__ = [
    "CLAUDE_BIN_ENV",
    "DEFAULT_ALLOWED_TOOLS",
    "POOL_ONLY_SECTIONS",
    "ApprovalSection",
    "ConfigFile",
    "CurationSection",
    "DaemonSection",
    "DefaultsSection",
    "EffectiveAgentSettings",
    "ExpertConfig",
    "MailSection",
    "PoolConfig",
    "PoolSection",
    "RoleConfig",
    "RunnerSection",
    "SharedSection",
    "format_duration",
    "load_config",
    "parse_byte_size",
    "parse_duration",
    "parse_timeout",
    "validate_config_text",
]
