"""Accept a validated request: store its input, record the job, send the task to its model's queue."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from api.errors import ApiError
from api.presenters import storage_unavailable
from shared.celery_app import TASK_GENERATE
from shared.images import png_bytes
from shared.storage import INPUT_KEYS, StorageError, input_key
from shared.validation import ValidatedRequest

log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_S = "10"
DOWN_RETRY_AFTER_S = "5"


def queue_unavailable() -> ApiError:
    return ApiError(
        503,
        "queue_unavailable",
        "the job queue is unreachable; try again shortly",
        headers={"Retry-After": DOWN_RETRY_AFTER_S},
    )


def submit(svc, request: ValidatedRequest, owner: str, job_id: str) -> str:
    """Record and send job `job_id`; return it, or raise 503 when the system is busy or the queue is down."""
    params = dict(request.params)
    for name, image in request.images.items():
        # Input images travel as storage keys, never as bytes through Redis.
        key = input_key(job_id, name)
        try:
            svc.storage.put(key, png_bytes(image), "image/png")
        except StorageError as exc:
            log.error("could not store input of job %s: %s", job_id, exc)
            raise storage_unavailable("the input image could not be stored; try again shortly") from None
        params[INPUT_KEYS[name]] = key
    return record_and_send(
        svc,
        job_id,
        owner=owner,
        kind=request.kind,
        model=request.model.name,
        params=params,
        warnings=request.warnings,
        queue=request.model.queue,
    )


def record_and_send(
    svc,
    job_id: str,
    *,
    owner: str,
    kind: str,
    model: str,
    params: dict,
    warnings: list[str],
    queue: str,
    task: str = TASK_GENERATE,
) -> str:
    """Record job `job_id` as queued and send its task; 503 when the system is busy or the queue is down."""
    try:
        accepted = svc.jobs.create(
            job_id,
            owner=owner,
            kind=kind,
            model=model,
            params=params,
            warnings=warnings,
            queue=queue,
            max_active=svc.settings.max_queue,
        )
    except RedisError:
        log.warning("redis unreachable while recording job %s", job_id)
        raise queue_unavailable() from None
    if not accepted:
        raise ApiError(
            503,
            "busy",
            "system is busy: too many unfinished jobs; try again later",
            headers={"Retry-After": BUSY_RETRY_AFTER_S},
        )
    try:
        svc.celery.send_task(
            task,
            kwargs={"job_id": job_id, "params": params},
            task_id=job_id,
            queue=queue,
            # Short display strings: Celery's saferepr of the params cost a third of the publish,
            # and prompts have no business in Flower's task list or worker logs.
            argsrepr="()",
            kwargsrepr=f"{{'job_id': '{job_id}'}}",
        )
    except (OperationalError, RedisError, OSError):
        log.warning("could not send job %s to %s", job_id, queue)
        try:
            svc.jobs.delete(job_id)
        except RedisError:
            pass
        raise queue_unavailable() from None
    log.info("job %s queued on %s", job_id, queue)
    return job_id
