"""OpenAPI paths of seed 000's thread endpoints and seed 002's server status (merged by api/openapi.py)."""

from __future__ import annotations

from shared.dsl import FETCH_OUTPUTS, FILTERS, MAX_INPUTS, attributes
from shared.extensions import EXTENSIONS
from shared.schemas import ID_PATTERN, RESERVED_ID


def _identifier() -> dict:
    return {
        "oneOf": [
            {"type": "string", "pattern": ID_PATTERN.pattern, "not": {"const": RESERVED_ID}},
            {"type": "integer", "minimum": 0},
        ]
    }


def _data(need_thread: bool) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["user_id", "thread_id"] if need_thread else ["user_id"],
        "properties": {"object": {"enum": ["thread"]}, "user_id": _identifier(), "thread_id": _identifier()},
    }


def _inputs() -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_INPUTS,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["attribute"],
            "properties": {"attribute": {"enum": attributes()}, "filter": {"enum": list(FILTERS)}},
        },
    }


def _operation(operation_id: str, summary: str, body: dict, responses: dict, errors: dict, example: dict) -> dict:
    return {
        "summary": summary,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body, "example": example}}},
        "responses": {**responses, **errors},
    }


def thread_paths(errors, as_json, task_id: dict) -> dict:
    """errors(*codes) and as_json(schema, description) are api/openapi.py's helpers."""
    fetch = {
        "type": "object",
        "additionalProperties": False,
        "required": ["dsl"],
        "properties": {
            "dsl": {
                "type": "object",
                "additionalProperties": False,
                "required": ["data", "input"],
                "properties": {"data": _data(False), "input": _inputs(), "output": {"enum": list(FETCH_OUTPUTS)}},
            },
            "api_key": {"type": ["string", "null"], "maxLength": 256},
        },
    }
    preprocess = {
        "type": "object",
        "additionalProperties": False,
        "required": ["task", "data"],
        "properties": {
            "extension_name": {"enum": ["preprocess"]},
            "task": {"enum": list(EXTENSIONS)},
            "url": {"type": ["string", "null"], "maxLength": 0},
            "data": _data(True),
            "input": _inputs(),
            "output": {"enum": sorted({e.output for e in EXTENSIONS.values()})},
            "api_key": {"type": ["string", "null"], "maxLength": 256},
        },
    }
    rating = {
        "type": "object",
        "additionalProperties": False,
        "required": ["rating"],
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "image": {"type": "integer", "minimum": 0},
            "api_key": {"type": ["string", "null"], "maxLength": 256},
        },
    }
    accepted = {"$ref": "#/components/schemas/Accepted"}
    return {
        "/tasks/{task_id}/ratings": {
            "post": {
                **_operation(
                    "rate",
                    "Rate one image of a finished task (shows in the thread's log.csv)",
                    rating,
                    {"201": as_json({"type": "object"}, "The task's ratings so far.")},
                    errors("400", "401", "404", "409", "410", "415", "429", "503"),
                    {"rating": 5, "image": 0},
                ),
                "parameters": [task_id],
            }
        },
        "/fetch/log": {
            "post": _operation(
                "fetchLog",
                "Read a thread's log rows, images and preprocessed results (seed 000's DSL)",
                fetch,
                {"200": as_json({"type": "object", "required": ["results"]}, "Records per input attribute.")},
                errors("400", "401", "404", "415", "429", "503"),
                {
                    "dsl": {
                        "data": {"user_id": "u1", "thread_id": "t1"},
                        "input": [
                            {"attribute": "log/log", "filter": "all"},
                            {"attribute": "log/image", "filter": "all"},
                        ],
                        "output": "latest-log/prompt-json",
                    }
                },
            )
        },
        "/extensions/preprocess": {
            "post": _operation(
                "preprocess",
                "Queue a preprocess extension on a thread (image_encoding, image_projection)",
                preprocess,
                {"202": as_json(accepted, "Queued; poll status_url: the result lists what was written.")},
                errors("400", "401", "404", "415", "429", "503"),
                {
                    "extension_name": "preprocess",
                    "task": "image_encoding",
                    "data": {"object": "thread", "user_id": "u1", "thread_id": "t1"},
                    "input": [{"attribute": "log/image", "filter": "unprocessed"}],
                    "output": "map-log/image",
                },
            )
        },
        "/server/status": {
            "get": {
                "summary": "Whether a job sent now would start at once (seed 002)",
                "operationId": "serverStatus",
                "parameters": [{"name": "model", "in": "query", "schema": {"type": "string"}}],
                "responses": {
                    "200": as_json(
                        {
                            "type": "object",
                            "required": ["is_available"],
                            "properties": {
                                "is_available": {"type": "boolean"},
                                "model": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        },
                        "is_available, and why not.",
                    ),
                    **errors("400", "401", "429"),
                },
            }
        },
    }
