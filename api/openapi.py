"""The OpenAPI 3.1 document, built from the request templates (the same source as validation)."""

from __future__ import annotations

from api.openapi_threads import thread_paths
from shared.schemas import ID_PATTERN, MAX_SEED, MODEL_NAME_PATTERN, RESERVED_ID
from shared.templates import RequestTemplate

ERROR_CODES = {
    "400": "A bad field or body; `fields` names every bad field.",
    "401": "Missing or wrong API key (always the same body).",
    "403": "Only an admin key may do this, or the user_id belongs to another key.",
    "404": "No such task or image (or it belongs to another key).",
    "409": "The task has already finished, or the Idempotency-Key was used with another body.",
    "410": "The task succeeded but its image is no longer in storage.",
    "413": "The body is larger than MAX_CONTENT_LENGTH.",
    "415": "The body is not JSON.",
    "429": "This key's rate limit (RATE_LIMIT, RATE_LIMIT_SUBMIT) is used up; see Retry-After.",
    "503": "System is busy (more than MAX_QUEUE unfinished jobs) or the queue is unreachable; see Retry-After.",
}


def field_schema(spec: dict) -> dict:
    """JSON Schema of one template field."""
    kind = spec["type"]
    if kind in ("string", "image"):
        schema: dict = {"type": "string" if spec.get("required") else ["string", "null"]}
        if spec.get("default") is not None:
            schema["type"] = "string"
        for key, target in (("min_length", "minLength"), ("max_length", "maxLength")):
            if key in spec:
                schema[target] = spec[key]
        if "enum" in spec:
            schema["enum"] = list(spec["enum"]) + ([None] if spec.get("default") is None else [])
    elif kind in ("integer", "number"):
        schema = {"type": kind if spec.get("default") is not None else [kind, "null"]}
        for key, target in (
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("multiple_of", "multipleOf"),
            ("exclusive_minimum", "exclusiveMinimum"),
        ):
            if key in spec:
                schema[target] = spec[key]
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "seed":
        schema = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_SEED}, {"type": "null"}, {"const": False}]}
    elif kind == "model":
        schema = {
            "oneOf": [
                {"type": "string", "pattern": MODEL_NAME_PATTERN.pattern},
                {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "seed 001's mapping of checkpoint files: ignored, the default model is used",
                },
            ]
        }
    elif kind == "id":
        schema = {"type": ["string", "null"], "pattern": ID_PATTERN.pattern, "not": {"const": RESERVED_ID}}
    elif kind == "string_list":
        schema = {
            "type": ["array", "null"],
            "items": {"type": "string", "minLength": 1, "maxLength": spec.get("max_length", 4000)},
            "minItems": spec.get("min_items", 1),
            "maxItems": spec.get("max_items", 64),
        }
    elif kind == "model_list":
        schema = {
            "type": ["array", "null"],
            "items": {"type": "string", "pattern": MODEL_NAME_PATTERN.pattern},
            "minItems": spec.get("min_items", 1),
            "maxItems": spec.get("max_items", 8),
        }
    elif kind == "loras":
        lora = {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": MODEL_NAME_PATTERN.pattern},
                "weight": {"type": "number", "minimum": -4, "maximum": 4, "default": 1.0},
            },
        }
        schema = {"type": "array", "items": {"oneOf": [lora, {"type": "string"}]}, "maxItems": spec.get("max_items", 8)}
    elif kind == "webhook_url":
        schema = {"type": ["string", "null"], "format": "uri", "pattern": "^https?://", "maxLength": 2048}
    elif kind == "choice_list":
        schema = {
            "type": "array",
            "items": {"enum": list(spec["choices"])},
            "minItems": 1,
            "uniqueItems": True,
        }
    else:
        raise ValueError(f"no JSON Schema for field type {kind!r}")
    schema["description"] = spec.get("description", "")
    if "default" in spec and not spec.get("required"):
        schema["default"] = spec["default"]
    return schema


def request_schema(template: RequestTemplate) -> dict:
    """Every accepted field: canonical names, their aliases, and the ignored seed-001 fields."""
    properties: dict = {}
    required = []
    for name, spec in template.fields.items():
        properties[name] = field_schema(spec)
        if spec.get("required"):
            required.append(name)
        for alias in spec.get("aliases", []):
            properties[alias] = {**field_schema(spec), "description": f"Alias of `{name}` (seed 001's name)."}
    for name, reason in template.ignored.items():
        properties[name] = {"description": f"Accepted and ignored ({reason}); reported in `warnings`."}
    schema = {
        "type": "object",
        "title": template.title,
        "description": template.description,
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


COMPONENTS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_request"]},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        },
        "example": {
            "error": {
                "code": "invalid_request",
                "message": "invalid request: check W",
                "fields": {"W": "must be a multiple of 8"},
            }
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["task_id", "state", "status_url"],
        "properties": {
            "task_id": {"type": "string", "format": "uuid"},
            "state": {
                "enum": ["queued", "running", "succeeded", "failed", "canceled"],
                "description": "queued for a new task; for a replayed Idempotency-Key, the task's state now",
            },
            "status_url": {"type": "string", "format": "uri"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "replayed": {"type": "boolean", "description": "true when an Idempotency-Key named an earlier task"},
        },
        "example": {
            "task_id": "5b0e4f0e-9a1c-4f55-8d0e-2f4f5e0b7a11",
            "state": "queued",
            "status_url": "http://127.0.0.1:5001/status/5b0e4f0e-9a1c-4f55-8d0e-2f4f5e0b7a11",
            "warnings": [],
        },
    },
    "Image": {
        "type": "object",
        "required": ["url", "key", "seed", "width", "height", "format"],
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "Signed link, no key needed."},
            "key": {"type": "string"},
            "seed": {"type": "integer"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "format": {"enum": ["png", "jpg", "webp"]},
            "grid": {"type": "boolean"},
            "prompt": {"type": "string"},
            "model": {"type": "string"},
            "base64": {"type": "string", "description": "With return_base64."},
        },
    },
    "Status": {
        "type": "object",
        "required": ["task_id", "state", "progress", "params", "images", "warnings", "error"],
        "properties": {
            "task_id": {"type": "string", "format": "uuid"},
            "state": {"enum": ["queued", "running", "succeeded", "failed", "canceled"]},
            "kind": {"enum": ["generate", "img2img"]},
            "model": {"type": "string"},
            "progress": {"type": "object", "properties": {"step": {"type": "integer"}, "total": {"type": "integer"}}},
            "params": {"type": "object", "description": "The parameters as validated, with the resolved seed."},
            "images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                ]
            },
            "timings": {"type": "object", "additionalProperties": {"type": "number"}},
            "created_at": {"type": ["number", "null"]},
            "started_at": {"type": ["number", "null"]},
            "finished_at": {"type": ["number", "null"]},
            "status_url": {"type": "string", "format": "uri"},
        },
    },
}


def _errors(*codes: str) -> dict:
    return {
        code: {
            "description": ERROR_CODES[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


IMAGE_TYPES = {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/webp": {"schema": {"type": "string", "format": "binary"}},
}
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def schema_name(template_name: str) -> str:
    """GenerateRequest, Img2imgRequest."""
    return template_name[:1].upper() + template_name[1:] + "Request"


def _submit_operation(template: RequestTemplate, example: dict) -> dict:
    status = {"$ref": "#/components/schemas/Status"}
    return {
        "summary": template.title,
        "description": template.description,
        "operationId": template.name,
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                "description": "Retry-safe submission: the same key and body give the same task (for 24 h); "
                "the same key with another body gives 409.",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema_name(template.name)}"},
                    "example": example,
                }
            },
        },
        "responses": {
            "202": _json({"$ref": "#/components/schemas/Accepted"}, "Queued; poll status_url."),
            "200": {
                "description": "synchronous_request finished: the status JSON, or the first image",
                "content": {"application/json": {"schema": status}, **IMAGE_TYPES},
            },
            **_errors("400", "401", "403", "409", "413", "415", "429", "503"),
        },
    }


def build_spec(templates: dict[str, RequestTemplate], server_url: str = "/") -> dict:
    """The whole OpenAPI document."""
    schemas = dict(COMPONENTS)
    for name, template in templates.items():
        schemas[schema_name(name)] = request_schema(template)
    status = {"$ref": "#/components/schemas/Status"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "diffq",
            "version": "1.0.0",
            "description": "Queue-based Stable Diffusion: POST a job, poll its status, fetch images.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "paths": {
            "/generate": {"post": _submit_operation(templates["generate"], {"prompt": "a red dragon", "seed": 42})},
            "/img2img": {
                "post": _submit_operation(
                    templates["img2img"], {"prompt": "a watercolor", "init_img": "iVBORw0KGgo...", "strength": 0.6}
                )
            },
            "/status/{task_id}": {
                "get": {
                    "summary": "A job's state, progress and results",
                    "operationId": "status",
                    "parameters": [
                        TASK_ID,
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"enum": ["json"]},
                            "description": "json: always answer JSON",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The status JSON, or the first image when the job succeeded "
                            "without return_base64 and JSON was not asked for",
                            "content": {"application/json": {"schema": status}, **IMAGE_TYPES},
                        },
                        **_errors("400", "401", "404", "410", "429", "503"),
                    },
                }
            },
            "/tasks/{task_id}": {
                "delete": {
                    "summary": "Cancel a job",
                    "operationId": "cancel",
                    "parameters": [TASK_ID],
                    "responses": {
                        "200": _json({"type": "object"}, "Canceled (it was queued)."),
                        "202": _json({"type": "object"}, "Running: it stops at its next step."),
                        **_errors("401", "404", "409", "429", "503"),
                    },
                }
            },
            "/recent": {
                "get": {
                    "summary": "The caller's newest images",
                    "operationId": "recent",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                        },
                        {
                            "name": "owner",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "Admin keys only: another owner's id (the first 16 hex digits of "
                            "the SHA-256 of their key).",
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "images": {"type": "array", "items": {"type": "object"}},
                                    "count": {"type": "integer"},
                                },
                            },
                            "Newest first.",
                        ),
                        **_errors("400", "401", "403", "429", "503"),
                    },
                }
            },
            "/images/{key}": {
                "get": {
                    "summary": "A stored image (signed link or the owner's key)",
                    "operationId": "image",
                    "security": [{}, {"bearer": []}, {"apiKey": []}],
                    "parameters": [
                        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "exp", "in": "query", "schema": {"type": "string"}},
                        {"name": "sig", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "The image", "content": IMAGE_TYPES},
                        **_errors("401", "404", "429"),
                    },
                }
            },
            "/webhooks/secret": {
                "get": {
                    "summary": "This key's webhook signing secret",
                    "operationId": "webhookSecret",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["secret"],
                                "properties": {
                                    "secret": {"type": "string", "pattern": "^whsec_"},
                                    "scheme": {"type": "string"},
                                    "events": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "Verify webhook-signature with it (Standard Webhooks).",
                        ),
                        **_errors("401", "404", "429"),
                    },
                }
            },
            "/models": {
                "get": {
                    "summary": "Models, LoRAs, queue depth and workers",
                    "operationId": "models",
                    "responses": {"200": _json({"type": "object"}, "The catalog."), **_errors("401", "429")},
                }
            },
            "/samplers": {
                "get": {
                    "summary": "Sampler keys and their schedulers",
                    "operationId": "samplers",
                    "responses": {"200": _json({"type": "object"}, "Every key."), **_errors("401", "429")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "security": [{}],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The web page",
                    "operationId": "page",
                    "security": [{}],
                    "responses": {
                        "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
                    },
                }
            },
            **thread_paths(_errors, _json, TASK_ID),
            "/health": {
                "get": {
                    "summary": "Redis and workers",
                    "operationId": "health",
                    "security": [{}],
                    "responses": {
                        "200": _json({"type": "object"}, "Redis answers."),
                        "503": _json({"type": "object"}, "Redis is down."),
                    },
                }
            },
        },
    }
