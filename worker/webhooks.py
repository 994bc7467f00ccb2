"""Deliver webhooks: one Celery task per event on the `webhooks` queue, which every worker serves.

A delivery POSTs the signed event and counts as done on a 2xx answer. Anything else (an error
status, a timeout, a refused connection) is retried with doubling backoff up to
WEBHOOK_MAX_ATTEMPTS; a redirect is not followed and a destination that now resolves to a
private address is not contacted, and neither is retried. Every attempt is logged in the job's
record, which /status shows under `webhook`.
"""

from __future__ import annotations

import logging
import time

import requests

from shared import webhooks
from shared.celery_app import TASK_WEBHOOK

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, settings, jobs, post=requests.post):
        self.settings = settings
        self.jobs = jobs
        # requests.post opens a connection per call: workers deliver from several threads at once.
        self.post = post

    def deliver(self, job_id: str, event: str, attempt: int) -> float | None:
        """Make one attempt; return the seconds to wait before the next one, or None when done."""
        job = self.jobs.get(job_id)
        if job is None or not webhooks.wants(job.get("params") or {}, event):
            return None
        url = job["params"]["webhook_url"]
        secret = webhooks.owner_secret(self.settings.webhook_secret, job["owner"])
        body, headers = webhooks.signed_request(secret, f"{job_id}.{event}", webhooks.payload(job, event))
        entry = {"event": event, "attempt": attempt, "at": time.time(), "status_code": None, "error": None}
        retry = True
        try:
            webhooks.check_destination(url, self.settings.webhook_allow_private)
            answer = self.post(
                url, data=body, headers=headers, timeout=self.settings.webhook_timeout_s, allow_redirects=False
            )
            entry["status_code"] = answer.status_code
            if 200 <= answer.status_code < 300:
                entry["delivered"] = True
                retry = False
            elif answer.is_redirect or 300 <= answer.status_code < 400:
                entry["error"] = "the endpoint answered with a redirect; redirects are not followed"
                retry = False
            else:
                entry["error"] = f"the endpoint answered HTTP {answer.status_code}"
        except webhooks.DestinationRefused as exc:
            entry["error"] = str(exc)
            retry = False
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
        last = not retry or attempt >= self.settings.webhook_max_attempts
        entry["final"] = last
        self.jobs.add_webhook_delivery(job_id, entry)
        if entry.get("delivered"):
            log.info("webhook %s of job %s delivered (attempt %d)", event, job_id, attempt)
            return None
        log.warning("webhook %s of job %s, attempt %d: %s", event, job_id, attempt, entry["error"])
        if last:
            return None
        return self.settings.webhook_backoff_s * 2 ** (attempt - 1)


def register_webhook_task(app, settings, jobs_factory) -> None:
    deliverer: dict = {}

    @app.task(name=TASK_WEBHOOK)
    def deliver(*, job_id: str, event: str, attempt: int = 1, **_newer_fields) -> str:
        """One delivery attempt of a job's webhook event; schedules the next one if it failed."""
        if "instance" not in deliverer:
            deliverer["instance"] = Deliverer(settings, jobs_factory())
        wait = deliverer["instance"].deliver(job_id, event, attempt)
        if wait is None:
            return "done"
        webhooks.queue_delivery(app, job_id, event, attempt + 1, countdown=wait)
        return f"retry in {wait:.0f}s"
