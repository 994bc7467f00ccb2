"""The model catalog read from models.yaml: names, aliases, sources, families and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shared.schemas import MODEL_NAME_PATTERN

FAMILIES = ("sd1", "sd2", "sdxl")
FALLBACK_DEFAULTS = {
    "width": 512,
    "height": 512,
    "steps": 30,
    "guidance_scale": 7.5,
    "sampler": "ddim",
    "timestep_spacing": None,
}
DEFAULT_KEYS = frozenset(FALLBACK_DEFAULTS)


class CatalogError(ValueError):
    """models.yaml is malformed; the message names the entry."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str
    family: str = "sd1"
    aliases: tuple[str, ...] = ()
    description: str = ""
    defaults: dict = field(default_factory=dict)
    prediction_type: str = "epsilon"
    # For single-file checkpoints: a diffusers folder or repo id whose configs describe the model.
    config: str = ""
    # A VAE to use instead of the checkpoint's: a diffusers folder, repo id or .safetensors file.
    vae: str = ""
    base_dir: str = "."

    @property
    def queue(self) -> str:
        """The Celery queue of this model's jobs."""
        return f"model.{self.name}"

    def default(self, key: str):
        return self.defaults.get(key, FALLBACK_DEFAULTS[key])

    def public(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "aliases": list(self.aliases),
            "description": self.description,
            "defaults": {k: self.default(k) for k in FALLBACK_DEFAULTS},
        }


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file (seed 004's `lora:` section) that requests of its family may apply."""

    name: str
    source: str
    family: str = "sd1"
    description: str = ""
    base_dir: str = "."

    def public(self) -> dict:
        return {"name": self.name, "family": self.family, "description": self.description}


# Detectors that turn an input image into a ControlNet conditioning image (seed 004's ctypes).
# canny and the soft edges run built in; depth and pose need a model under `detectors:`.
BUILTIN_DETECTORS = ("canny", "soft", "soft-sobel")
MODEL_DETECTORS = ("depth", "pose")
DETECTORS = BUILTIN_DETECTORS + MODEL_DETECTORS


@dataclass(frozen=True)
class ControlNetSpec:
    """A ControlNet (seed 004's Cond2ImPipe): its weights, family and the detector that fits it."""

    name: str
    source: str
    family: str = "sd1"
    detector: str = "canny"
    description: str = ""
    base_dir: str = "."

    def public(self) -> dict:
        return {"name": self.name, "family": self.family, "detector": self.detector, "description": self.description}


@dataclass(frozen=True)
class ModelCatalog:
    default_name: str
    models: dict[str, ModelSpec]
    loras: dict[str, LoraSpec] = field(default_factory=dict)
    controlnets: dict[str, ControlNetSpec] = field(default_factory=dict)
    # detector name -> model source (a folder or Hugging Face id), for depth and pose
    detectors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> ModelCatalog:
        path = Path(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls.from_dict(raw, base_dir=str(path.resolve().parent))

    @classmethod
    def from_dict(cls, raw: dict, base_dir: str = ".") -> ModelCatalog:
        entries = raw.get("models") or {}
        if not entries:
            raise CatalogError("models.yaml lists no models")
        models: dict[str, ModelSpec] = {}
        for name, entry in entries.items():
            models[name] = _spec(name, entry or {}, base_dir)
        loras = {name: _lora(name, entry or {}, base_dir) for name, entry in (raw.get("loras") or {}).items()}
        controlnets = {
            name: _controlnet(name, entry or {}, base_dir) for name, entry in (raw.get("controlnets") or {}).items()
        }
        detectors = {}
        for name, entry in (raw.get("detectors") or {}).items():
            if name not in MODEL_DETECTORS or not isinstance(entry, dict) or not entry.get("source"):
                raise CatalogError(f"detectors: {name!r} must be one of {', '.join(MODEL_DETECTORS)} with a source")
            detectors[name] = str(entry["source"])
        default_name = raw.get("default") or next(iter(models))
        catalog = cls(default_name, models, loras, controlnets, detectors)
        if catalog.resolve(default_name) is None:
            raise CatalogError(f"default model {default_name!r} is not in models.yaml")
        _check_aliases(models)
        return catalog

    def resolve(self, name: str) -> ModelSpec | None:
        """The model named or aliased `name` ("default" is the default model), or None."""
        if name == "default":
            name = self.default_name
        if name in self.models:
            return self.models[name]
        for spec in self.models.values():
            if name in spec.aliases:
                return spec
        return None

    @property
    def default(self) -> ModelSpec:
        return self.resolve(self.default_name)

    def names(self) -> list[str]:
        return list(self.models)


def _checked_family(kind: str, name: str, entry: dict) -> str:
    """The checks models and LoRAs share: a safe name, a source, a known family (returned)."""
    if not MODEL_NAME_PATTERN.match(name):
        raise CatalogError(f"{kind} name {name!r} must be letters, digits, '.', '_' or '-'")
    if not entry.get("source"):
        raise CatalogError(f"{kind} {name!r} has no source")
    family = entry.get("family", "sd1")
    if family not in FAMILIES:
        raise CatalogError(f"{kind} {name!r}: family must be one of {', '.join(FAMILIES)}")
    return family


def _spec(name: str, entry: dict, base_dir: str) -> ModelSpec:
    family = _checked_family("model", name, entry)
    defaults = dict(entry.get("defaults") or {})
    unknown = set(defaults) - DEFAULT_KEYS
    if unknown:
        raise CatalogError(f"model {name!r}: unknown defaults {sorted(unknown)}")
    return ModelSpec(
        name=name,
        source=str(entry["source"]),
        family=family,
        aliases=tuple(entry.get("aliases") or ()),
        description=entry.get("description", ""),
        defaults=defaults,
        prediction_type=entry.get("prediction_type", "epsilon"),
        config=str(entry.get("config") or ""),
        vae=str(entry.get("vae") or ""),
        base_dir=base_dir,
    )


def _check_aliases(models: dict[str, ModelSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in models.values():
        for label in (spec.name, *spec.aliases):
            if label in seen and seen[label] != spec.name:
                raise CatalogError(f"name {label!r} is used by both {seen[label]!r} and {spec.name!r}")
            seen[label] = spec.name


def _controlnet(name: str, entry: dict, base_dir: str) -> ControlNetSpec:
    family = _checked_family("ControlNet", name, entry)
    detector = entry.get("detector", "canny")
    if detector not in DETECTORS + ("none",):
        raise CatalogError(f"ControlNet {name!r}: detector must be one of {', '.join(DETECTORS)} or none")
    return ControlNetSpec(name, str(entry["source"]), family, detector, entry.get("description", ""), base_dir)


def _lora(name: str, entry: dict, base_dir: str) -> LoraSpec:
    family = _checked_family("LoRA", name, entry)
    return LoraSpec(name, str(entry["source"]), family, entry.get("description", ""), base_dir)
