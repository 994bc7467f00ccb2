"""Thin Celery tasks: they hand their arguments to the job runner."""

from __future__ import annotations

from shared.celery_app import TASK_GENERATE, TASK_PREPROCESS


def register_tasks(app, settings, worker_name) -> None:
    from celery.exceptions import Reject

    from worker.runner import REQUEUED
    from worker.runtime import get_runtime

    @app.task(name=TASK_GENERATE)
    def generate(*, job_id: str, params: dict, **_newer_fields) -> str:
        """Generate the images of one job. Unknown keyword arguments from newer APIs are ignored."""
        state = get_runtime(settings, worker_name()).runner.run(job_id, params)
        if state == REQUEUED:
            # The worker is stopping: hand the message back to the broker for another worker.
            raise Reject(f"job {job_id} requeued at shutdown", requeue=True)
        return state

    @app.task(name=TASK_PREPROCESS)
    def preprocess(*, job_id: str, params: dict, **_newer_fields) -> str:
        """Run one preprocess extension (shared/extensions.py) on a thread's data."""
        return get_runtime(settings, worker_name()).preprocessor.run(job_id, params)
