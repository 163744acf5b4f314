"""Starter knowledge files written by `agent-pool init` and `expert add`."""

from __future__ import annotations

import json
from importlib import resources
from string import Template


def _template(file_name: str) -> Template:
    text = resources.files("agent_pool.pool").joinpath("starters", file_name).read_text("utf-8")
    return Template(text)


def identity_text(name: str, *, role: str | None) -> str:
    """The identity for a role (architect, researcher, concierge) or for an expert."""
    file_name = f"{role}-identity.md" if role else "expert-identity.md"
    return _template(file_name).substitute(name=name)


def state_text(name: str) -> str:
    return _template("state.md").substitute(name=name)


def errors_text(name: str) -> str:
    return _template("errors.md").substitute(name=name)


def pool_toml_text(pool_name: str, project_dir: str) -> str:
    # JSON string literals are valid TOML basic strings, so any name is quoted safely.
    return _template("pool.toml").substitute(
        pool_name=json.dumps(pool_name), project_dir=json.dumps(project_dir)
    )
