"""Strict JSON request bodies: the right content type, valid JSON, no NaN, bounded nesting."""

from __future__ import annotations

import json

from flask import g, request

from api.errors import ApiError


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_body() -> dict:
    """Parse the body as a JSON object or raise a 4xx naming the problem (parsed once per request)."""
    if "json_body" in g:
        return g.json_body
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the request as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the request body must be a JSON object")
    g.json_body = body
    return body
