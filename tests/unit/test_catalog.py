"""models.yaml: names, seed-001 aliases, defaults, and clear errors for bad entries."""

from __future__ import annotations

import pytest

from shared.catalog import CatalogError, ModelCatalog
from shared.settings import PROJECT_ROOT


def test_shipped_catalog():
    catalog = ModelCatalog.load(PROJECT_ROOT / "models.yaml")
    assert catalog.default.name == "tiny" and catalog.default.source == "builtin:tiny"
    for alias, name in (
        ("sd14", "sd14"),
        ("sd1.4", "sd14"),
        ("sd21", "sd21"),
        ("sd2.1", "sd21"),
        ("sd21v", "sd21v"),
        ("sd2.1v", "sd21v"),
    ):
        assert catalog.resolve(alias).name == name
    assert catalog.resolve("sd21v").prediction_type == "v_prediction"
    assert catalog.resolve("missing") is None
    assert catalog.resolve("tiny").queue == "model.tiny"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"models": {}}, "no models"),
        ({"models": {"a": {}}}, "no source"),
        ({"models": {"a": {"source": "x", "family": "sd9"}}}, "family"),
        ({"models": {"a": {"source": "x", "defaults": {"speed": 1}}}}, "unknown defaults"),
        ({"default": "b", "models": {"a": {"source": "x"}}}, "default model"),
        ({"models": {"a": {"source": "x", "aliases": ["b"]}, "b": {"source": "y"}}}, "used by both"),
        ({"models": {"../a": {"source": "x"}}}, "model name"),
        ({"models": {"a": {"source": "x"}}, "loras": {"l": {}}}, "LoRA 'l' has no source"),
        ({"models": {"a": {"source": "x"}}, "loras": {"l": {"source": "y", "family": "sd3"}}}, "family"),
    ],
)
def test_bad_catalogs_name_the_problem(raw, message):
    with pytest.raises(CatalogError, match=message):
        ModelCatalog.from_dict(raw)


def test_shipped_catalog_has_a_tiny_model_of_each_family():
    catalog = ModelCatalog.load(PROJECT_ROOT / "models.yaml")
    assert {catalog.resolve(n).family for n in ("tiny", "tiny-sd2", "tiny-sdxl")} == {"sd1", "sd2", "sdxl"}
