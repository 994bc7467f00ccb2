"""Submitting jobs and reading their status."""

from __future__ import annotations

import re
import time

from flask import Blueprint, g, jsonify, url_for
from redis.exceptions import RedisError

from api.auth import authenticate, presented_key
from api.body import json_body
from api.errors import ApiError
from api.presenters import status_response
from api.services import services
from api.submit import queue_unavailable, submit
from shared.jobs import TERMINAL
from shared.validation import RequestInvalid

bp = Blueprint("jobs", __name__)
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
    return status_response(svc, _owned_job(svc, task_id))


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
    job_id = submit(svc, validated, owner)
    if validated.params.get("synchronous_request"):
        job = _wait(svc, job_id, svc.settings.sync_timeout_s)
        if job["state"] in TERMINAL:
            return status_response(svc, job)
    response = jsonify(
        {
            "task_id": job_id,
            "state": "queued",
            "status_url": url_for("jobs.status", task_id=job_id, _external=True),
            "warnings": validated.warnings,
        }
    )
    response.status_code = 202
    response.headers["Location"] = url_for("jobs.status", task_id=job_id)
    return response


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


def _owned_job(svc, task_id: str) -> dict:
    """The job if it exists and belongs to the caller; 404 otherwise (never say which)."""
    not_found = ApiError(404, "not_found", "no task with this id")
    if not TASK_ID.match(task_id):
        raise not_found
    try:
        job = svc.jobs.get(task_id)
    except RedisError:
        raise queue_unavailable() from None
    if job is None or job.get("owner") != g.owner:
        raise not_found
    return job


@bp.delete("/tasks/<path:task_id>")
def cancel(task_id: str):
    """Cancel a job: a queued one never runs, a running one stops at its next step."""
    svc = services()
    authenticate(svc.keyring)
    job = _owned_job(svc, task_id)
    try:
        state = svc.jobs.request_cancel(job["id"])
    except RedisError:
        raise queue_unavailable() from None
    if state == "canceled":
        return jsonify({"task_id": job["id"], "state": "canceled"})
    if state == "running":
        return jsonify({"task_id": job["id"], "state": "running", "cancel_requested": True}), 202
    raise ApiError(409, "not_cancelable", f"the task has already finished ({state})")
