"""Mark jobs whose Celery message is gone, so that no job reads `queued` (or `running`) forever.

A message can vanish without its job finishing: the API stopped between recording a job and
sending its task, Redis lost its last second of writes, someone purged a queue. Such a job is
unfinished in its record but nothing will ever run it. The reaper looks for the message of every
unfinished job in its queue's lists and in the `unacked` hash; a job missing from both on two
scans at least `grace_s` apart is failed with `task_lost`, which the caller can act on (submit
again) instead of waiting forever. A running job's message is in `unacked` until its outcome is
recorded (acks late), so a running job without one has lost it too.
"""

from __future__ import annotations

import logging
import time

from shared.jobs import ACTIVE_SET, QUEUED, RUNNING, job_key
from shared.queues import unacked_task_ids, waiting_task_ids

log = logging.getLogger(__name__)
LOCK = "reaper:lock"
SUSPECTS = "reaper:suspects"
LOST_CODE = "task_lost"
LOST_MESSAGE = (
    "the job's queue message was lost before any worker finished it (the API or Redis stopped at the "
    "wrong moment, or the queue was purged); submit the job again"
)


def reap(jobs, grace_s: float, now: float | None = None) -> list[str]:
    """One scan: return the ids of the jobs it marked lost."""
    client = jobs.redis
    now = time.time() if now is None else now
    unfinished = _unfinished(client)
    if not unfinished:
        client.delete(SUSPECTS)
        return []
    present = waiting_task_ids(client, {job["queue"] for job in unfinished.values() if job["queue"]})
    present |= unacked_task_ids(client)
    suspects = client.hgetall(SUSPECTS)
    missing = {}
    for job_id, job in unfinished.items():
        if job_id in present or now - job["created_at"] < grace_s:
            continue
        missing[job_id] = float(suspects.get(job_id, now))
    lost = []
    for job_id, first_seen in missing.items():
        if now - first_seen >= grace_s and jobs.fail(job_id, LOST_CODE, LOST_MESSAGE).applied:
            log.warning("job %s marked %s: its message is in no queue and no worker holds it", job_id, LOST_CODE)
            lost.append(job_id)
    pipe = client.pipeline()
    pipe.delete(SUSPECTS)
    still = {job_id: first for job_id, first in missing.items() if job_id not in lost}
    if still:
        pipe.hset(SUSPECTS, mapping=still)
    pipe.execute()
    return lost


def reap_if_due(jobs, interval_s: float) -> list[str]:
    """Scan at most once per `interval_s` across all workers (a Redis lock elects the scanner)."""
    if not jobs.redis.set(LOCK, str(time.time()), nx=True, ex=max(1, int(interval_s))):
        return []
    return reap(jobs, grace_s=interval_s)


def _unfinished(client) -> dict[str, dict]:
    ids = sorted(client.smembers(ACTIVE_SET))
    pipe = client.pipeline()
    for job_id in ids:
        pipe.hmget(job_key(job_id), "state", "queue", "created_at")
    jobs, expired = {}, []
    for job_id, (state, queue, created_at) in zip(ids, pipe.execute(), strict=True):
        if state in (QUEUED, RUNNING):
            jobs[job_id] = {"state": state, "queue": queue, "created_at": float(created_at or 0)}
        elif state is None:
            expired.append(job_id)
    if expired:
        # A record that expired unfinished must not count against MAX_QUEUE forever.
        client.srem(ACTIVE_SET, *expired)
    return jobs
