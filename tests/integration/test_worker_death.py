"""A worker killed mid-job (SIGKILL, as an OOM kill does): the job reruns elsewhere and succeeds
once; a job whose workers keep dying is failed after MAX_DELIVERIES instead of looping forever."""

from __future__ import annotations

import signal
import time

import pytest

from shared.settings import Settings
from tests.conftest import TEST_KEY
from tests.integration.conftest import Client
from tests.integration.stack import ApiServer, RedisServer, Worker

pytestmark = pytest.mark.integration
LONG = {"prompt": "long", "width": 256, "height": 256, "steps": 150}


def wait_running(client: Client, task_id: str, step: int = 2) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        job = client.status(task_id)
        if job["state"] == "running" and job["progress"]["step"] >= step:
            return
        time.sleep(0.05)
    raise AssertionError(f"job never ran: {client.status(task_id)}")


@pytest.fixture
def stack(tmp_path, model_cache_dir):
    redis_server = RedisServer(tmp_path / "redis").start()
    settings = Settings(
        redis_url=redis_server.url,
        output_dir=str(tmp_path / "out"),
        model_cache_dir=str(model_cache_dir),
        api_keys=TEST_KEY,
    )
    api = ApiServer(settings).start()
    workers = []

    def start_worker(name: str, **env) -> Worker:
        worker = Worker(
            settings,
            tmp_path / f"{name}.log",
            name=name,
            WORKER_MODELS="tiny",
            VISIBILITY_TIMEOUT_S="3",
            MAX_DELIVERIES="2",
            **env,
        ).start()
        workers.append(worker)
        worker.wait_ready(redis_server.client())
        return worker

    yield Client(api.url), start_worker, redis_server
    api.stop()
    for worker in workers:
        worker.stop()
    redis_server.stop()


def test_sigkill_mid_job_reruns_once_elsewhere(stack):
    client, start_worker, redis_server = stack
    first = start_worker("first")
    task_id = client.post("/generate", LONG).json()["task_id"]
    wait_running(client, task_id)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    time.sleep(3.5)  # past the visibility timeout: the unacked message may be restored
    start_worker("second")
    job = client.wait(task_id, timeout=180)
    assert job["state"] == "succeeded" and len(job["images"]) == 1
    record = redis_server.client().hgetall(f"job:{task_id}")
    assert record["deliveries"] == "2" and record["worker"].startswith("second@")


def test_a_job_that_keeps_killing_workers_fails_after_max_deliveries(stack):
    client, start_worker, redis_server = stack
    task_id = client.post("/generate", LONG).json()["task_id"]
    for n in range(2):  # MAX_DELIVERIES=2: two starts whose worker dies
        worker = start_worker(f"victim{n}")
        wait_running(client, task_id, step=1)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)
        time.sleep(3.5)
    start_worker("last")
    job = client.wait(task_id, timeout=120)
    assert job["state"] == "failed" and job["error"]["code"] == "worker_lost"
    # The queue keeps moving: the next job runs normally.
    assert (
        client.wait(
            client.post("/generate", {"prompt": "next", "width": 64, "height": 64, "steps": 2}).json()["task_id"]
        )["state"]
        == "succeeded"
    )
