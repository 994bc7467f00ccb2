"""Worker logging: one JSON object per line, with the job id on every line about a job.

The job id comes from a context variable the runner sets while it works on a job, else from
Celery's current task (per thread in the threads pool). LOG_FORMAT=text keeps plain lines.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from contextlib import contextmanager

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_job", default=None)


@contextmanager
def job_context(job_id: str):
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


def _job_id(record: logging.LogRecord | None = None) -> str | None:
    job_id = current_job.get()
    if job_id:
        return job_id
    # Celery's consumer logs "Task name[id] received" outside any task, with the id in its args.
    if record is not None and isinstance(record.args, dict) and isinstance(record.args.get("id"), str):
        return record.args["id"]
    try:
        from celery import current_task

        request = current_task.request if current_task else None
        return getattr(request, "id", None)
    except Exception:  # noqa: BLE001 - logging must never fail
        return None


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: str = ""):
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = _job_id(record)
        if job_id:
            entry["job_id"] = job_id
        if self.worker:
            entry["worker"] = self.worker
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job_id = _job_id(record)
        return f"[job {job_id}] {line}" if job_id else line


def configure(log_format: str = "json", level: str = "INFO", worker: str = "") -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
