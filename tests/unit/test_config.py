"""Loading, layering and validating pool.toml and the global config.toml."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from agent_pool.config import (
    DEFAULT_ALLOWED_TOOLS,
    ConfigFile,
    DefaultsSection,
    EffectiveAgentSettings,
    PoolConfig,
    load_config,
    validate_config_text,
)
from agent_pool.errors import ConfigError
from agent_pool.pool.layout import HomeLayout, PoolLayout


class Files:
    """A pool and a home folder under tmp_path, never the real ~/.agent-pool."""

    def __init__(self, tmp_path: Path) -> None:
        self.layout = PoolLayout(tmp_path / "myproject" / ".agent-pool")
        self.home = HomeLayout(tmp_path / "home")
        self.layout.root.mkdir(parents=True)
        self.home.root.mkdir()

    def write_pool(self, text: str) -> Path:
        self.layout.pool_toml.write_text(text, encoding="utf-8")
        return self.layout.pool_toml

    def write_global(self, text: str) -> Path:
        self.home.config_toml.write_text(text, encoding="utf-8")
        return self.home.config_toml

    def load(self, environ: Mapping[str, str] | None = None) -> PoolConfig:
        return load_config(self.layout, self.home, environ or {})


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def load_error(files: Files) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        files.load()
    return caught.value


def assert_error(error: ConfigError, path: Path, key: str | None, *fragments: str) -> None:
    """The error names the file and the key path, and says what is wrong, on one line."""
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    assert error.path == path
    assert error.key == key
    if key is not None:
        assert f": {key}: " in message
    for fragment in fragments:
        assert fragment in error.problem, message


# --- defaults and layering -------------------------------------------------------


def test_no_files_gives_the_documented_defaults(files: Files) -> None:
    config = files.load()
    assert config.name == "myproject"
    assert config.project_dir == files.layout.root.parent.resolve()
    assert config.project_dir.is_absolute()
    d = config.defaults
    assert d.model == "sonnet"
    assert d.allowed_tools == ("Read", "Glob", "Grep", "Edit", "Write", "MultiEdit")
    assert d.session_timeout is None
    assert d.stall_timeout == timedelta(minutes=10)
    assert (d.max_attempts, d.max_concurrent) == (3, 4)
    assert d.max_turns is None
    assert d.max_budget_usd is None
    assert d.retry_backoff == timedelta(seconds=10)
    assert d.log_retention == timedelta(days=14)
    assert (d.state_max_bytes, d.errors_max_bytes) == (16 * 1024, 8 * 1024)
    assert config.runner.claude_bin == "claude"
    assert dict(config.runner.env) == {}
    assert config.daemon.drain_grace == timedelta(seconds=30)
    assert config.daemon.reconcile_interval == timedelta(seconds=30)
    assert config.daemon.log_max_bytes == 10 * 1024 * 1024
    assert config.mail.max_bytes == 1024 * 1024
    assert dict(config.experts) == {}
    assert config.shared.include == ()
    assert config.curation.enabled is True
    assert (config.curation.every_tasks, config.curation.promote_threshold) == (20, 3)
    assert config.curation.every == timedelta(hours=24)
    assert config.approval.mode == "none"
    assert config.approval.command is None


def test_empty_files_are_the_same_as_missing_ones(files: Files) -> None:
    files.write_pool("")
    files.write_global("# nothing here\n")
    assert files.load() == load_config(files.layout, HomeLayout(files.home.root / "nope"), {})


def test_the_pool_file_is_layered_over_the_global_file(files: Files) -> None:
    files.write_global(
        """
        [defaults]
        model = "opus"
        max_attempts = 5
        allowed_tools = ["Read", "Grep", "Bash"]
        [runner]
        claude_bin = "/opt/claude"
        [runner.env]
        FROM_GLOBAL = "1"
        SHARED = "global"
        [architect]
        model = "opus"
        """
    )
    files.write_pool(
        """
        [defaults]
        max_attempts = 2
        allowed_tools = ["Read"]
        [runner.env]
        SHARED = "pool"
        """
    )
    config = files.load()
    assert config.defaults.model == "opus"  # only in the global file
    assert config.defaults.max_attempts == 2  # the pool wins, key by key
    assert config.defaults.allowed_tools == ("Read",)  # lists replace, never concatenate
    assert config.defaults.max_concurrent == 4  # in neither: the default
    assert config.runner.claude_bin == "/opt/claude"
    assert dict(config.runner.env) == {"FROM_GLOBAL": "1", "SHARED": "pool"}
    assert config.architect.model == "opus"


def test_claude_bin_from_the_environment_wins(files: Files) -> None:
    files.write_global('[runner]\nclaude_bin = "/global/claude"\n')
    files.write_pool('[runner]\nclaude_bin = "/pool/claude"\n')
    assert files.load().runner.claude_bin == "/pool/claude"
    assert files.load({"AGENT_POOL_CLAUDE_BIN": "/env/claude"}).runner.claude_bin == "/env/claude"
    # Set but empty means "not set".
    assert files.load({"AGENT_POOL_CLAUDE_BIN": ""}).runner.claude_bin == "/pool/claude"


def test_pool_name_and_project_dir(files: Files, tmp_path: Path) -> None:
    files.write_pool('[pool]\nname = "web shop"\nproject_dir = "../src"\n')
    config = files.load()
    assert config.name == "web shop"
    assert config.project_dir == (tmp_path / "myproject" / "src").resolve()
    assert config.pool.project_dir == "../src"  # the written value is kept as written

    files.write_pool(f'[pool]\nproject_dir = "{tmp_path / "elsewhere"}"\n')
    assert files.load().project_dir == (tmp_path / "elsewhere").resolve()


def test_the_loaded_config_is_frozen(files: Files) -> None:
    config = files.load()
    with pytest.raises(ValueError, match="frozen"):
        config.defaults.max_attempts = 9  # type: ignore[misc]
    assert isinstance(config.defaults.allowed_tools, tuple)


def test_a_full_pool_file_loads(files: Files) -> None:
    files.write_pool(
        """
        [pool]
        name = "shop"
        [defaults]
        session_timeout = "1h"
        max_turns = 40
        max_budget_usd = 2
        state_max_bytes = "32KiB"
        [daemon]
        drain_grace = 0
        log_max_bytes = "1MB"
        [mail]
        max_bytes = 65536
        [researcher]
        model = "opus"
        [experts.backend]
        description = "the API server"
        owns = ["services/api/**", "*.sql"]
        model = "opus"
        timeout = "none"
        max_budget_usd = 0.5
        [experts.frontend]
        owns = ["web/**"]
        timeout = "15m"
        [shared]
        include = ["security"]
        [curation]
        enabled = false
        every = "12h"
        [approval]
        mode = "decomposition"
        command = ["notify-me", "--wait"]
        """
    )
    config = files.load()
    assert config.defaults.max_budget_usd == 2.0
    assert config.defaults.state_max_bytes == 32 * 1024
    assert config.daemon.drain_grace == timedelta(0)
    assert config.daemon.log_max_bytes == 1_000_000
    assert config.experts["backend"].owns == ("services/api/**", "*.sql")
    assert config.experts["backend"].description == "the API server"
    assert config.shared.include == ("security",)
    assert config.curation.enabled is False
    assert config.approval.mode == "decomposition"
    assert config.approval.command == ("notify-me", "--wait")


# --- effective settings ------------------------------------------------------------


def test_settings_for_falls_back_to_defaults(files: Files) -> None:
    files.write_pool(
        """
        [defaults]
        model = "sonnet"
        session_timeout = "1h"
        max_turns = 30
        [architect]
        model = "opus"
        max_turns = 10
        [experts.backend]
        allowed_tools = ["Read"]
        timeout = "none"
        max_budget_usd = 1.5
        [experts.frontend]
        timeout = "20m"
        """
    )
    config = files.load()
    assert config.settings_for("architect") == EffectiveAgentSettings(
        model="opus",
        allowed_tools=DEFAULT_ALLOWED_TOOLS,
        timeout=timedelta(hours=1),
        max_turns=10,
        max_budget_usd=None,
    )
    backend = config.settings_for("backend")
    assert (backend.model, backend.allowed_tools) == ("sonnet", ("Read",))
    assert backend.timeout is None  # explicitly no timeout, despite [defaults]
    assert backend.max_budget_usd == 1.5
    assert config.settings_for("frontend").timeout == timedelta(minutes=20)
    # Not declared anywhere: plain defaults.
    undeclared = config.settings_for("data")
    assert undeclared.model == "sonnet"
    assert undeclared.timeout == timedelta(hours=1)
    assert undeclared.max_turns == 30
    assert config.settings_for("concierge").model == "sonnet"


def test_pool_config_can_be_built_in_code(tmp_path: Path) -> None:
    config = PoolConfig(name="t", project_dir=tmp_path, defaults=DefaultsSection(max_concurrent=1))
    assert config.settings_for("researcher").model == "sonnet"
    assert config.defaults.max_concurrent == 1


# --- unreadable and malformed files --------------------------------------------------


def test_malformed_toml_names_the_file_and_the_line(files: Files) -> None:
    path = files.write_pool('[defaults]\nmodel = "opus"\nmax_attempts = \n')
    assert_error(load_error(files), path, None, "invalid TOML", "line 3")


def test_malformed_global_toml_names_the_global_file(files: Files) -> None:
    path = files.write_global("[defaults\n")
    files.write_pool("[defaults]\n")
    assert_error(load_error(files), path, None, "invalid TOML")


def test_a_file_that_is_not_utf8_is_an_error(files: Files) -> None:
    path = files.layout.pool_toml
    path.write_bytes(b'[pool]\nname = "caf\xe9"\n')
    assert_error(load_error(files), path, None, "not valid UTF-8")


def test_a_bom_is_accepted(files: Files) -> None:
    files.layout.pool_toml.write_bytes(b'\xef\xbb\xbf[pool]\nname = "bom"\n')
    assert files.load().name == "bom"


def test_a_directory_instead_of_a_file_is_an_error(files: Files) -> None:
    files.layout.pool_toml.mkdir()
    assert_error(load_error(files), files.layout.pool_toml, None, "cannot read the file")


# --- unknown keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        ("[defualts]\n", "defualts", "did you mean 'defaults'?"),
        ("naem = 'x'\n", "naem", "unknown key"),
        ("[defaults]\nmax_attemps = 3\n", "defaults.max_attemps", "did you mean 'max_attempts'?"),
        ("[runner]\nclaude_binary = 'x'\n", "runner.claude_binary", "did you mean 'claude_bin'?"),
        ("[experts.backend]\ntimout = '1m'\n", "experts.backend.timout", "did you mean 'timeout'?"),
        ("[experts.backend]\nown = ['a']\n", "experts.backend.own", "did you mean 'owns'?"),
        ("[approval]\nmodes = 'all'\n", "approval.modes", "did you mean 'mode'?"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(
    files: Files, text: str, key: str, suggestion: str
) -> None:
    path = files.write_pool(text)
    assert_error(load_error(files), path, key, "unknown key", suggestion)


def test_an_unknown_key_without_a_close_match_lists_the_allowed_keys(files: Files) -> None:
    path = files.write_pool("[mail]\nzzz = 1\n")
    assert_error(load_error(files), path, "mail.zzz", "unknown key", "allowed here: max_bytes")


def test_an_unknown_key_in_the_global_file_names_the_global_file(files: Files) -> None:
    path = files.write_global("[daemon]\ndrain_grase = '5s'\n")
    assert_error(load_error(files), path, "daemon.drain_grase", "did you mean 'drain_grace'?")


# --- wrong types and values --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[defaults]\nmax_attempts = "3"\n', "defaults.max_attempts", "expected an integer"),
        ("[defaults]\nmax_attempts = true\n", "defaults.max_attempts", "got boolean true"),
        ("[defaults]\nmax_concurrent = 2.0\n", "defaults.max_concurrent", "got float 2.0"),
        ("[defaults]\nallowed_tools = 3\n", "defaults.allowed_tools", "expected an array"),
        ("[defaults]\nallowed_tools = [3]\n", "defaults.allowed_tools[0]", "expected a string"),
        ("[defaults]\nmodel = 3\n", "defaults.model", "expected a string, got integer 3"),
        ('[defaults]\nmodel = ""\n', "defaults.model", "must not be empty"),
        ("[defaults]\nmax_budget_usd = true\n", "defaults.max_budget_usd", "expected a number"),
        ("[defaults]\nmax_budget_usd = 0\n", "defaults.max_budget_usd", "greater than 0"),
        ("[defaults]\nmax_attempts = 0\n", "defaults.max_attempts", "must be at least 1"),
        ("[defaults]\nmax_turns = -1\n", "defaults.max_turns", "must be at least 1"),
        ("[curation]\nenabled = 1\n", "curation.enabled", "expected true or false"),
        ("[curation]\npromote_threshold = 1\n", "curation.promote_threshold", "at least 2"),
        ("defaults = 3\n", "defaults", "expected a table, got integer 3"),
        ("[experts]\nbackend = 'x'\n", "experts.backend", "expected a table"),
        ("[runner]\nenv = { A = 1 }\n", "runner.env.A", "expected a string"),
        ('[runner.env]\n"1BAD" = "x"\n', "runner.env.1BAD", "invalid environment variable"),
        ('[runner.env]\n"A-B" = "x"\n', "runner.env.A-B", "invalid environment variable"),
        ('[approval]\nmode = "sometimes"\n', "approval.mode", "must be one of: none, decomp"),
        ("[approval]\nmode = 1\n", "approval.mode", "must be one of: none, decomposition, all"),
        ('[approval]\ncommand = "approve.sh --yes"\n', "approval.command", "expected an array"),
        ("[approval]\ncommand = []\n", "approval.command", "must not be empty"),
        ('[approval]\ncommand = ["", "x"]\n', "approval.command", "program"),
        ('[pool]\nproject_dir = "~/code"\n', "pool.project_dir", "'~' is not expanded"),
        ('[pool]\nname = ""\n', "pool.name", "must not be empty"),
    ],
)
def test_wrong_types_and_values_are_reported(
    files: Files, text: str, key: str, problem: str
) -> None:
    path = files.write_pool(text)
    assert_error(load_error(files), path, key, problem)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"10x"', "invalid duration '10x': use a number of seconds or forms like 45s, 10m"),
        ('"10 minutes"', "invalid duration '10 minutes'"),
        ('""', "empty"),
        ("-5", "must not be negative"),
        ('"-5m"', "must not be negative"),
        ("true", "got boolean true"),
        ("[1]", "got an array"),
        ("0", "must be greater than 0"),
    ],
)
def test_bad_durations_are_reported(files: Files, value: str, problem: str) -> None:
    path = files.write_pool(f"[defaults]\nstall_timeout = {value}\n")
    assert_error(load_error(files), path, "defaults.stall_timeout", problem)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45", timedelta(seconds=45)),
        ("2.5", timedelta(seconds=2.5)),
        ('"45s"', timedelta(seconds=45)),
        ('"10m"', timedelta(minutes=10)),
        ('"1h30m"', timedelta(minutes=90)),
        ('"2d"', timedelta(days=2)),
        ('"500ms"', timedelta(milliseconds=500)),
        ('"1.5h"', timedelta(minutes=90)),
    ],
)
def test_good_durations_load(files: Files, value: str, expected: timedelta) -> None:
    files.write_pool(f"[defaults]\nretry_backoff = {value}\nstall_timeout = {value}\n")
    config = files.load()
    assert config.defaults.retry_backoff == expected
    assert config.defaults.stall_timeout == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"none"', None), ("0", None), ('"0"', None), ('"2h"', timedelta(hours=2))],
)
def test_session_timeout_none_or_zero_means_no_timeout(
    files: Files, value: str, expected: timedelta | None
) -> None:
    files.write_pool(f"[defaults]\nsession_timeout = {value}\n")
    assert files.load().defaults.session_timeout == expected


def test_a_bad_expert_timeout_names_the_expert_key(files: Files) -> None:
    path = files.write_pool('[experts.backend]\ntimeout = "soon"\n')
    assert_error(load_error(files), path, "experts.backend.timeout", "invalid duration 'soon'")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ('"512"', 512),
        ('"512B"', 512),
        ('"16KiB"', 16 * 1024),
        ('"16KB"', 16_000),
        ('"10MiB"', 10 * 1024**2),
        ('"1GiB"', 1024**3),
    ],
)
def test_good_byte_sizes_load(files: Files, value: str, expected: int) -> None:
    files.write_pool(f"[mail]\nmax_bytes = {value}\n")
    assert files.load().mail.max_bytes == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"16XB"', "invalid byte size '16XB': use a number of bytes or forms like 512B, 16KiB"),
        ('"lots"', "invalid byte size 'lots'"),
        ("-1", "must not be negative"),
        ('"1.5B"', "not a whole number of bytes"),
        ("true", "got boolean true"),
        ("1.5", "got float 1.5"),
    ],
)
def test_bad_byte_sizes_are_reported(files: Files, value: str, problem: str) -> None:
    path = files.write_pool(f"[mail]\nmax_bytes = {value}\n")
    assert_error(load_error(files), path, "mail.max_bytes", problem)


def test_several_problems_report_the_first_and_count_the_rest(files: Files) -> None:
    path = files.write_pool('[defaults]\nmodel = 3\nmax_attempts = "x"\nmax_turns = true\n')
    error = load_error(files)
    assert_error(error, path, "defaults.model", "expected a string", "(and 2 more problems)")


def test_one_more_problem_is_singular(files: Files) -> None:
    path = files.write_pool('[defaults]\nmodel = 3\nmax_attempts = "x"\n')
    assert_error(load_error(files), path, "defaults.model", "(and 1 more problem)")


# --- expert names, shared experts, owns ------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("experts.Backend", "experts.Backend"),
        ('experts."Bad Name"', "experts.Bad Name"),
        ('experts."a/b"', "experts.a/b"),
        ('experts.".."', 'experts.".."'),
        ('experts."a.b"', 'experts."a.b"'),
        ('experts."-x"', "experts.-x"),
        ("experts.architect", "experts.architect"),
        ("experts.auto", "experts.auto"),
        ("experts.researcher", "experts.researcher"),
    ],
)
def test_invalid_expert_names_are_reported(files: Files, table: str, key: str) -> None:
    path = files.write_pool(f"[{table}]\n")
    assert_error(load_error(files), path, key, "invalid expert name")


def test_a_reserved_expert_name_says_it_is_reserved(files: Files) -> None:
    path = files.write_pool("[experts.auto]\n")
    assert_error(load_error(files), path, "experts.auto", "reserved")


def test_a_control_character_in_a_key_stays_on_one_line(files: Files) -> None:
    path = files.write_pool('[experts."a\\nb"]\n')
    error = load_error(files)
    assert_error(error, path, 'experts."a\\nb"', "invalid expert name")


@pytest.mark.parametrize(
    ("include", "key", "problem"),
    [
        ('["security", "Bad"]', "shared.include[1]", "invalid expert name"),
        ('["pool"]', "shared.include[0]", "reserved"),
        ('["security", "security"]', "shared.include", "'security' more than once"),
        ('"security"', "shared.include", "expected an array"),
    ],
)
def test_shared_include_is_validated(files: Files, include: str, key: str, problem: str) -> None:
    path = files.write_pool(f"[shared]\ninclude = {include}\n")
    assert_error(load_error(files), path, key, problem)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ('"../other/**"', "no '..'"),
        ('"src/../../etc"', "no '..'"),
        ('"/etc/passwd"', "not absolute"),
        ('"~/x"', "not absolute"),
        ('""', "must not be empty"),
    ],
)
def test_owns_patterns_must_stay_inside_the_project(
    files: Files, pattern: str, problem: str
) -> None:
    path = files.write_pool(f'[experts.backend]\nowns = ["src/**", {pattern}]\n')
    assert_error(load_error(files), path, "experts.backend.owns[1]", problem)


def test_owns_patterns_may_contain_dots_in_names(files: Files) -> None:
    files.write_pool('[experts.backend]\nowns = ["src/..hidden/*", "a...b", ".github/**"]\n')
    assert files.load().experts["backend"].owns == ("src/..hidden/*", "a...b", ".github/**")


# --- the global file ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[pool]\nname = "x"\n', "pool"),
        ("[experts.backend]\n", "experts"),
        ('[shared]\ninclude = ["security"]\n', "shared"),
    ],
)
def test_pool_only_sections_are_refused_in_the_global_file(
    files: Files, text: str, key: str
) -> None:
    path = files.write_global(text)
    assert_error(load_error(files), path, key, "only allowed in pool.toml")


def test_each_file_is_validated_on_its_own(files: Files) -> None:
    # The pool file overrides the bad global value, yet the global file is still wrong.
    path = files.write_global('[defaults]\nmax_attempts = "3"\n')
    files.write_pool("[defaults]\nmax_attempts = 3\n")
    assert_error(load_error(files), path, "defaults.max_attempts", "expected an integer")


def test_a_global_unknown_key_does_not_suggest_a_pool_only_section(files: Files) -> None:
    path = files.write_global("[poool]\n")
    error = load_error(files)
    assert_error(error, path, "poool", "unknown key")
    assert "'pool'" not in error.problem


# --- validate_config_text ------------------------------------------------------------


def test_validate_config_text_checks_one_file(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    parsed = validate_config_text("[defaults]\nmax_attempts = 7\n", path, is_global=False)
    assert isinstance(parsed, ConfigFile)
    assert parsed.defaults.max_attempts == 7
    with pytest.raises(ConfigError) as caught:
        validate_config_text("[pool]\n", path, is_global=True)
    assert_error(caught.value, path, "pool", "only allowed in pool.toml")
    with pytest.raises(ConfigError) as caught:
        validate_config_text("= oops", path, is_global=False)
    assert_error(caught.value, path, None, "invalid TOML")
