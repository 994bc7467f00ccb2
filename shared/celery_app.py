"""The Celery app factory shared by the API (to send tasks) and the workers (to run them)."""

from __future__ import annotations

from celery import Celery

from shared.settings import Settings

TASK_GENERATE = "diffq.generate"
TASK_WEBHOOK = "diffq.webhook"
WEBHOOK_QUEUE = "webhooks"
TASK_PREPROCESS = "diffq.preprocess"


def make_celery(settings: Settings, name: str = "diffq") -> Celery:
    """A Celery app configured for long GPU jobs that must not be lost (see RELIABILITY.md)."""
    transport = {
        # Must exceed queue wait + run time, or Redis redelivers a job that is still running.
        "visibility_timeout": settings.visibility_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "socket_timeout": max(settings.redis_timeout_s * 4, 2.0),
    }
    app = Celery(name, broker=settings.redis_url, backend=settings.backend_url, set_as_current=False)
    app.conf.update(
        # JSON only: a pickle on the broker would be code execution for anyone who can write to Redis.
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
        # Ack after the job, and requeue when the pool child dies (SIGKILL/OOM) instead of failing it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job at a time per process: a prefetched job would wait behind a long one.
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_track_started=True,
        result_expires=settings.result_expires_s,
        broker_connection_retry_on_startup=True,
        # A running task marked REVOKED on a Redis restart is never rerun: keep it running.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Fail a publish quickly so POST answers 503 instead of hanging while Redis is down.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        broker_connection_timeout=2,
        task_default_queue="default",
        worker_hijack_root_logger=False,
    )
    return app
