"""The job record in Redis: what /status trusts, written by the API and the workers.

Every state change goes through one Lua script that checks the current state first, so a
redelivered task cannot move a finished job back to running, and a late progress update cannot
resurrect an expired record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})
JSON_FIELDS = ("params", "warnings", "progress", "images", "error", "timings", "result")

ACTIVE_SET = "jobs:active"
RECENT_PREFIX = "recent:"

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""

# KEYS: job, active set. ARGV: allowed states (comma list), finishing (0/1), job id, field/values...
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == state then allowed = true end end
if not allowed then return state end
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[2] == '1' then redis.call('SREM', KEYS[2], ARGV[3]) end
return 'ok'
"""


def total_steps(params: dict) -> int:
    """Denoising steps a job runs: img2img skips the first (1 - strength) of each schedule."""
    steps = int(params.get("steps") or 0)
    if "strength" in params:
        steps = min(int(steps * params["strength"]), steps)
    return steps * int(params.get("n_iter") or 1)


# KEYS: job. ARGV: progress JSON. Writes only while running; returns 1 if a cancel is requested.
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return 1 end
return 0
"""


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


def redis_client(url: str, timeout_s: float = 0.5) -> redis.Redis:
    """A client that fails fast: a POST must answer 503 quickly when Redis is down."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=max(timeout_s * 4, 2.0),
        decode_responses=True,
        health_check_interval=30,
    )


@dataclass
class Transition:
    """What a guarded state change did: applied, or refused because the job was in `state`."""

    applied: bool
    state: str | None
    # For start(): how many times the job has now been started.
    deliveries: int = 0


class JobStore:
    def __init__(self, client: redis.Redis, ttl_s: int = 7 * 24 * 3600, recent_keep: int = 1000):
        self.redis = client
        self.ttl_s = ttl_s
        self.recent_keep = recent_keep
        self._create = client.register_script(_CREATE)
        self._transition = client.register_script(_TRANSITION)
        self._progress = client.register_script(_PROGRESS)

    # -- API side -------------------------------------------------------------------------

    def create(
        self,
        job_id: str,
        *,
        owner: str,
        kind: str,
        model: str,
        params: dict,
        warnings: list[str],
        queue: str,
        max_active: int,
    ) -> bool:
        """Record a new queued job; False when `max_active` unfinished jobs already exist."""
        now = time.time()
        record = {
            "id": job_id,
            "state": QUEUED,
            "kind": kind,
            "owner": owner,
            "model": model,
            "queue": queue,
            "params": params,
            "warnings": warnings,
            "progress": {"step": 0, "total": total_steps(params)},
            "images": [],
            "error": None,
            "created_at": now,
            "deliveries": 0,
        }
        args = [max_active, self.ttl_s]
        for key, value in record.items():
            args += [key, _dump(key, value)]
        # The record starts with "id", <job_id>: ARGV[4] is the id that joins the active set.
        result = self._create(keys=[job_key(job_id), ACTIVE_SET], args=args)
        if result == -1:
            raise ValueError(f"job {job_id} already exists")
        return result == 1

    def request_cancel(self, job_id: str) -> str | None:
        """Cancel a queued job now, or ask the worker to stop a running one at its next step.

        Returns the state that results: canceled, running (stop requested), or the finished state.
        """
        if self._apply(job_id, (QUEUED,), True, {"state": CANCELED, "finished_at": time.time()}).applied:
            return CANCELED
        requested = self._apply(job_id, (RUNNING,), False, {"cancel_requested": "1"})
        if requested.applied:
            return RUNNING
        return requested.state

    def delete(self, job_id: str) -> None:
        """Forget a job whose task could not be sent."""
        pipe = self.redis.pipeline()
        pipe.delete(job_key(job_id))
        pipe.srem(ACTIVE_SET, job_id)
        pipe.execute()

    def get(self, job_id: str) -> dict | None:
        raw = self.redis.hgetall(job_key(job_id))
        if not raw:
            return None
        return {key: _load(key, value) for key, value in raw.items()}

    def active_count(self) -> int:
        return self.redis.scard(ACTIVE_SET)

    def recent(self, owner: str, limit: int) -> list[dict]:
        """Newest successful images of `owner`, newest first."""
        members = self.redis.zrevrange(RECENT_PREFIX + owner, 0, limit - 1)
        return [json.loads(m) for m in members]

    # -- worker side ----------------------------------------------------------------------

    def start(self, job_id: str, worker: str) -> Transition:
        """queued/running -> running, counting deliveries; refused once the job has finished."""
        result = self._apply(
            job_id,
            (QUEUED, RUNNING),
            False,
            {
                "state": RUNNING,
                "started_at": time.time(),
                "worker": worker,
            },
        )
        if result.applied:
            result.deliveries = self.redis.hincrby(job_key(job_id), "deliveries", 1)
        return result

    def progress(self, job_id: str, step: int, total: int) -> bool:
        """Record progress of a running job; True when a cancel was requested. One round trip."""
        return self._progress(keys=[job_key(job_id)], args=[json.dumps({"step": step, "total": total})]) == 1

    def add_warnings(self, job_id: str, warnings: list[str]) -> None:
        job = self.get(job_id)
        if job is not None and warnings:
            merged = list(job.get("warnings") or []) + [w for w in warnings if w not in (job.get("warnings") or [])]
            self._apply(job_id, (QUEUED, RUNNING), False, {"warnings": merged})

    def succeed(self, job_id: str, images: list[dict], total_steps: int, timings: dict | None = None) -> Transition:
        now = time.time()
        result = self._apply(
            job_id,
            (RUNNING,),
            True,
            {
                "state": SUCCEEDED,
                "finished_at": now,
                "images": images,
                "progress": {"step": total_steps, "total": total_steps},
                "timings": timings or {},
            },
        )
        if result.applied:
            job = self.get(job_id)
            self._add_recent(job, images, now)
        return result

    def finish(self, job_id: str, result: dict, timings: dict | None = None) -> Transition:
        """running -> succeeded for jobs that make data rather than images (preprocess extensions)."""
        return self._apply(
            job_id,
            (RUNNING,),
            True,
            {"state": SUCCEEDED, "finished_at": time.time(), "result": result, "timings": timings or {}},
        )

    def created_at(self, job_id: str) -> float | None:
        value = self.redis.hget(job_key(job_id), "created_at")
        return float(value) if value is not None else None

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(job_key(job_id), "cancel_requested") == "1"

    def cancel(self, job_id: str) -> Transition:
        """running -> canceled, by the worker when it honours a cancel request."""
        return self._apply(job_id, (QUEUED, RUNNING), True, {"state": CANCELED, "finished_at": time.time()})

    def requeue(self, job_id: str) -> Transition:
        """running -> queued: the worker stopped cleanly and the task went back to the queue.

        The delivery is given back: only starts that ended with a dead worker count against
        MAX_DELIVERIES.
        """
        result = self._apply(job_id, (RUNNING,), False, {"state": QUEUED, "progress": {"step": 0, "total": 0}})
        if result.applied:
            self.redis.hincrby(job_key(job_id), "deliveries", -1)
        return result

    def fail(self, job_id: str, code: str, message: str) -> Transition:
        return self._apply(
            job_id,
            (QUEUED, RUNNING),
            True,
            {
                "state": FAILED,
                "finished_at": time.time(),
                "error": {"code": code, "message": message},
            },
        )

    # -- webhooks -------------------------------------------------------------------------

    def add_webhook_delivery(self, job_id: str, entry: dict, keep: int = 50) -> None:
        """Append one delivery attempt to the job's webhook log (kept as long as the job)."""
        key = job_key(job_id) + ":webhooks"
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(entry, sort_keys=True))
        pipe.ltrim(key, -keep, -1)
        pipe.expire(key, self.ttl_s)
        pipe.execute()

    def webhook_deliveries(self, job_id: str) -> list[dict]:
        return [json.loads(raw) for raw in self.redis.lrange(job_key(job_id) + ":webhooks", 0, -1)]

    # -- internals ------------------------------------------------------------------------

    def _apply(self, job_id: str, allowed: tuple[str, ...], finishing: bool, values: dict) -> Transition:
        args = [",".join(allowed), "1" if finishing else "0", job_id]
        for key, value in values.items():
            args += [key, _dump(key, value)]
        result = self._transition(keys=[job_key(job_id), ACTIVE_SET], args=args)
        if result == "ok":
            return Transition(True, values.get("state"))
        return Transition(False, result)

    def _add_recent(self, job: dict | None, images: list[dict], now: float) -> None:
        if job is None:
            return
        key = RECENT_PREFIX + job["owner"]
        pipe = self.redis.pipeline()
        for index, image in enumerate(images):
            entry = {
                "task_id": job["id"],
                "model": job["model"],
                "prompt": job["params"].get("prompt"),
                "created_at": now,
                **image,
            }
            # Later images of a job sort after earlier ones at the same instant.
            pipe.zadd(key, {json.dumps(entry, sort_keys=True): now + index * 1e-6})
        pipe.zremrangebyrank(key, 0, -self.recent_keep - 1)
        pipe.execute()


def _dump(key: str, value) -> str:
    if key in JSON_FIELDS:
        return json.dumps(value)
    return str(value)


def _load(key: str, value: str):
    if key in JSON_FIELDS:
        return json.loads(value)
    if key in ("created_at", "started_at", "finished_at"):
        return float(value)
    if key == "deliveries":
        return int(value)
    return value
