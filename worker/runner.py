"""Carry one job through its states: start, generate, store, finish; every failure recorded."""

from __future__ import annotations

import io
import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image
from redis.exceptions import RedisError

from shared import webhooks
from shared.storage import INPUT_KEYS, StorageError
from shared.threadlog import logged
from worker.engine import Canceled, Requeue
from worker.errors import JobError, JobTimeout, StorageFailed
from worker.logs import job_context
from worker.results import store_results

log = logging.getLogger(__name__)
STORAGE_ATTEMPTS = 3
REQUEUED = "requeued"
# How long a finished job waits for Redis to come back to record its outcome (a restart takes seconds).
RECORD_PATIENCE_S = 120.0


class JobRunner:
    def __init__(
        self,
        jobs,
        storage,
        generator,
        worker_name: str,
        metrics=None,
        max_deliveries: int = 3,
        record_patience_s: float = RECORD_PATIENCE_S,
        notify=None,
        logs=None,
    ):
        # logs: shared.threadlog.ThreadLogs, which keeps the thread/user CSV views of seed 000.
        self.logs = logs
        # notify(job_id, event) queues a webhook delivery (worker/webhooks.py).
        self.notify = notify
        self.max_deliveries = max_deliveries
        self.record_patience_s = record_patience_s
        self.jobs = jobs
        self.storage = storage
        self.generator = generator
        self.worker_name = worker_name
        self.metrics = metrics

    def run(self, job_id: str, params: dict) -> str:
        """Run the job and return its final state, counting it in the worker's metrics."""
        began = time.perf_counter()
        with job_context(job_id):
            state = self._run(job_id, params)
        if self.metrics is not None and state in ("succeeded", "failed", "canceled"):
            model = params.get("model", "?")
            self.metrics.jobs.labels(model, state).inc()
            self.metrics.job_seconds.labels(model).observe(time.perf_counter() - began)
        return state

    def _run(self, job_id: str, params: dict) -> str:
        """Run the job and return its final state (or the state that made us skip it)."""
        started = self.jobs.start(job_id, self.worker_name)
        if not started.applied:
            # Finished already (a redelivery) or expired: running again would duplicate work.
            log.info("job %s skipped: state is %s", job_id, started.state or "missing")
            return started.state or "missing"
        if started.deliveries > self.max_deliveries:
            # Every earlier start ended with its worker gone: running it again would only kill another.
            return self._fail(
                job_id,
                params,
                JobError(
                    f"the job was started {started.deliveries - 1} times and each time its worker died (a crash or "
                    "an out-of-memory kill); it is not retried again. Try fewer or smaller images.",
                    code="worker_lost",
                ),
            )
        log.info("job %s started on %s", job_id, self.worker_name)
        self._notify(job_id, params, "running")
        if self.metrics is not None:
            created = self.jobs.created_at(job_id)
            if created is not None:
                self.metrics.queue_wait.labels(params.get("model", "?")).observe(max(0.0, time.time() - created))
        began = time.perf_counter()
        try:
            inputs = self._inputs(params)
            generate_started = time.perf_counter()
            watch = _CancelWatch(self.jobs, job_id)
            result = self.generator.run(
                params,
                inputs.pop("init_img", None),
                watch.progress,
                job_id=job_id,
                is_canceled=watch.is_canceled,
                extra_images=inputs,
            )
            if result.warnings:
                self._record(self.jobs.add_warnings, job_id, result.warnings)
            store_started = time.perf_counter()
            metadata = self._store(job_id, params, result.images, result.plan, result.errors)
            entries = metadata["images"]
            self._log(params, metadata)
            timings = {
                "generate_s": round(store_started - generate_started, 4),
                "device_s": round(result.device_s, 4),
                "store_s": round(time.perf_counter() - store_started, 4),
            }
        except Requeue:
            self._record(self.jobs.requeue, job_id)
            log.info("job %s goes back to the queue: this worker is stopping", job_id)
            return REQUEUED
        except Canceled:
            if self._record(self.jobs.cancel, job_id).applied:
                self._notify(job_id, params, "canceled")
            log.info("job %s canceled", job_id)
            return "canceled"
        except SoftTimeLimitExceeded:
            return self._fail(
                job_id, params, JobTimeout("the job ran past the worker's time limit; ask for fewer steps or images")
            )
        except JobError as exc:
            return self._fail(job_id, params, exc)
        except Exception as exc:  # noqa: BLE001 - the job record must say what happened
            log.exception("job %s failed unexpectedly", job_id)
            return self._fail(
                job_id,
                params,
                JobError(
                    f"the worker failed unexpectedly ({type(exc).__name__}); it has been logged", code="internal_error"
                ),
            )
        if self._record(self.jobs.succeed, job_id, entries, result.total_steps, timings).applied:
            self._notify(job_id, params, "succeeded")
        log.info("job %s succeeded: %d image(s) in %.2fs", job_id, len(entries), time.perf_counter() - began)
        return "succeeded"

    def _inputs(self, params: dict) -> dict[str, Image.Image]:
        """The job's input images (init_img, mask, image_painted, control_image) from storage."""
        images = {}
        for name, param in INPUT_KEYS.items():
            key = params.get(param)
            if not key:
                continue
            try:
                images[name] = Image.open(io.BytesIO(self.storage.get(key))).convert("RGB")
            except (KeyError, StorageError) as exc:
                raise StorageFailed(f"the input image {name} could not be read from storage: {exc}") from exc
        return images

    def _store(self, job_id: str, params: dict, images, plan, errors=None) -> dict:
        delay = 0.5
        for attempt in range(1, STORAGE_ATTEMPTS + 1):
            try:
                return store_results(self.storage, job_id, params, images, plan, self._created_at(job_id), errors or {})
            except StorageError as exc:
                log.warning("job %s: storing results failed (attempt %d): %s", job_id, attempt, exc)
                if attempt == STORAGE_ATTEMPTS:
                    raise StorageFailed(f"the results could not be stored after {attempt} attempts: {exc}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _created_at(self, job_id: str) -> float | None:
        try:
            return self.jobs.created_at(job_id)
        except RedisError:
            return None

    def _log(self, params: dict, metadata: dict) -> None:
        """Update the thread's CSV views; the job JSON is already stored, so a failure here only delays them."""
        thread = logged(params)
        if self.logs is None or thread is None:
            return
        try:
            self.logs.record(*thread, metadata)
        except Exception as exc:  # noqa: BLE001 - the next job of the thread (or a rating) rewrites the views
            log.warning("job %s: thread log not updated: %s", metadata["job_id"], exc)

    def _fail(self, job_id: str, params: dict, error: JobError) -> str:
        log.warning("job %s failed: %s: %s", job_id, error.code, error.message)
        if self._record(self.jobs.fail, job_id, error.code, error.message).applied:
            self._notify(job_id, params, "failed")
        return "failed"

    def _notify(self, job_id: str, params: dict, event: str) -> None:
        """Queue the job's webhook for `event` if it asked for one; never fails the job."""
        if self.notify is None or not webhooks.wants(params, event):
            return
        try:
            self.notify(job_id, event)
        except Exception as exc:  # noqa: BLE001 - the job's outcome is recorded; the webhook is extra
            log.warning("job %s: webhook for %s not queued: %s", job_id, event, exc)

    def _record(self, change, *args):
        """Apply a final state change, waiting for Redis through a restart instead of losing the outcome."""
        deadline = time.monotonic() + self.record_patience_s
        delay = 0.2
        while True:
            try:
                return change(*args)
            except RedisError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("job record unreachable (%s); trying again in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


class _CancelWatch:
    """Progress and cancel in one Redis round trip per step: the progress write reports whether
    a cancel was requested, and the next cancel check honours it (the job ends canceled)."""

    def __init__(self, jobs, job_id: str):
        self.jobs = jobs
        self.job_id = job_id
        self.requested = False
        self.unrecorded = False

    def progress(self, step: int, total: int) -> None:
        try:
            self.requested = self.jobs.progress(self.job_id, step, total) or self.requested
        except RedisError as exc:
            # Progress is best effort: a Redis restart must not cost the image being made.
            if not self.unrecorded:
                log.warning("progress of job %s not recorded while Redis is unreachable: %s", self.job_id, exc)
            self.unrecorded = True

    def is_canceled(self) -> bool:
        if self.requested:
            self.jobs.cancel(self.job_id)
        return self.requested
