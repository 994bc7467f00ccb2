"""`make run`'s launcher as a user runs it: the API listens on loopback only, a job goes through,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import TEST_KEY
from tests.integration.stack import ROOT, RedisServer, free_port

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc/net/tcp")
def test_make_run_binds_loopback_and_serves(model_cache_dir, tmp_path):
    # A Redis of its own: the session's worker must not take this job (it writes elsewhere).
    redis_server = RedisServer(tmp_path / "redis").start()
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "API_PORT": str(port),
        "API_KEYS": TEST_KEY,
        "WEBHOOK_SECRET": "run-local-test",  # so the launcher writes nothing under .local/
        "MODEL_CACHE_DIR": str(model_cache_dir),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "TORCH_THREADS": "1",
        "WORKER_MODELS": "tiny",
    }
    env.pop("API_HOST", None)
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "run-local")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline and launcher.poll() is None, "the API never answered"
            time.sleep(0.3)
        # Loopback only: 127.0.0.1 in /proc/net/tcp is 0100007F; 0.0.0.0 would be 00000000.
        assert listening_addresses(port) == {"0100007F"}
        answer = requests.post(
            f"http://127.0.0.1:{port}/generate",
            json={"prompt": "make run", "width": 64, "height": 64, "steps": 2, "synchronous_request": True},
            headers={"Authorization": f"Bearer {TEST_KEY}"},
            timeout=120,
        )
        assert answer.status_code == 200 and answer.content[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        launcher.send_signal(signal.SIGINT)
        output = launcher.communicate(timeout=30)[0]
        redis_server.stop()
    assert launcher.returncode == 0, output[-3000:]
    assert f"API on http://127.0.0.1:{port}" in output
    assert not listening_addresses(port)
