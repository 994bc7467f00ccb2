"""Scaling down: a worker told to stop (SIGTERM, as Docker does) puts its running job back on the
queue after its soft-shutdown time, and another worker finishes it."""

from __future__ import annotations

import signal
import time

import pytest

from shared.settings import Settings
from tests.conftest import TEST_KEY
from tests.integration.conftest import Client
from tests.integration.stack import ApiServer, RedisServer, Worker

pytestmark = pytest.mark.integration


def test_sigterm_requeues_the_running_job(tmp_path, model_cache_dir):
    redis_server = RedisServer(tmp_path / "redis").start()
    settings = Settings(
        redis_url=redis_server.url,
        output_dir=str(tmp_path / "out"),
        model_cache_dir=str(model_cache_dir),
        api_keys=TEST_KEY,
    )
    # SIGTERM (as Docker sends it): the batch on the device gets WORKER_SOFT_SHUTDOWN_S, then goes back.
    first = Worker(
        settings,
        tmp_path / "first.log",
        name="first",
        WORKER_MODELS="tiny",
        WORKER_SOFT_SHUTDOWN_S="1",
    ).start()
    api = ApiServer(settings).start()
    second = None
    try:
        first.wait_ready(redis_server.client())
        client = Client(api.url)
        task_id = client.post("/generate", {"prompt": "long", "width": 256, "height": 256, "steps": 150}).json()[
            "task_id"
        ]
        deadline = time.time() + 60
        while client.status(task_id)["progress"]["step"] < 2 and time.time() < deadline:
            time.sleep(0.1)
        stopped_at = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(timeout=30)
        assert time.monotonic() - stopped_at < 10
        assert redis_server.client().llen("model.tiny") == 1  # back on the queue, not lost
        assert client.status(task_id)["state"] == "queued"

        second = Worker(settings, tmp_path / "second.log", name="second", WORKER_MODELS="tiny").start()
        job = client.wait(task_id, timeout=120)
        assert job["state"] == "succeeded"
        record = redis_server.client().hgetall(f"job:{task_id}")
        # A clean requeue gives its delivery back: only worker deaths count against MAX_DELIVERIES.
        assert record["deliveries"] == "1" and record["worker"].startswith("second@")
        assert len(job["images"]) == 1
    finally:
        api.stop()
        first.stop()
        if second:
            second.stop()
        redis_server.stop()
