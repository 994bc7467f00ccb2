"""Run the preprocess extensions that shared/extensions.py registers, as jobs with a record."""

from __future__ import annotations

import importlib
import json
import logging
import time

from shared.dsl import Input, Query, ThreadData, processed_folder
from shared.extensions import EXTENSIONS
from shared.storage import StorageError
from worker.logs import job_context

log = logging.getLogger(__name__)


class ExtensionError(Exception):
    """The extension cannot run on this thread's data; the message says what to do."""


def write_result(data: ThreadData, task: str, name: str, payload: dict) -> str:
    """Store one result under the thread's processed/<task>/ folder; return its key."""
    key = f"{processed_folder(data.user, data.thread, task)}/{name}.json"
    body = {"task": task, "created_at": time.time(), **payload}
    data.storage.put(key, json.dumps(body).encode(), "application/json")
    return key


def query_of(params: dict) -> Query:
    inputs = tuple(Input(item["attribute"], item["filter"]) for item in params["input"])
    return Query(params["user_id"], params["thread_id"], inputs, params["output"], params["task"])


class PreprocessRunner:
    def __init__(self, jobs, storage, settings, worker_name: str):
        self.jobs = jobs
        self.storage = storage
        self.settings = settings
        self.worker_name = worker_name

    def run(self, job_id: str, params: dict) -> str:
        with job_context(job_id):
            return self._run(job_id, params)

    def _run(self, job_id: str, params: dict) -> str:
        started = self.jobs.start(job_id, self.worker_name)
        if not started.applied:
            return started.state or "missing"
        extension = EXTENSIONS.get(params.get("task"))
        began = time.perf_counter()
        try:
            if extension is None:
                raise ExtensionError(f"this worker has no preprocess extension '{params.get('task')}'")
            module, function = extension.implementation.split(":")
            run = getattr(importlib.import_module(module), function)
            query = query_of(params)
            result = run(ThreadData(self.storage, query.user_id, query.thread_id), query, self.settings)
        except ExtensionError as exc:
            return self._fail(job_id, "preprocess_failed", str(exc))
        except StorageError as exc:
            return self._fail(job_id, "storage_error", f"the thread's data could not be read or written: {exc}")
        except Exception as exc:  # noqa: BLE001 - the record must say what happened
            log.exception("preprocess job %s failed unexpectedly", job_id)
            return self._fail(job_id, "internal_error", f"the extension failed unexpectedly ({type(exc).__name__})")
        self.jobs.finish(job_id, result, {"run_s": round(time.perf_counter() - began, 4)})
        log.info("preprocess job %s (%s) succeeded", job_id, params["task"])
        return "succeeded"

    def _fail(self, job_id: str, code: str, message: str) -> str:
        log.warning("preprocess job %s failed: %s: %s", job_id, code, message)
        self.jobs.fail(job_id, code, message)
        return "failed"
