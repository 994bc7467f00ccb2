"""Submitting jobs and reading their status."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Blueprint, jsonify, request
from redis.exceptions import RedisError

from api import idempotency
from api.auth import authenticate, may_see, presented_key
from api.body import json_body
from api.errors import ApiError
from api.presenters import accepted_response, status_response
from api.services import services
from api.submit import queue_unavailable, submit
from api.threads import claim_user
from shared import webhooks
from shared.jobs import TERMINAL
from shared.validation import RequestInvalid

bp = Blueprint("jobs", __name__)
log = logging.getLogger(__name__)
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@bp.post("/generate")
def generate():
    """Queue a text-to-image job."""
    return _accept("generate")


@bp.post("/img2img")
def img2img():
    """Queue an image-to-image job."""
    return _accept("img2img")


@bp.get("/status/<path:task_id>")
def status(task_id: str):
    """A job's state, progress, parameters and results (or its first image)."""
    svc = services()
    authenticate(svc.keyring)
    if request.args.get("format", "json") != "json":
        raise ApiError(
            400, "invalid_request", "format may only be 'json'", fields={"format": "must be 'json' or left out"}
        )
    return status_response(svc, owned_job(svc, task_id))


def _accept(kind: str):
    svc = services()
    if presented_key() is not None:
        # A header key is checked before the body is read: strangers learn nothing from parse errors.
        authenticate(svc.keyring)
    body = json_body()
    owner = authenticate(svc.keyring, body)
    try:
        validated = svc.validators[kind].validate(body)
    except RequestInvalid as exc:
        raise ApiError(400, "invalid_request", str(exc), fields=exc.fields) from None
    if validated.params.get("webhook_url"):
        _check_webhook(svc, validated.params["webhook_url"])
    if validated.params.get("user_id"):
        claim_user(svc.jobs.redis, validated.params["user_id"], owner)
    job_id, replayed = _submit_once(svc, kind, body, validated, owner)
    if validated.params.get("synchronous_request"):
        job = _wait(svc, job_id, svc.settings.sync_timeout_s)
        if job["state"] in TERMINAL:
            return status_response(svc, job)
    state = "queued"
    if replayed:
        try:
            state = (svc.jobs.get(job_id) or {}).get("state", "queued")
        except RedisError:
            raise queue_unavailable() from None
    response = accepted_response(job_id, state, warnings=validated.warnings, replayed=replayed)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _check_webhook(svc, url: str) -> None:
    if not svc.settings.webhook_secret:
        raise ApiError(
            400,
            "invalid_request",
            "webhooks are not enabled on this server (it has no WEBHOOK_SECRET)",
            fields={"webhook_url": "webhooks are not enabled on this server"},
        )
    try:
        webhooks.check_destination(url, svc.settings.webhook_allow_private)
    except webhooks.DestinationRefused as exc:
        raise ApiError(400, "invalid_request", str(exc), fields={"webhook_url": str(exc)}) from None


def _submit_once(svc, kind: str, body: dict, validated, owner: str) -> tuple[str, bool]:
    """Submit the job, unless its Idempotency-Key already names one: (job id, replayed)."""
    key = idempotency.presented()
    job_id = str(uuid.uuid4())
    if key is None:
        return submit(svc, validated, owner, job_id), False
    digest = idempotency.fingerprint(kind, body)
    try:
        claim = idempotency.claim(svc.jobs.redis, owner, key, digest, job_id, svc.settings.idempotency_ttl_s)
    except RedisError:
        raise queue_unavailable() from None
    if claim.replayed:
        return claim.job_id, True
    try:
        return submit(svc, validated, owner, job_id), False
    except ApiError:
        try:
            idempotency.release(svc.jobs.redis, claim)
        except RedisError:
            pass  # the claim expires with its TTL
        raise


def _wait(svc, job_id: str, timeout_s: float) -> dict:
    """Poll the job record until it finishes or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            job = svc.jobs.get(job_id)
        except RedisError:
            raise queue_unavailable() from None
        if job is None or job["state"] in TERMINAL or time.monotonic() >= deadline:
            return job or {"id": job_id, "state": "queued"}
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def owned_job(svc, task_id: str) -> dict:
    """The job if it exists and belongs to the caller; 404 otherwise (never say which)."""
    not_found = ApiError(404, "not_found", "no task with this id")
    if not TASK_ID.match(task_id):
        raise not_found
    try:
        job = svc.jobs.get(task_id)
    except RedisError:
        raise queue_unavailable() from None
    if job is None or not may_see(job.get("owner")):
        raise not_found
    return job


@bp.delete("/tasks/<task_id>")
def cancel(task_id: str):
    """Cancel a job: a queued one never runs, a running one stops at its next step."""
    svc = services()
    authenticate(svc.keyring)
    job = owned_job(svc, task_id)
    try:
        state = svc.jobs.request_cancel(job["id"])
    except RedisError:
        raise queue_unavailable() from None
    if state == "canceled":
        if webhooks.wants(job.get("params") or {}, "canceled"):
            try:
                webhooks.queue_delivery(svc.celery, job["id"], "canceled")
            except Exception:  # noqa: BLE001 - the cancel stands; the log says the webhook did not go
                log.warning("webhook for canceled job %s not queued", job["id"])
        return jsonify({"task_id": job["id"], "state": "canceled"})
    if state == "running":
        return jsonify({"task_id": job["id"], "state": "running", "cancel_requested": True}), 202
    raise ApiError(409, "not_cancelable", f"the task has already finished ({state})")
