"""Fuzzing the config loader: any file gives a config or one `ConfigError` line.

Documents are built from the real schema's table and key names mixed with random
ones, holding every TOML type: datetimes, 64-bit edges and beyond, inf and nan,
mixed arrays, inline tables, unicode and control characters in keys and strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from agent_pool.config.load import CLAUDE_BIN_ENV, load_config, validate_config_text
from agent_pool.config.model import ConfigFile, ExpertConfig, PoolConfig
from agent_pool.errors import ConfigError
from agent_pool.pool.layout import HomeLayout, PoolLayout
from tests.fuzz.budget import fuzz_settings

pytestmark = pytest.mark.faults

POOL_TOML = Path("/pools/demo/.agent-pool/pool.toml")


def check_refusal(exc: ConfigError, *paths: Path) -> None:
    message = str(exc)
    assert message.startswith(tuple(f"{path}: " for path in paths)), message
    assert len(message.splitlines()) == 1, f"not one line: {message!r}"


def validate_or_refuse(text: str, *, is_global: bool) -> ConfigFile | None:
    try:
        config = validate_config_text(text, POOL_TOML, is_global=is_global)
    except ConfigError as exc:
        check_refusal(exc, POOL_TOML)
        return None
    assert isinstance(config, ConfigFile)
    return config


# --- TOML values and documents ------------------------------------------------------


class Raw(str):
    """A value token written into the document exactly as it is (maybe invalid TOML)."""


def _tables_of(model: type[BaseModel]) -> dict[str, list[str]]:
    return {
        name: list(annotation.model_fields)
        for name, field in model.model_fields.items()
        if isinstance(annotation := field.annotation, type) and issubclass(annotation, BaseModel)
    }


SECTIONS = _tables_of(ConfigFile)
EXPERT_KEYS = list(ExpertConfig.model_fields)
ALL_KEYS = sorted({key for keys in SECTIONS.values() for key in keys} | set(SECTIONS))

random_keys = st.text(max_size=10)
schema_keys = st.sampled_from(ALL_KEYS)
keys = schema_keys | random_keys

_INT_EDGES = [0, -1, 1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**308, 10**309, 10**4000]
_RAW_NUMBERS = [
    "9" * 5000,
    "-" + "9" * 4400,
    "0x" + "f" * 4000,
    "0b" + "1" * 20000,
    "1e99999",
    "-1e99999",
    "+inf",
    "-nan",
    "-0.0",
    "1_000",
    "0o777",
    "1979-05-27T07:32:00+25:00",
    "25:00:00",
    "[" * 3000 + "]" * 3000,
    "{a = " * 1000 + "1" + "}" * 1000,
]
# Values people write, so that many documents get past the types to the checks.
_PLAUSIBLE = [
    "sonnet",
    "10m",
    "1h30m",
    "0",
    "none",
    "45s",
    "2d",
    "16KiB",
    "10MiB",
    "1.5KB",
    "-5s",
    "30m1h",
    "src/**",
    "/abs",
    "../out",
    "~/x",
    "decomposition",
    "all",
    "backend",
    "Bad Name",
    "PATH",
    "1x",
]

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.sampled_from(_INT_EDGES),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(_PLAUSIBLE),
    st.datetimes(timezones=st.none() | offsets),
    st.dates(),
    st.times(),
    st.sampled_from(_RAW_NUMBERS).map(Raw),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def _table(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(names) | random_keys, toml_values, max_size=6)


experts_table = st.dictionaries(
    st.sampled_from(["backend", "frontend", "Bad", "a.b", ""]) | random_keys,
    _table(EXPERT_KEYS),
    max_size=3,
)
section = st.sampled_from(sorted(SECTIONS)).flatmap(
    lambda name: st.tuples(
        st.just(name), experts_table if name == "experts" else _table(SECTIONS[name])
    )
)
documents = st.lists(section | st.tuples(keys, toml_values), max_size=8).map(dict)


def toml_key(key: str) -> str:
    return _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes are all TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: object) -> str:  # noqa: PLR0911 - one case per TOML type
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, Mapping)
    pairs = (f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items())
    return "{" + ", ".join(pairs) + "}"


def toml_document(data: Mapping[str, Any], *, inline: bool) -> str:
    """`data` as TOML: tables as `[headers]` (or inline tables), the rest as `key = value`."""
    lines: list[str] = []

    def table(path: list[str], items: Mapping[str, Any]) -> None:
        nested = {key: value for key, value in items.items() if isinstance(value, dict)}
        for key, value in items.items():
            if not isinstance(value, dict) or inline:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in ({} if inline else nested).items():
            lines.append("[" + ".".join(toml_key(part) for part in [*path, key]) + "]")
            table([*path, key], value)

    table([], data)
    return "\n".join(lines) + "\n"


@given(documents, st.booleans(), st.booleans())
@example({"defaults": {"max_attempts": Raw("9" * 5000)}}, False, False)
@example({"daemon": {"drain_grace": 10**400}}, False, False)
@example({"daemon": {"drain_grace": Raw("[" * 3000 + "]" * 3000)}}, True, False)
@example({"x": Raw("{a = " * 1000 + "1" + "}" * 1000)}, False, True)
@fuzz_settings(400)
def test_random_documents_give_a_config_or_one_error_line(
    data: dict[str, Any], inline: bool, is_global: bool
) -> None:
    validate_or_refuse(toml_document(data, inline=inline), is_global=is_global)


@given(st.text(max_size=400), st.booleans())
@example("a = 1\na = 2\n", False)
@example("[defaults]\nmodel = '''\nmulti\nline'''\n", False)
@fuzz_settings(300)
def test_random_text_gives_a_config_or_one_error_line(text: str, is_global: bool) -> None:
    validate_or_refuse(text, is_global=is_global)


# --- the whole loader on real files ------------------------------------------------

file_contents = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(toml_document, documents, inline=st.booleans()).map(str.encode),
    st.builds(toml_document, documents, inline=st.booleans()).map(
        lambda text: b"\xef\xbb\xbf" + text.encode()
    ),
)


@given(st.none() | file_contents, st.none() | file_contents, st.none() | st.text(max_size=20))
@example(b"\xff\xfe[defaults]\n", None, None)
@example(None, ("[daemon]\nreconcile_interval = " + "9" * 400).encode(), None)
@fuzz_settings(300, shared_fixture=True)
def test_load_config_gives_a_config_or_one_error_line(
    tmp_path: Path, global_file: bytes | None, pool_file: bytes | None, claude_bin: str | None
) -> None:
    layout = PoolLayout(tmp_path / "project" / ".agent-pool")
    home = HomeLayout(tmp_path / "home")
    for path, content in ((home.config_toml, global_file), (layout.pool_toml, pool_file)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # each example starts from its own files only
        if content is not None:
            path.write_bytes(content)
    environ = {} if claude_bin is None else {CLAUDE_BIN_ENV: claude_bin}
    try:
        config = load_config(layout, home, environ)
    except ConfigError as exc:
        check_refusal(exc, home.config_toml, layout.pool_toml)
        return
    assert isinstance(config, PoolConfig)
    assert config.project_dir.is_absolute()


# --- regressions -------------------------------------------------------------------


def test_integer_over_4300_digits_is_a_config_error() -> None:
    # Before the fix: ValueError from int() inside tomllib.
    with pytest.raises(ConfigError, match="invalid TOML: a number has too many digits"):
        validate_config_text("x = " + "9" * 5000, POOL_TOML, is_global=False)


@pytest.mark.parametrize("nested", ["[" * 3000 + "]" * 3000, "{a = " * 1000 + "1" + "}" * 1000])
def test_deeply_nested_value_is_a_config_error(nested: str) -> None:
    # Before the fix: RecursionError from tomllib.
    with pytest.raises(ConfigError, match="nested too deeply"):
        validate_config_text(f"x = {nested}", POOL_TOML, is_global=False)


def test_duration_beyond_a_float_is_a_config_error_naming_the_key() -> None:
    # Before the fix: OverflowError from the duration parser (math.isfinite of the int).
    with pytest.raises(ConfigError) as info:
        validate_config_text("[daemon]\ndrain_grace = " + "9" * 400, POOL_TOML, is_global=False)
    assert str(info.value) == (
        f"{POOL_TOML}: daemon.drain_grace: integer out of range (TOML integers are 64-bit)"
    )


def test_64_bit_integers_are_still_accepted() -> None:
    text = f"[defaults]\nmax_attempts = {2**63 - 1}\n"
    assert validate_config_text(text, POOL_TOML, is_global=False).defaults.max_attempts == 2**63 - 1


def test_out_of_range_integer_deep_in_an_array_names_its_place() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config_text(
            '["a.b"]\nx = [1, [2, 9223372036854775808]]', POOL_TOML, is_global=False
        )
    assert str(info.value).startswith(f'{POOL_TOML}: "a.b".x[1][1]: integer out of range')
