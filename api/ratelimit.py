"""Per-key rate limits (Flask-Limiter, counters in Redis so every API process shares them).

RATE_LIMIT caps all of a key's requests, RATE_LIMIT_SUBMIT its POST /generate and /img2img.
Requests without a valid key are counted by client address, so guessing keys is limited too.
Exceeding a limit answers 429 with Retry-After; if Redis cannot be reached the limits are not
enforced for that moment and the request goes on (it then gets the queue's own 503).
"""

from __future__ import annotations

from flask import request

from api.auth import presented_key
from api.body import json_body
from api.errors import ApiError
from api.services import services

# Endpoints that need no key: a load balancer's health checks must never be refused.
UNLIMITED = frozenset(
    {
        "system.health",
        "system.metrics",
        "docs.openapi",
        "docs.docs",
        "docs.docs_init",
        "docs.docs_assets",
        "web.index",
        "static",
    }
)
SUBMIT_ENDPOINTS = ("jobs.generate", "jobs.img2img")
LIMITER_RETRY_AFTER = "X-RateLimit-Retry-After"


def caller_key() -> str:
    """The owner id of a valid key (header or body), else the client's address."""
    body = None
    if request.method == "POST" and presented_key() is None and request.is_json:
        try:
            body = json_body()
        except ApiError:
            body = None
    owner = services().keyring.owner_of(presented_key(body))
    return f"key:{owner}" if owner else f"ip:{request.remote_addr}"


def _limit(value: str) -> str:
    """The limit string, or "" for none (RATE_LIMIT=off: an empty variable means the default)."""
    return "" if value.strip().lower() in ("", "off", "none") else value


def install(app, settings) -> None:
    overall, submit = _limit(settings.rate_limit), _limit(settings.rate_limit_submit)
    if not (overall or submit):
        return
    from flask_limiter import HeaderNames, Limiter

    @app.after_request
    def _retry_after_only_when_limited(response):
        # Registered before the limiter's own hook, so it runs after it: Flask-Limiter sets
        # Retry-After on every response, and on a 202 that would tell clients when to poll.
        value = response.headers.pop(LIMITER_RETRY_AFTER, None)
        if response.status_code == 429 and value is not None:
            response.headers["Retry-After"] = str(max(1, int(value)))
        return response

    limiter = Limiter(
        caller_key,
        app=app,
        application_limits=[overall] if overall else [],
        application_limits_exempt_when=lambda: request.endpoint in UNLIMITED,
        storage_uri=settings.redis_url,
        storage_options={
            "socket_connect_timeout": settings.redis_timeout_s,
            "socket_timeout": max(settings.redis_timeout_s * 4, 2.0),
        },
        strategy="moving-window",
        headers_enabled=True,
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_AFTER},
        swallow_errors=True,
        key_prefix="ratelimit",
    )
    if submit:
        for endpoint in SUBMIT_ENDPOINTS:
            app.view_functions[endpoint] = limiter.limit(submit)(app.view_functions[endpoint])
