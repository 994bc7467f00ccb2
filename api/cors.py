"""Cross-origin access: none by default. CORS_ORIGINS lists the web origins that may call the API
from a browser (with their users' keys); "*" allows any origin."""

from __future__ import annotations

from flask import request

ALLOWED_HEADERS = "Authorization, Content-Type, X-API-Key, Idempotency-Key"
ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"


def install(app, settings) -> None:
    origins = {o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()}
    if not origins:
        return

    @app.after_request
    def _cors(response):
        origin = request.headers.get("Origin")
        if origin and (origin in origins or "*" in origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After, Idempotent-Replayed"
            response.vary.add("Origin")
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        return response
