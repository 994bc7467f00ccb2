"""Seed 002's `is_available`: would a job sent now start at once?

Yes when a live worker serves the model, nothing waits in the model's queue, and those workers
run fewer jobs than they have slots (their Celery concurrency, from the heartbeat).
"""

from __future__ import annotations

from shared import heartbeats
from shared.jobs import ACTIVE_SET, RUNNING, job_key
from shared.queues import queue_depths


def availability(client, model: str, queue: str) -> tuple[bool, str]:
    """(available, reason): the reason says what stands in the way when not available."""
    workers = [w for w in heartbeats.alive(client) if model in (w.get("models") or [])]
    if not workers:
        return False, f"no worker serving '{model}' is running"
    waiting = queue_depths(client, [queue])[queue]
    if waiting:
        return False, f"{waiting} job(s) are waiting for '{model}'"
    names = {w["name"] for w in workers}
    slots = sum(int(w.get("concurrency") or 1) for w in workers)
    pipe = client.pipeline()
    for job_id in client.smembers(ACTIVE_SET):
        pipe.hmget(job_key(job_id), "state", "worker")
    running = sum(1 for state, worker in pipe.execute() if state == RUNNING and worker in names)
    if running >= slots:
        return False, f"every slot of the workers serving '{model}' is busy ({running} running)"
    return True, ""
