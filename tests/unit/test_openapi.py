"""The OpenAPI document: valid, complete, and in agreement with the validator that serves requests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fakeredis
import jsonschema
import pytest
from openapi_spec_validator import validate

from api import create_app
from api.openapi import build_spec, schema_name
from api.services import Services
from shared.catalog import ModelCatalog
from shared.settings import PROJECT_ROOT
from shared.templates import load_templates
from shared.validation import RequestInvalid, RequestValidator

TEMPLATES = load_templates(PROJECT_ROOT / "templates")
SPEC = build_spec(TEMPLATES)
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def client(settings):
    services = Services.build(settings, client=fakeredis.FakeRedis(decode_responses=True), celery=object())
    return create_app(settings, services=services).test_client()


def test_the_document_is_valid_openapi():
    validate(SPEC)


def test_every_field_alias_and_ignored_field_is_documented():
    for name, template in TEMPLATES.items():
        properties = SPEC["components"]["schemas"][schema_name(name)]["properties"]
        for field, spec in template.fields.items():
            assert field in properties and properties[field]["description"]
            for alias in spec.get("aliases", []):
                assert alias in properties
        assert set(template.ignored) <= set(properties)


def test_every_route_is_documented(client):
    documented = {re.sub(r"\{(\w+)\}", r"<\1>", path) for path in SPEC["paths"]}
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule) for rule in client.application.url_map.iter_rules()}
    api_routes = {r for r in routes if not r.startswith(("/docs", "/static", "/openapi"))}
    assert api_routes <= documented


BODIES = [
    {"prompt": "a cat"},
    {"prompt": "a cat", "W": 512, "H": 512, "ddim_steps": 20, "scale": 0, "seed": False, "sampler": "k_euler_a"},
    {"prompt": "a cat", "loras": ["style"], "prompt_list": None},
    {"prompt_list": ["a", "b"], "models": ["tiny"]},
    {"prompt": "a cat", "width": 513},
    {"prompt": "a cat", "width": "512"},
    {"prompt": "a cat", "width": True},
    {"prompt": "a cat", "steps": 0},
    {"prompt": "a cat", "seed": -1},
    {"prompt": "a cat", "seed": True},
    {"prompt": "a cat", "sampler": "magic"},
    {"prompt": "a cat", "output_dir": "/tmp"},
    {"prompt": "a cat", "quality": 101},
    {"prompt": "a cat", "format": "gif"},
    {"prompt": "", "steps": 5},
]


@pytest.mark.parametrize("body", BODIES, ids=[json.dumps(b)[:40] for b in BODIES])
def test_schema_and_validator_agree(body):
    catalog = ModelCatalog.from_dict(
        {"models": {"tiny": {"source": "builtin:tiny"}}, "loras": {"style": {"source": "x.safetensors"}}}
    )
    try:
        RequestValidator(TEMPLATES["generate"], catalog, 10**7).validate(body)
        accepted = True
    except RequestInvalid:
        accepted = False
    schema = {**SPEC["components"]["schemas"]["GenerateRequest"], "components": SPEC["components"]}
    schema_ok = jsonschema.Draft202012Validator(schema).is_valid(body)
    assert accepted == schema_ok


def test_seed001_examples_validate_against_the_schema():
    for name, path in (("Generate", "seed001-generate.json"), ("Img2img", "seed001-img2img.json")):
        schema = SPEC["components"]["schemas"][f"{name}Request"]
        jsonschema.Draft202012Validator(schema).validate(json.loads((DATA / path).read_text()))


def test_docs_page_uses_only_our_assets(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "SwaggerUIBundle" in (client.get("/docs/init.js").get_data(as_text=True))
    assert not re.search(r"(src|href)=\"https?://", page)  # no CDN
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0" and "/generate" in spec["paths"]
