"""The lost-message reaper's rules. fakeredis stands in for Redis (the messages are written in
kombu's format by hand); tests/integration/test_faults.py runs it against real Celery messages."""

from __future__ import annotations

import json

import fakeredis
import pytest

from shared.jobs import JobStore
from shared.reaper import LOST_CODE, SUSPECTS, reap, reap_if_due

GRACE = 60.0


@pytest.fixture
def jobs():
    return JobStore(fakeredis.FakeRedis(decode_responses=True), ttl_s=600)


def create(jobs, job_id, created_at=0.0):
    jobs.create(
        job_id,
        owner="o",
        kind="generate",
        model="tiny",
        params={"steps": 1},
        warnings=[],
        queue="model.tiny",
        max_active=100,
    )
    jobs.redis.hset(f"job:{job_id}", "created_at", created_at)


def message(job_id):
    return json.dumps({"body": "", "headers": {"id": job_id, "task": "diffq.generate"}, "properties": {}})


def test_a_job_missing_on_two_scans_a_grace_apart_is_failed(jobs):
    create(jobs, "gone")
    assert reap(jobs, GRACE, now=1000) == []
    assert jobs.get("gone")["state"] == "queued" and jobs.redis.hexists(SUSPECTS, "gone")
    assert reap(jobs, GRACE, now=1000 + GRACE / 2) == []
    assert reap(jobs, GRACE, now=1000 + GRACE) == ["gone"]
    job = jobs.get("gone")
    assert job["state"] == "failed" and job["error"]["code"] == LOST_CODE
    assert jobs.active_count() == 0 and not jobs.redis.exists(SUSPECTS)


@pytest.mark.parametrize("where", ["queue", "priority queue", "unacked"])
def test_a_job_whose_message_exists_is_left_alone(jobs, where):
    create(jobs, "kept")
    if where == "queue":
        jobs.redis.lpush("model.tiny", message("kept"))
    elif where == "priority queue":
        jobs.redis.lpush("model.tiny\x06\x169", message("kept"))
    else:
        jobs.redis.hset("unacked", "tag-1", json.dumps([json.loads(message("kept")), "", "model.tiny"]))
    for now in (1000, 2000, 3000):
        assert reap(jobs, GRACE, now=now) == []
    assert jobs.get("kept")["state"] == "queued"


def test_a_message_that_reappears_clears_the_suspicion(jobs):
    create(jobs, "late")
    reap(jobs, GRACE, now=1000)
    jobs.redis.lpush("model.tiny", message("late"))
    reap(jobs, GRACE, now=1000 + GRACE)
    jobs.redis.delete("model.tiny")
    assert reap(jobs, GRACE, now=1000 + 1.5 * GRACE) == []  # suspected afresh, not reaped
    assert jobs.get("late")["state"] == "queued"


def test_young_jobs_are_not_suspected(jobs):
    create(jobs, "young", created_at=990)
    assert reap(jobs, GRACE, now=1000) == []
    assert not jobs.redis.hexists(SUSPECTS, "young")


def test_a_running_job_holds_its_message_in_unacked_until_it_is_recorded(jobs):
    create(jobs, "busy")
    create(jobs, "orphan")
    for job_id in ("busy", "orphan"):
        jobs.start(job_id, "w1@host")
    jobs.redis.hset("unacked", "tag-1", json.dumps([json.loads(message("busy")), "", "model.tiny"]))
    reap(jobs, GRACE, now=1000)
    assert reap(jobs, GRACE, now=1000 + GRACE) == ["orphan"]
    assert jobs.get("busy")["state"] == "running"


def test_expired_records_leave_the_active_set(jobs):
    create(jobs, "expired")
    jobs.redis.delete("job:expired")
    reap(jobs, GRACE, now=1000)
    assert jobs.active_count() == 0


def test_one_scan_per_interval_across_workers(jobs):
    create(jobs, "gone")
    reap_if_due(jobs, 60)
    assert jobs.redis.hexists(SUSPECTS, "gone")
    jobs.redis.delete(SUSPECTS)
    reap_if_due(jobs, 60)  # another worker within the interval: no scan
    assert not jobs.redis.exists(SUSPECTS)
