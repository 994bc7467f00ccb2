"""The OpenAPI document and Swagger UI, with Swagger UI's assets served from the installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, request, send_from_directory

from api.openapi import build_spec
from api.services import services

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>diffq API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>"""
INIT = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', persistAuthorization: true});"


def _assets_dir() -> Path:
    """Swagger UI 5 (it renders OpenAPI 3.1) from the swagger-ui-py wheel, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    return Path(spec.submodule_search_locations[0]) / "static"


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document (public: it holds no secrets)."""
    return jsonify(build_spec(services().templates, request.host_url))


@bp.get("/docs")
def docs():
    """Swagger UI."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/init.js")
def docs_init():
    return Response(INIT, mimetype="application/javascript")


@bp.get("/docs/assets/<path:name>")
def docs_assets(name: str):
    if name not in ("swagger-ui.css", "swagger-ui-bundle.js"):
        abort(404)
    return send_from_directory(_assets_dir(), name, max_age=86400)
