"""Failures of one job (reported in its record) versus a broken worker (the job is retried)."""

from __future__ import annotations


class JobError(Exception):
    """This job cannot succeed as asked; `code` and `message` go into the job record."""

    code = "generation_failed"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ModelUnavailable(JobError):
    code = "model_unavailable"


class InvalidInput(JobError):
    code = "invalid_input"


class StorageFailed(JobError):
    code = "storage_error"


class OutOfMemory(JobError):
    code = "out_of_memory"


class JobTimeout(JobError):
    code = "timeout"
