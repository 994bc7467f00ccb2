"""One JSON error shape for every failure: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    410: "gone",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}


def error_response(status: int, code: str, message: str, fields: dict | None = None, headers=None):
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        if status == 429:
            # Flask-Limiter's description is the limit that was hit, e.g. "600 per 1 minute".
            message = f"rate limit exceeded for this key ({exc.description}); retry after Retry-After seconds"
        # Keep what the exception says in headers (Allow on a 405, as RFC 9110 requires).
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return error_response(status, HTTP_CODES.get(status, "http_error"), message, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # The traceback goes to the log, never into the response.
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed to handle this request; it has been logged")
