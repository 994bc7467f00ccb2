"""Three real workers against one Redis and an S3 endpoint: every job runs exactly once, every
image exists once, and a worker scoped to one model never takes another model's jobs."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import boto3
import pytest
import requests

from shared.settings import Settings
from tests.conftest import TEST_KEY
from tests.integration.conftest import Client
from tests.integration.stack import ApiServer, RedisServer, Worker

pytestmark = pytest.mark.integration
MODELS = str(Path(__file__).resolve().parents[1] / "data" / "models-two.yaml")
BUCKET = "diffq-scaling"
JOBS = 30


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_endpoint, model_cache_dir):
    tmp = tmp_path_factory.mktemp("cluster")
    redis_server = RedisServer(tmp / "redis").start()
    settings = Settings(
        redis_url=redis_server.url,
        storage="s3",
        s3_bucket=BUCKET,
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        s3_create_bucket=True,
        models_file=MODELS,
        model_cache_dir=str(model_cache_dir),
        api_keys=TEST_KEY,
        output_dir=str(tmp / "unused"),
    )
    s3 = {
        "STORAGE": "s3",
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": "us-east-1",
        "S3_CREATE_BUCKET": "true",
    }
    workers = [
        Worker(settings, tmp / "all.log", name="all", **s3),
        Worker(settings, tmp / "only-a.log", name="only-a", WORKER_MODELS="tiny", **s3),
        Worker(settings, tmp / "only-b.log", name="only-b", WORKER_MODELS="tiny-b", PRELOAD_MODELS="tiny-b", **s3),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready(redis_server.client(), timeout=120)
    api = ApiServer(settings).start()
    yield api, redis_server, workers
    api.stop()
    for worker in workers:
        worker.stop()
    redis_server.stop()


def test_thirty_jobs_over_two_models_and_three_workers(cluster, s3_endpoint):
    api, redis_server, workers = cluster
    client = Client(api.url)
    models = client.get("/models").json()["models"]
    serving = {m["name"]: sorted(w.split("@")[0] for w in m["workers"]) for m in models}
    assert serving == {"tiny": ["all", "only-a"], "tiny-b": ["all", "only-b"]}
    # only-b preloads its model when its pool process starts, before any job asks for it.
    deadline = time.time() + 60
    while time.time() < deadline:
        loaded = {m["name"]: m["loaded_on"] for m in client.get("/models").json()["models"]}
        if loaded["tiny-b"]:
            break
        time.sleep(0.2)
    assert [name.split("@")[0] for name in loaded["tiny-b"]] == ["only-b"] and loaded["tiny"] == []

    submitted = {}
    for n in range(JOBS):
        model = "tiny" if n % 2 else "tiny-b"
        answer = client.post("/generate", {"prompt": f"job {n}", "model": model, "seed": n})
        assert answer.status_code == 202, answer.text
        submitted[answer.json()["task_id"]] = model
    jobs = {task_id: client.wait(task_id, timeout=240) for task_id in submitted}

    assert all(job["state"] == "succeeded" for job in jobs.values()), [j["error"] for j in jobs.values()]
    records = {task_id: redis_server.client().hgetall(f"job:{task_id}") for task_id in submitted}
    assert all(record["deliveries"] == "1" for record in records.values())  # each ran exactly once
    ran_on = collections.defaultdict(set)
    for task_id, record in records.items():
        ran_on[submitted[task_id]].add(record["worker"].split("@")[0])
    assert ran_on["tiny"] <= {"all", "only-a"} and ran_on["tiny-b"] <= {"all", "only-b"}

    # Each job left exactly one image and one metadata file in the bucket.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    for task_id in submitted:
        assert sorted(k for k in keys if task_id in k) == [f"cache/data/{task_id}-0.png", f"cache/data/{task_id}.json"]
    assert len(keys) == 2 * JOBS

    recent = client.get("/recent", params={"limit": 100}).json()["images"]
    assert {entry["task_id"] for entry in recent} == set(submitted)
    for entry in recent[:5]:
        answer = requests.get(entry["url"], timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"


def test_queue_depth_is_reported(cluster):
    api, redis_server, workers = cluster
    client = Client(api.url)
    for worker in workers:
        worker.stop()
    time.sleep(0.5)
    for _ in range(3):
        client.post("/generate", {"prompt": "waiting", "model": "tiny-b"})
    depth = {m["name"]: m["queued"] for m in client.get("/models").json()["models"]}
    assert depth == {"tiny": 0, "tiny-b": 3}
