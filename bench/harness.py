"""Shared pieces of the benchmarks: processes (from the integration harness), gunicorn, reporting."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.stack import RedisServer, Worker, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KEY = "bench-key"
__all__ = [
    "RedisServer",
    "Worker",
    "free_port",
    "Gunicorn",
    "api_session",
    "run_job",
    "percentile",
    "report",
    "wait_done",
    "KEY",
]


class Gunicorn:
    """The API as deployed: gunicorn, gthread workers, settings from the environment."""

    def __init__(self, env: dict, workers: int = 2, threads: int = 8):
        self.port = free_port()
        # Benchmarks measure the queue, not the per-key policy: rate limits off unless env sets them.
        self.env = {
            **os.environ,
            "RATE_LIMIT": "off",
            "RATE_LIMIT_SUBMIT": "off",
            **env,
            "API_KEYS": KEY,
            "PYTHONPATH": str(ROOT),
        }
        self.workers, self.threads = workers, threads
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--log-level",
                "warning",
                "api:create_app()",
            ],
            cwd=ROOT,
            env=self.env,
        )
        for _ in range(100):
            try:
                requests.get(self.url + "/health", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)


def wait_done(session: requests.Session, base: str, task_id: str, timeout: float = 600, poll: float = 0.005) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = session.get(f"{base}/status/{task_id}", params={"format": "json"}, timeout=30).json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(poll)
    raise TimeoutError(task_id)


def api_session(pool: int = 10) -> requests.Session:
    """A session with the benchmark key and room for `pool` concurrent connections."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
    return session


def run_job(session: requests.Session, base: str, body: dict, poll: float) -> tuple[dict, float]:
    """POST /generate, wait until the job succeeded; the job record and the client's latency."""
    started = time.perf_counter()
    task_id = session.post(base + "/generate", json=body, timeout=60).json()["task_id"]
    job = wait_done(session, base, task_id, poll=poll)
    assert job["state"] == "succeeded", job
    return job, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict:
    info = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Print `rows` as a table and write them, with the machine, to bench/results/<name>.json."""
    columns = list(rows[0]) if rows else []
    widths = [max(len(str(c)), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": rows,
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
