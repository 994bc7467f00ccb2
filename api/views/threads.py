"""Seed 000 over HTTP: ratings in the thread log, /fetch/log and the preprocess extensions."""

from __future__ import annotations

import time
import uuid

from flask import Blueprint, jsonify
from redis.exceptions import RedisError

from api.auth import authenticate
from api.body import json_body
from api.errors import ApiError
from api.presenters import accepted_response, storage_unavailable
from api.services import services
from api.submit import record_and_send
from api.threads import require_user
from api.views.jobs import owned_job
from shared.celery_app import TASK_PREPROCESS
from shared.dsl import DslError, ThreadData, parse_fetch, parse_preprocess
from shared.extensions import PREPROCESS_QUEUE
from shared.jobs import SUCCEEDED
from shared.storage import StorageError
from shared.threadlog import ThreadLogs, local_time

bp = Blueprint("threads", __name__)
RATING_MIN, RATING_MAX = 1, 5


@bp.post("/tasks/<path:task_id>/ratings")
def rate(task_id: str):
    """Add a user's rating (1-5) of one image of a finished job; it shows in the thread's log.csv."""
    svc = services()
    body = json_body()
    authenticate(svc.keyring, body)
    job = owned_job(svc, task_id)
    rating, image = _rating(body, job)
    if job["state"] != SUCCEEDED:
        raise ApiError(409, "not_finished", f"only a succeeded task's images can be rated (this one is {job['state']})")
    stamp, zone = local_time(time.time())
    entry = {"image": job["images"][image]["key"].rsplit("/", 1)[-1], "rating": rating, "time": stamp, "timezone": zone}
    logs = ThreadLogs.with_redis(svc.storage, svc.jobs.redis)
    try:
        metadata = logs.update_job(job["params"], job["id"], lambda meta: meta.setdefault("ratings", []).append(entry))
    except KeyError:
        raise ApiError(410, "image_gone", "the task's settings file is no longer in storage") from None
    except (StorageError, RedisError, TimeoutError):
        raise storage_unavailable("the log could not be updated; try again shortly") from None
    return jsonify({"task_id": job["id"], "ratings": metadata["ratings"]}), 201


def _rating(body: dict, job: dict) -> tuple[int, int]:
    problems = {}
    extra = set(body) - {"rating", "image", "api_key"}
    if extra:
        problems["body"] = f"unknown key(s): {', '.join(sorted(extra))}"
    rating = body.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not RATING_MIN <= rating <= RATING_MAX:
        problems["rating"] = f"must be a whole number from {RATING_MIN} to {RATING_MAX}"
    image = body.get("image", 0)
    count = len(job.get("images") or [])
    if isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < max(count, 1):
        problems["image"] = f"must be the index of one of the task's images (0 to {max(count - 1, 0)})"
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(f"{k}: {v}" for k, v in problems.items()), fields=problems)
    return rating, image


@bp.post("/fetch/log")
def fetch_log():
    """Read a thread's log rows, images and preprocessed results with seed 000's DSL."""
    svc = services()
    body = json_body()
    authenticate(svc.keyring, body)
    try:
        query = parse_fetch(body)
    except DslError as exc:
        raise ApiError(400, "invalid_request", str(exc), fields=exc.fields) from None
    require_user(svc.jobs.redis, query.user_id)
    data = ThreadData(svc.storage, query.user_id, query.thread_id)
    try:
        if not data.exists():
            raise ApiError(404, "not_found", "no log for this user_id and thread_id")
        results = {}
        for item in query.inputs:
            records = data.select(item)
            if item.attribute == "log/image":
                records = [{**record, "url": svc.links.url(record["key"])} for record in records]
            results[item.attribute] = records
    except StorageError:
        raise storage_unavailable() from None
    return jsonify(
        {
            "data": {"user_id": query.user_id, "thread_id": query.thread_id},
            "output": query.output,
            "results": results,
        }
    )


@bp.post("/extensions/preprocess")
def preprocess():
    """Queue a preprocess extension (image_encoding, image_projection) on a thread's data."""
    svc = services()
    body = json_body()
    owner = authenticate(svc.keyring, body)
    try:
        query = parse_preprocess(body)
    except DslError as exc:
        raise ApiError(400, "invalid_request", str(exc), fields=exc.fields) from None
    require_user(svc.jobs.redis, query.user_id)
    try:
        if not ThreadData(svc.storage, query.user_id, query.thread_id).exists():
            raise ApiError(404, "not_found", "no log for this user_id and thread_id")
    except StorageError:
        raise storage_unavailable() from None
    params = {
        "task": query.task,
        "user_id": query.user_id,
        "thread_id": query.thread_id,
        "input": [{"attribute": item.attribute, "filter": item.filter} for item in query.inputs],
        "output": query.output,
    }
    job_id = record_and_send(
        svc,
        str(uuid.uuid4()),
        owner=owner,
        kind="preprocess",
        model=query.task,
        params=params,
        warnings=[],
        queue=PREPROCESS_QUEUE,
        task=TASK_PREPROCESS,
    )
    return accepted_response(job_id)
