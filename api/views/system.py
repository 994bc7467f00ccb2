"""Health and the model catalog."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from redis.exceptions import RedisError

from api import metrics as api_metrics
from api.auth import authenticate
from api.errors import ApiError
from api.services import services
from shared import heartbeats
from shared.availability import availability
from shared.queues import queue_depths
from shared.samplers import ALIASES, SAMPLERS, sampler_spec

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


@bp.get("/server/status")
def server_status():
    """Seed 002: whether a job sent now would start at once (?model= picks the model; default the default)."""
    svc = services()
    authenticate(svc.keyring)
    label = request.args.get("model")
    spec = svc.catalog.default if label is None else svc.catalog.resolve(label)
    if spec is None:
        raise ApiError(
            400, "invalid_request", f"unknown model '{label}'", fields={"model": "must be a model from GET /models"}
        )
    try:
        available, reason = availability(svc.jobs.redis, spec.name, spec.queue)
    except RedisError:
        available, reason = False, "the job queue is unreachable"
    body = {"is_available": available, "model": spec.name}
    if reason:
        body["reason"] = reason
    return jsonify(body)


@bp.get("/models")
def models():
    """The configured models with their defaults, queue depth and the workers serving them."""
    svc = services()
    authenticate(svc.keyring)
    specs = list(svc.catalog.models.values())
    try:
        workers = heartbeats.alive(svc.jobs.redis)
        depths = queue_depths(svc.jobs.redis, [spec.queue for spec in specs])
    except RedisError:
        workers, depths = [], {}
    entries = []
    for spec in specs:
        entries.append(
            {
                **spec.public(),
                "queue": spec.queue,
                "queued": depths.get(spec.queue),
                "workers": [w["name"] for w in workers if spec.name in (w.get("models") or [])],
                "loaded_on": [w["name"] for w in workers if spec.name in (w.get("loaded") or [])],
            }
        )
    loras = [lora.public() for lora in svc.catalog.loras.values()]
    return jsonify({"default": svc.catalog.default.name, "models": entries, "loras": loras})


@bp.get("/samplers")
def samplers():
    """Every accepted sampler key, its diffusers scheduler and options, and any approximation."""
    authenticate(services().keyring)
    entries = [sampler_spec(key).public(key) for key in SAMPLERS]
    for alias, target in ALIASES.items():
        entries.append({**sampler_spec(alias).public(alias), "alias_of": target})
    return jsonify({"samplers": entries, "default": "the model's default sampler (GET /models)"})


@bp.get("/metrics")
def metrics():
    """Prometheus metrics: requests, latency, refusals, queue depth per model, workers."""
    svc = services()
    client = svc.jobs.redis
    try:
        depths = queue_depths(client, [spec.queue for spec in svc.catalog.models.values()])
        return api_metrics.render(client, depths, svc.jobs.active_count(), len(heartbeats.alive(client)))
    except RedisError:
        return jsonify({"error": {"code": "unavailable", "message": "Redis is unreachable"}}), 503
