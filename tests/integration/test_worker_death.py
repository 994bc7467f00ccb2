"""A worker killed mid-job (SIGKILL, as an OOM kill does): the job reruns elsewhere and succeeds
once; a job whose workers keep dying is failed after MAX_DELIVERIES instead of looping forever."""

from __future__ import annotations

import signal
import time

import pytest

pytestmark = pytest.mark.integration
LONG = {"prompt": "long", "width": 256, "height": 256, "steps": 150}
# A short visibility timeout lets a killed worker's job come back within the test.
FAST_RECOVERY = {"VISIBILITY_TIMEOUT": "3", "MAX_DELIVERIES": "2"}


def test_sigkill_mid_job_reruns_once_elsewhere(private_stack):
    client, start_worker, redis_server = private_stack
    first = start_worker("first", **FAST_RECOVERY)
    task_id = client.post("/generate", LONG).json()["task_id"]
    client.wait_running(task_id)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    time.sleep(3.5)  # past the visibility timeout: the unacked message may be restored
    start_worker("second", **FAST_RECOVERY)
    job = client.wait(task_id, timeout=180)
    assert job["state"] == "succeeded" and len(job["images"]) == 1
    record = redis_server.client().hgetall(f"job:{task_id}")
    assert record["deliveries"] == "2" and record["worker"].startswith("second@")


def test_a_job_that_keeps_killing_workers_fails_after_max_deliveries(private_stack):
    client, start_worker, redis_server = private_stack
    task_id = client.post("/generate", LONG).json()["task_id"]
    for n in range(2):  # MAX_DELIVERIES=2: two starts whose worker dies
        worker = start_worker(f"victim{n}", **FAST_RECOVERY)
        client.wait_running(task_id, step=1)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)
        time.sleep(3.5)
    start_worker("last", **FAST_RECOVERY)
    job = client.wait(task_id, timeout=120)
    assert job["state"] == "failed" and job["error"]["code"] == "worker_lost"
    # The queue keeps moving: the next job runs normally.
    next_job = client.post("/generate", {"prompt": "next", "width": 64, "height": 64, "steps": 2}).json()
    assert client.wait(next_job["task_id"])["state"] == "succeeded"
