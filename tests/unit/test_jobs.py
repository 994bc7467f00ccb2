"""The job record's guarded state machine, backpressure and recent list.

fakeredis (with Lua) stands in for Redis here so the rules run without a server; the same
scripts run against a real redis-server in the integration tests.
"""

from __future__ import annotations

import fakeredis
import pytest

from shared.jobs import JobStore


@pytest.fixture
def store():
    return JobStore(fakeredis.FakeRedis(decode_responses=True), ttl_s=60)


def create(store, job_id="j1", max_active=10, owner="o1"):
    return store.create(
        job_id,
        owner=owner,
        kind="generate",
        model="tiny",
        params={"steps": 5, "prompt": "p"},
        warnings=["w"],
        queue="model.tiny",
        max_active=max_active,
    )


def test_create_records_a_queued_job_with_ttl(store):
    assert create(store)
    job = store.get("j1")
    assert job["state"] == "queued" and job["progress"] == {"step": 0, "total": 5} and job["warnings"] == ["w"]
    assert 0 < store.redis.ttl("job:j1") <= 60
    assert store.active_count() == 1


def test_duplicate_ids_are_refused(store):
    create(store)
    with pytest.raises(ValueError):
        create(store)


def test_backpressure_counts_unfinished_jobs(store):
    assert create(store, "a", max_active=2) and create(store, "b", max_active=2)
    assert not create(store, "c", max_active=2)
    assert store.get("c") is None
    store.start("a", "w")
    store.fail("a", "x", "y")
    assert create(store, "c", max_active=2)


def test_lifecycle_and_redelivery_guard(store):
    create(store)
    assert store.start("j1", "w").applied
    assert store.start("j1", "w").applied  # a redelivery while running may take over
    assert store.get("j1")["deliveries"] == 2
    assert store.progress("j1", 3, 5) is False  # recorded; no cancel requested
    assert store.get("j1")["progress"] == {"step": 3, "total": 5}
    assert store.succeed("j1", [{"key": "k", "seed": 1, "width": 8, "height": 8, "format": "png"}], 5).applied
    job = store.get("j1")
    assert job["state"] == "succeeded" and job["progress"] == {"step": 5, "total": 5}
    assert store.active_count() == 0
    # Once finished, nothing moves it again.
    refused = store.start("j1", "w")
    assert not refused.applied and refused.state == "succeeded"
    store.progress("j1", 1, 5)
    assert store.get("j1")["progress"] == {"step": 5, "total": 5}  # finished jobs keep their progress
    assert not store.fail("j1", "x", "y").applied


def test_progress_never_recreates_a_missing_record(store):
    assert store.progress("gone", 1, 2) is False
    assert store.redis.exists("job:gone") == 0
    assert store.start("gone", "w").state is None


def test_fail_records_code_and_message(store):
    create(store)
    store.fail("j1", "model_unavailable", "model 'x' could not be loaded")
    assert store.get("j1")["error"] == {"code": "model_unavailable", "message": "model 'x' could not be loaded"}


def test_recent_is_per_owner_newest_first_and_trimmed(store):
    store.recent_keep = 3
    for n, owner in enumerate(["a", "a", "b", "a", "a"]):
        job_id = f"j{n}"
        create(store, job_id, owner=owner)
        store.start(job_id, "w")
        store.succeed(job_id, [{"key": f"k{n}", "seed": n, "width": 8, "height": 8, "format": "png"}], 5)
    assert [e["key"] for e in store.recent("a", 10)] == ["k4", "k3", "k1"]
    assert [e["key"] for e in store.recent("b", 10)] == ["k2"]
    assert store.recent("a", 1)[0]["task_id"] == "j4"


def test_request_cancel(store):
    create(store, "q")
    assert store.request_cancel("q") == "canceled"  # queued: canceled at once
    assert store.get("q")["state"] == "canceled" and store.active_count() == 0
    assert not store.start("q", "w").applied  # so it never runs
    create(store, "r")
    store.start("r", "w")
    assert store.request_cancel("r") == "running" and store.cancel_requested("r")
    assert store.cancel("r").applied and store.get("r")["state"] == "canceled"
    create(store, "s")
    store.start("s", "w")
    store.succeed("s", [], 5)
    assert store.request_cancel("s") == "succeeded"
    assert store.request_cancel("missing") is None
