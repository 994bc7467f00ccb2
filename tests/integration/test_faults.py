"""Faults from RELIABILITY.md with real processes: Redis restarted mid-job, a lost queue message,
a job past its time limit, storage that cannot be written, models that cannot be loaded."""

from __future__ import annotations

import http.client
import http.server
import signal
import threading
import time
import urllib.parse

import pytest

pytestmark = pytest.mark.integration
SMALL = {"prompt": "small", "width": 64, "height": 64, "steps": 2}
LONG = {"prompt": "long", "width": 256, "height": 256, "steps": 120}


def test_redis_killed_and_restarted_mid_job(private_stack):
    """AOF on: the running and the queued job both finish once Redis is back; nobody is restarted."""
    client, start_worker, redis_server = private_stack
    start_worker("steady", MAX_BATCH="1", WORKER_CONCURRENCY="1")
    running = client.post("/generate", LONG).json()["task_id"]
    client.wait_running(running)
    queued = client.post("/generate", SMALL).json()["task_id"]
    time.sleep(1.2)  # appendfsync everysec: both records are on disk
    redis_server.process.send_signal(signal.SIGKILL)
    redis_server.process.wait(10)
    time.sleep(1.0)
    redis_server.start()
    for task_id in (running, queued):
        job = client.wait(task_id, timeout=180)
        assert job["state"] == "succeeded", job
        assert len(job["images"]) == 1
    redis = redis_server.client()
    # Each ran once, and the worker's acks reached the restarted Redis: nothing will be redelivered.
    assert [redis.hget(f"job:{task_id}", "deliveries") for task_id in (running, queued)] == ["1", "1"]
    deadline = time.time() + 5
    while redis.hlen("unacked") and time.time() < deadline:
        time.sleep(0.1)
    assert redis.hlen("unacked") == 0
    assert client.post("/generate", SMALL).status_code == 202


def test_a_lost_message_is_marked_not_queued_forever(private_stack):
    client, start_worker, redis_server = private_stack
    lost = client.post("/generate", SMALL).json()["task_id"]
    # Another model's job waits in its own queue, which no worker serves: not lost, only waiting.
    waiting = client.post("/generate", {**SMALL, "model": "tiny-sd2"}).json()["task_id"]
    redis = redis_server.client()
    assert redis.delete("model.tiny") == 1  # the message of `lost` vanishes (a purge, a lost write)
    start_worker("reaper", REAPER_INTERVAL_S="1")
    job = client.wait(lost, timeout=30)
    assert job["state"] == "failed" and job["error"]["code"] == "task_lost"
    assert "submit the job again" in job["error"]["message"]
    assert client.status(waiting)["state"] == "queued"
    assert redis.sismember("jobs:active", waiting) and not redis.sismember("jobs:active", lost)
    assert client.wait(client.post("/generate", SMALL).json()["task_id"])["state"] == "succeeded"


def test_a_job_past_its_time_limit_fails_with_timeout(private_stack):
    client, start_worker, _ = private_stack
    start_worker("strict", TASK_SOFT_TIME_LIMIT_S="2", TASK_TIME_LIMIT_S="30", PRELOAD_MODELS="tiny")
    deadline = time.time() + 60  # loading the model must not eat the small job's 2 s
    while not next(m for m in client.get("/models").json()["models"] if m["name"] == "tiny")["loaded_on"]:
        assert time.time() < deadline, "the worker never loaded its model"
        time.sleep(0.2)
    started = time.monotonic()
    job = client.wait(
        client.post("/generate", {**LONG, "width": 512, "height": 512, "steps": 150}).json()["task_id"], timeout=60
    )
    assert job["state"] == "failed" and job["error"]["code"] == "timeout", job
    assert time.monotonic() - started < 30
    assert client.wait(client.post("/generate", SMALL).json()["task_id"])["state"] == "succeeded"


def test_unwritable_local_storage_fails_with_storage_error(private_stack, tmp_path):
    client, start_worker, _ = private_stack
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the storage root's parent should be")
    start_worker("nowhere", OUTPUT_DIR=str(blocker / "outputs"))
    job = client.wait(client.post("/generate", SMALL).json()["task_id"], timeout=60)
    assert job["state"] == "failed" and job["error"]["code"] == "storage_error", job
    assert "after 3 attempts" in job["error"]["message"]
    assert blocker.read_text().startswith("a file")


def test_unloadable_models_fail_alone_and_the_worker_keeps_serving(make_private_stack, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    (models / "weights.ckpt").write_bytes(b"\x80\x04K\x01.")  # a pickle: never unpickled
    (models / "models.yaml").write_text(
        "default: tiny\n"
        "models:\n"
        "  tiny: {source: 'builtin:tiny', family: sd1}\n"
        "  missing: {source: ./absent.safetensors, family: sd1}\n"
        "  corrupt: {source: ./broken.safetensors, family: sd1}\n"
        "  pickled: {source: ./weights.ckpt, family: sd1}\n"
    )
    client, start_worker, _ = make_private_stack(models_file=str(models / "models.yaml"))
    start_worker("models", WORKER_MODELS="tiny,missing,corrupt,pickled", HF_OFFLINE="true")
    reasons = {}
    for name in ("missing", "corrupt", "pickled"):
        job = client.wait(client.post("/generate", {**SMALL, "model": name}).json()["task_id"], timeout=60)
        assert job["state"] == "failed" and job["error"]["code"] == "model_unavailable", job
        reasons[name] = job["error"]["message"]
    assert "missing" in reasons["missing"]
    assert "could not be loaded" in reasons["corrupt"]
    assert "pickle" in reasons["pickled"]
    assert client.wait(client.post("/generate", SMALL).json()["task_id"])["state"] == "succeeded"


class FaultyS3:
    """A real S3 endpoint (moto) behind a proxy that answers 500 to every PUT while `failing`."""

    def __init__(self, upstream: str):
        target = urllib.parse.urlsplit(upstream)
        self.failing = True
        self.refused_puts = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PUT" and proxy.failing and self.path.count("/") > 1:
                    proxy.refused_puts += 1
                    return self._answer(
                        500, {"Content-Type": "application/xml"}, b"<Error><Code>InternalError</Code></Error>"
                    )
                upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                upstream_conn.request(self.command, self.path, body, dict(self.headers))
                reply = upstream_conn.getresponse()
                self._answer(reply.status, dict(reply.getheaders()), reply.read())

            def _answer(self, status, headers, body):
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_s3_answering_500_fails_with_storage_error_and_writes_nothing(make_private_stack, s3_endpoint):
    import boto3

    faulty = FaultyS3(s3_endpoint)
    bucket = "diffq-faults"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    s3 = {"storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": faulty.url, "s3_region": "us-east-1"}
    client, start_worker, _ = make_private_stack(**s3)
    start_worker("s3", **{name.upper(): value for name, value in s3.items()})
    job = client.wait(client.post("/generate", SMALL).json()["task_id"], timeout=120)
    assert job["state"] == "failed" and job["error"]["code"] == "storage_error", job
    assert faulty.refused_puts >= 3 * 2  # boto3 retried each PUT, the worker tried the job's storing 3 times
    listing = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(Bucket=bucket)
    assert listing.get("KeyCount", 0) == 0
    faulty.failing = False  # the endpoint recovers: the same worker stores the next job
    job = client.wait(client.post("/generate", SMALL).json()["task_id"], timeout=120)
    assert job["state"] == "succeeded"
    listing = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(Bucket=bucket)
    assert sorted(obj["Key"].rsplit(".", 1)[1] for obj in listing["Contents"]) == ["json", "png"]
