"""One Redis, one worker and one API for the integration tests of a session."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from shared.settings import Settings
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.integration.stack import ApiServer, RedisServer, Worker, free_port

SEED001_KEY = "lksalsdfjliadfds"


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server: a real S3 HTTP endpoint on loopback, shared by every process."""
    import os

    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack_settings(redis_server, tmp_path_factory, model_cache_dir):
    return Settings(
        redis_url=redis_server.url,
        output_dir=str(tmp_path_factory.mktemp("outputs")),
        model_cache_dir=str(model_cache_dir),
        # The seed-001 dummy key lets its example requests pass as written.
        api_keys=f"{TEST_KEY},{OTHER_KEY},{SEED001_KEY}",
        worker_models="tiny",
        sync_timeout_s=60,
    )


@pytest.fixture(scope="session")
def worker(stack_settings, redis_server, tmp_path_factory):
    proc = Worker(stack_settings, tmp_path_factory.mktemp("logs") / "worker.log", WORKER_MODELS="tiny").start()
    proc.wait_ready(redis_server.client())
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def api(stack_settings, worker):
    server = ApiServer(stack_settings).start()
    yield server
    server.stop()


@pytest.fixture
def make_api(stack_settings):
    """An extra API with changed settings (e.g. a small MAX_QUEUE)."""
    servers = []

    def build(**changes):
        server = ApiServer(dataclasses.replace(stack_settings, **changes)).start()
        servers.append(server)
        return server

    yield build
    for server in servers:
        server.stop()


class Client:
    """requests with the test key and helpers to wait for a job."""

    def __init__(self, base: str, key: str | None = TEST_KEY):
        self.base = base
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def post(self, path, body=None, **kwargs):
        return self.session.post(self.base + path, json=body, timeout=90, **kwargs)

    def get(self, path, **kwargs):
        return self.session.get(self.base + path, timeout=30, **kwargs)

    def status(self, task_id):
        return self.get(f"/status/{task_id}", params={"format": "json"}).json()

    def wait_running(self, task_id, step=2, timeout=60):
        """Until the job runs on a worker and has done `step` steps."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.status(task_id)
            if job["state"] == "running" and job["progress"]["step"] >= step:
                return
            time.sleep(0.05)
        raise AssertionError(f"job never ran: {self.status(task_id)}")

    def wait(self, task_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.status(task_id)
            if job["state"] in ("succeeded", "failed", "canceled"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {task_id} did not finish: {job}")


@pytest.fixture
def make_private_stack(tmp_path, model_cache_dir):
    """Build a Redis, an API and workers of this test's own, for tests that kill or stop processes.

    make_private_stack(**settings_changes) returns (client, start_worker, redis_server);
    start_worker(name, **env) starts a worker of the tiny model and waits until it is ready.
    """
    processes = []

    def build(**changes):
        redis_server = RedisServer(tmp_path / "redis").start()
        processes.append(redis_server)
        settings = Settings(
            redis_url=redis_server.url,
            output_dir=str(tmp_path / "out"),
            model_cache_dir=str(model_cache_dir),
            api_keys=TEST_KEY,
            **changes,
        )
        api = ApiServer(settings).start()
        processes.insert(0, api)

        def start_worker(name: str, **env) -> Worker:
            worker = Worker(settings, tmp_path / f"{name}.log", name=name, **{"WORKER_MODELS": "tiny", **env})
            processes.insert(1, worker.start())
            worker.wait_ready(redis_server.client())
            return worker

        return Client(api.url), start_worker, redis_server

    yield build
    for process in processes:
        process.stop()


@pytest.fixture
def private_stack(make_private_stack):
    """(client, start_worker, redis_server) of a stack of this test's own, default settings."""
    return make_private_stack()


@pytest.fixture
def client(api):
    return Client(api.url)
