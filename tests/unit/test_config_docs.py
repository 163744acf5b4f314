"""The configuration reference cannot drift from the model: every key must be documented."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from agent_pool.config.model import ConfigFile, ExpertConfig, RoleConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def section_of(doc: str, heading: str) -> str:
    start = doc.index(heading)
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end != -1 else len(doc)]


def test_every_config_key_is_documented_in_its_section() -> None:
    doc = DOC.read_text(encoding="utf-8")
    tables: dict[str, type[BaseModel]] = {}
    for name, field in ConfigFile.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            tables[name] = annotation
    missing = []
    for table, model in tables.items():
        heading = (
            f"`[{table}]`"
            if table not in {"architect", "researcher", "concierge"}
            else ("`[architect]`")
        )
        section = section_of(doc, f"## {heading}")
        missing += [f"{table}.{key}" for key in model.model_fields if f"`{key}`" not in section]
    experts = section_of(doc, "## `[experts.NAME]`")
    roles = section_of(doc, "## `[architect]`")
    missing += [
        f"experts.{key}"
        for key in ExpertConfig.model_fields
        if f"`{key}`" not in experts
        and not (key in RoleConfig.model_fields and f"`{key}`" in roles)
    ]
    assert missing == []
    assert "experts" in ConfigFile.model_fields
