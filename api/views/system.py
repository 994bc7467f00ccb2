"""Health and the model catalog."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError

from api.auth import authenticate
from api.services import services
from shared import heartbeats

bp = Blueprint("system", __name__)


@bp.get("/health")
def health():
    """Whether Redis answers and which workers were seen recently; 503 when Redis is down."""
    svc = services()
    try:
        svc.jobs.redis.ping()
        workers = heartbeats.alive(svc.jobs.redis)
        active = svc.jobs.active_count()
    except RedisError:
        return jsonify({"status": "unavailable", "redis": False, "workers": []}), 503
    return jsonify(
        {
            "status": "ok" if workers else "degraded",
            "redis": True,
            "workers": [
                {k: w.get(k) for k in ("name", "models", "device", "device_setting", "seen_at", "state")}
                for w in workers
            ],
            "unfinished_jobs": active,
            "max_queue": svc.settings.max_queue,
        }
    )


@bp.get("/models")
def models():
    """The configured models, the default, and their aliases and defaults."""
    svc = services()
    authenticate(svc.keyring)
    return jsonify(
        {
            "default": svc.catalog.default.name,
            "models": [spec.public() for spec in svc.catalog.models.values()],
        }
    )
