"""Scaling down: a worker told to stop (SIGTERM, as Docker does) puts its running job back on the
queue after its soft-shutdown time, and another worker finishes it."""

from __future__ import annotations

import signal
import time

import pytest

pytestmark = pytest.mark.integration


def test_sigterm_requeues_the_running_job(private_stack):
    client, start_worker, redis_server = private_stack
    # SIGTERM (as Docker sends it): the batch on the device gets WORKER_SOFT_SHUTDOWN_S, then goes back.
    first = start_worker("first", WORKER_SOFT_SHUTDOWN_S="1")
    task_id = client.post("/generate", {"prompt": "long", "width": 256, "height": 256, "steps": 150}).json()["task_id"]
    client.wait_running(task_id)
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    first.process.wait(timeout=30)
    assert time.monotonic() - stopped_at < 10
    assert redis_server.client().llen("model.tiny") == 1  # back on the queue, not lost
    assert client.status(task_id)["state"] == "queued"

    start_worker("second")
    job = client.wait(task_id, timeout=120)
    assert job["state"] == "succeeded"
    record = redis_server.client().hgetall(f"job:{task_id}")
    # A clean requeue gives its delivery back: only worker deaths count against MAX_DELIVERIES.
    assert record["deliveries"] == "1" and record["worker"].startswith("second@")
    assert len(job["images"]) == 1
