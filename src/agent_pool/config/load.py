"""Reading, layering and validating the config files.

The global `config.toml` and the pool's `pool.toml` are each validated on their own
first, so a mistake is reported against the file that holds it; then the pool file
is merged over the global one and the result validated again. Every problem becomes
one `ConfigError` line: file, dotted key path, and what is wrong in plain words.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent_pool.config.model import POOL_ONLY_SECTIONS, ConfigFile, PoolConfig
from agent_pool.config.units import describe_value
from agent_pool.errors import ConfigError
from agent_pool.pool.layout import HomeLayout, PoolLayout

CLAUDE_BIN_ENV: Final = "AGENT_POOL_CLAUDE_BIN"

# TOML integers are 64-bit; tomllib accepts any size, and one past the range of a
# float (1e309) made the duration parser raise OverflowError instead of an error line.
_TOML_INT_RANGE: Final = range(-(2**63), 2**63)

# What a strict pydantic type error means, in words a TOML author uses.
_EXPECTED: Final = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
# Constraint failures; the placeholders are filled from pydantic's error context.
_MESSAGES: Final = {
    "greater_than_equal": "must be at least {ge}, got {got}",
    "greater_than": "must be greater than {gt}, got {got}",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number, got {got}",
    "missing": "is required",
}


def load_config(layout: PoolLayout, home: HomeLayout, environ: Mapping[str, str]) -> PoolConfig:
    """Load the pool's configuration: global file, then pool file, then the environment."""
    global_path = home.config_toml
    pool_path = layout.pool_toml
    global_data = _read_table(global_path)
    pool_data = _read_table(pool_path)
    _validate(global_data, global_path, is_global=True)
    _validate(pool_data, pool_path, is_global=False)
    merged = _validate(_merge(global_data, pool_data), pool_path, is_global=False)
    return _resolve(merged, layout, environ)


def validate_config_text(text: str, path: Path, *, is_global: bool) -> ConfigFile:
    """Check one file's text on its own (e.g. before a hot reload); `path` names it in errors."""
    return _validate(_parse(text, path), path, is_global=is_global)


def _read_table(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}  # both files are optional
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        # utf-8-sig: editors on Windows like to add a BOM, which tomllib would refuse.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not valid UTF-8 (at byte {exc.start})") from exc
    return _parse(text, path)


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from exc
    except ValueError as exc:
        # tomllib lets int() fail on a number over Python's limit of 4300 digits.
        raise ConfigError(path, None, "invalid TOML: a number has too many digits") from exc
    except RecursionError:
        # tomllib recurses into nested arrays and inline tables without a limit.
        raise ConfigError(path, None, "invalid TOML: arrays or tables nested too deeply") from None
    _check_integers(data, path)
    return data


def _check_integers(data: dict[str, Any], path: Path) -> None:
    """Refuse an integer TOML cannot hold (the spec says a parser must)."""
    pending: list[tuple[tuple[int | str, ...], object]] = [((), data)]
    while pending:  # a loop, not recursion: the nesting is as deep as tomllib allowed
        loc, value = pending.pop()
        if isinstance(value, dict):
            pending.extend(((*loc, str(key)), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*loc, index), item) for index, item in enumerate(value))
        elif isinstance(value, int) and value not in _TOML_INT_RANGE:
            problem = "integer out of range (TOML integers are 64-bit)"
            raise ConfigError(path, _key_path(loc) or None, problem)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key (`over` wins); any other value, lists included, is replaced."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _validate(data: Mapping[str, Any], path: Path, *, is_global: bool) -> ConfigFile:
    if is_global:
        for key in data:
            if key in POOL_ONLY_SECTIONS:
                raise ConfigError(
                    path, key, "only allowed in pool.toml, not in the global config.toml"
                )
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, path, is_global=is_global) from exc


def _resolve(file: ConfigFile, layout: PoolLayout, environ: Mapping[str, str]) -> PoolConfig:
    root = layout.root.absolute()
    runner = file.runner
    claude_bin = environ.get(CLAUDE_BIN_ENV)
    if claude_bin:
        runner = runner.model_copy(update={"claude_bin": claude_bin})
    sections = {name: getattr(file, name) for name in ConfigFile.model_fields}
    return PoolConfig(
        **{**sections, "runner": runner},
        name=file.pool.name or root.parent.name or "pool",
        # resolve() rather than a plain join so paths in logs and argv are canonical.
        project_dir=(root / file.pool.project_dir).resolve(),
    )


def _config_error(exc: ValidationError, path: Path, *, is_global: bool) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    problem = _describe(first, is_global=is_global)
    more = len(errors) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(path, _key_path(first["loc"]) or None, problem)


def _key_path(loc: tuple[int | str, ...]) -> str:
    # pydantic marks a failing dict key with a trailing "[key]"; the key itself is the path.
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # Quoted the TOML way when needed: a dot would blur the path, and a newline
            # or other control character would break the one-line message.
            plain = part and "." not in part and '"' not in part and part.isprintable()
            shown = part if plain else json.dumps(part)
            path += f".{shown}" if path else shown
    return path


def _describe(error: ErrorDetails, *, is_global: bool) -> str:
    kind = error["type"]
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    got = describe_value(error["input"])
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _allowed_keys(loc[:-1], is_global=is_global))
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])  # our own validators' messages are already plain words
    if kind == "literal_error":
        choices = _literal_choices(loc) or [str(ctx.get("expected", ""))]
        return f"must be one of: {', '.join(choices)} (got {got})"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    template = _MESSAGES.get(kind)
    if template is not None:
        return template.format(got=got, **{name: _number(value) for name, value in ctx.items()})
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _number(value: object) -> object:
    # pydantic reports `gt=0` on a float field as 0.0; people wrote 0.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (allowed here: {', '.join(allowed) or 'none'})"


def _allowed_keys(loc: tuple[int | str, ...], *, is_global: bool) -> list[str]:
    table = _annotation_at(loc)
    if not (isinstance(table, type) and issubclass(table, BaseModel)):
        return []
    keys = list(table.model_fields)
    if is_global and not loc:
        keys = [key for key in keys if key not in POOL_ONLY_SECTIONS]
    return keys


def _literal_choices(loc: tuple[int | str, ...]) -> list[str]:
    annotation = _annotation_at(loc)
    if get_origin(annotation) is Literal:
        return [str(choice) for choice in get_args(annotation)]
    return []


def _annotation_at(loc: tuple[int | str, ...]) -> object:
    """The type declared at `loc` in the file schema (None if the path leads nowhere)."""
    current: object = ConfigFile
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = _strip_optional(field.annotation) if field else None
        elif get_origin(current) in (dict, Mapping):
            current = _strip_optional(get_args(current)[1])  # any key: the value's type
        else:
            return None
    return current


def _strip_optional(annotation: object) -> object:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
