"""Prometheus metrics from a real worker process and the API after real jobs."""

from __future__ import annotations

import time

import pytest
import requests

from tests.integration.stack import free_port

pytestmark = pytest.mark.integration


def test_worker_and_api_metrics_after_jobs(private_stack):
    client, start_worker, redis_server = private_stack
    port = free_port()
    worker = start_worker("metrics", WORKER_METRICS_PORT=str(port))
    ids = [
        client.post("/generate", {"prompt": f"m{i}", "width": 64, "height": 64, "steps": 2}).json()["task_id"]
        for i in range(3)
    ]
    for task_id in ids:
        assert client.wait(task_id)["state"] == "succeeded"
    time.sleep(0.2)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'diffq_worker_jobs_total{model="tiny",state="succeeded"} 3.0' in text
    assert 'diffq_worker_queue_wait_seconds_count{model="tiny"} 3.0' in text
    assert (
        "diffq_worker_batch_images_count" in text and 'diffq_worker_model_load_seconds_count{model="tiny"} 1.0' in text
    )
    assert "diffq_worker_device_memory_bytes 0.0" in text  # CPU
    check_json_logs(worker.log_path, ids)
    api_text = requests.get(client.base + "/metrics", timeout=10).text
    assert 'diffq_api_requests_total{endpoint="jobs.generate",method="POST",status="202"} 3' in api_text
    assert "diffq_workers 1" in api_text


def check_json_logs(path, ids):
    """Every log line is a JSON object; every line about a job names it in job_id."""
    import json

    entries = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    about_jobs = [e for e in entries if any(task_id in e["message"] for task_id in ids)]
    assert len(about_jobs) >= 3 * len(ids)  # received, started, succeeded, task succeeded...
    assert all(e.get("job_id") and e["job_id"] in e["message"] for e in about_jobs)
    assert {e["job_id"] for e in entries if e.get("job_id")} == set(ids)
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
