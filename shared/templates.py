"""Load the request templates (templates/*.json): every accepted field, its default and constraints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REQUEST_TYPES = ("generate", "img2img")


@dataclass(frozen=True)
class RequestTemplate:
    """One request type: its fields (canonical name -> spec), aliases and ignored fields."""

    name: str
    title: str
    description: str
    fields: dict[str, dict]
    ignored: dict[str, str]

    @property
    def aliases(self) -> dict[str, str]:
        """Alias -> canonical name, e.g. ddim_steps -> steps."""
        return {alias: name for name, spec in self.fields.items() for alias in spec.get("aliases", [])}

    def defaults(self) -> dict:
        return {name: spec.get("default") for name, spec in self.fields.items()}


def _read(directory: Path, filename: str) -> dict:
    return json.loads((directory / filename).read_text(encoding="utf-8"))


def load_template(directory: str | Path, name: str) -> RequestTemplate:
    """Read templates/<name>.json, merging the template it extends (its fields come first)."""
    directory = Path(directory)
    raw = _read(directory, f"{name}.json")
    fields: dict[str, dict] = {}
    ignored: dict[str, str] = {}
    if "extends" in raw:
        base = _read(directory, raw["extends"])
        fields.update(base["fields"])
        ignored.update(base.get("ignored", {}))
    fields.update(raw["fields"])
    ignored.update(raw.get("ignored", {}))
    return RequestTemplate(
        name=name,
        title=raw.get("title", name),
        description=raw.get("description", ""),
        fields=fields,
        ignored=ignored,
    )


def load_templates(directory: str | Path) -> dict[str, RequestTemplate]:
    return {name: load_template(directory, name) for name in REQUEST_TYPES}
