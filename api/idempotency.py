"""Idempotency-Key: a retried POST gives the task it created the first time, not a second job.

The key is scoped to the caller's API key and kept for IDEMPOTENCY_TTL_S. The first request
claims it atomically (SET NX) with a hash of its body and the task id it is about to create; a
repeat with the same body gets that task id, a repeat with another body gets 409. If the first
request fails before its job is recorded, the claim is released so a retry can succeed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from flask import request

from api.errors import ApiError

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
PREFIX = "idempotency:"


@dataclass
class Claim:
    job_id: str
    replayed: bool
    redis_key: str = ""


def presented() -> str | None:
    """The request's Idempotency-Key, checked; None when absent."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not KEY_PATTERN.match(value):
        raise ApiError(
            400,
            "invalid_request",
            f"{HEADER} must be 1 to 255 visible ASCII characters",
            fields={HEADER: "1 to 255 visible ASCII characters"},
        )
    return value


def fingerprint(kind: str, body: dict) -> str:
    """What makes two requests 'the same': the endpoint and the body, without the key itself."""
    payload = {k: v for k, v in body.items() if k != "api_key"}
    canonical = json.dumps([kind, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def claim(client, owner: str, key: str, digest: str, new_job_id: str, ttl_s: int) -> Claim:
    """Claim `key` for `new_job_id`, or return the job it already names (409 for another body)."""
    redis_key = f"{PREFIX}{owner}:{hashlib.sha256(key.encode()).hexdigest()}"
    record = json.dumps({"digest": digest, "job_id": new_job_id})
    if client.set(redis_key, record, nx=True, ex=ttl_s):
        return Claim(new_job_id, replayed=False, redis_key=redis_key)
    existing = client.get(redis_key)
    if existing is None:  # expired between the two calls: claim it afresh
        return claim(client, owner, key, digest, new_job_id, ttl_s)
    existing = json.loads(existing)
    if existing["digest"] != digest:
        raise ApiError(
            409,
            "idempotency_key_reused",
            f"this {HEADER} was already used with a different request body; use a new key for a new request",
        )
    return Claim(existing["job_id"], replayed=True, redis_key=redis_key)


def release(client, claim_: Claim) -> None:
    """Forget a claim whose job could not be created."""
    if claim_.redis_key and not claim_.replayed:
        client.delete(claim_.redis_key)
