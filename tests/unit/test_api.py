"""The API's HTTP rules with fakeredis and a recording Celery stand-in (no broker needed to check
what would be sent); the integration tests send real tasks to a real worker."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import fakeredis
import pytest

from api import create_app
from api.services import Services
from tests.conftest import TEST_KEY

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


class RecordingCelery:
    def __init__(self):
        self.sent = []

    def send_task(self, name, kwargs, task_id, queue, **options):
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue, **options})


@pytest.fixture
def celery():
    return RecordingCelery()


@pytest.fixture
def app(settings, celery):
    services = Services.build(settings, client=fakeredis.FakeRedis(decode_responses=True), celery=celery)
    return create_app(settings, services=services)


@pytest.fixture
def client(app):
    return app.test_client()


def test_generate_sends_one_small_task_to_the_models_queue(client, celery, app):
    answer = client.post("/generate", json={"prompt": "a cat", "seed": 3}, headers=AUTH)
    assert answer.status_code == 202
    task_id = answer.json["task_id"]
    [sent] = celery.sent
    assert sent["task_id"] == task_id and sent["queue"] == "model.tiny" and sent["name"] == "diffq.generate"
    assert set(sent["kwargs"]) == {"job_id", "params"} and sent["kwargs"]["params"]["seed"] == 3
    assert "a cat" not in sent["kwargsrepr"]  # prompts stay out of Flower and worker logs
    assert answer.headers["Location"] == f"/status/{task_id}"
    job = client.get(f"/status/{task_id}", headers=AUTH).json
    assert job["state"] == "queued" and job["params"]["prompt"] == "a cat"


def test_img2img_input_goes_to_storage_not_redis(client, celery, settings):
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    body = {"prompt": "p", "init_img": base64.b64encode(out.getvalue()).decode()}
    answer = client.post("/img2img", json=body, headers=AUTH)
    assert answer.status_code == 202
    params = celery.sent[0]["kwargs"]["params"]
    assert "init_img" not in params and params["init_image_key"].startswith("cache/inputs/")
    assert len(str(celery.sent[0]["kwargs"])) < 2000


def test_body_api_key_is_accepted_and_never_stored(client, celery):
    answer = client.post("/generate", json={"prompt": "x", "api_key": TEST_KEY})
    assert answer.status_code == 202
    assert TEST_KEY not in str(celery.sent)


def test_401_before_anything_else(client, celery):
    assert client.post("/generate", json={"prompt": ""}, headers={"X-API-Key": "nope"}).status_code == 401
    assert celery.sent == []


def test_status_of_unknown_task(client):
    answer = client.get("/status/00000000-0000-4000-8000-000000000000", headers=AUTH)
    assert answer.status_code == 404 and answer.json == {
        "error": {"code": "not_found", "message": "no task with this id"}
    }


def test_health_without_workers_is_degraded(client):
    body = client.get("/health").json
    assert body["redis"] is True and body["status"] == "degraded" and body["workers"] == []


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").json["error"]["code"] == "not_found"
    assert client.get("/generate").json["error"]["code"] == "method_not_allowed"


def test_busy_at_max_queue(settings, celery):
    small = dataclasses.replace(settings, max_queue=1)
    services = Services.build(small, client=fakeredis.FakeRedis(decode_responses=True), celery=celery)
    client = create_app(small, services=services).test_client()
    assert client.post("/generate", json={"prompt": "x"}, headers=AUTH).status_code == 202
    busy = client.post("/generate", json={"prompt": "x"}, headers=AUTH)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "10"
    assert busy.json["error"] == {
        "code": "busy",
        "message": "system is busy: too many unfinished jobs; try again later",
    }
    assert len(celery.sent) == 1


def test_failed_send_forgets_the_job(settings):
    from kombu.exceptions import OperationalError

    class DownCelery:
        def send_task(self, *args, **kwargs):
            raise OperationalError("connection refused")

    redis = fakeredis.FakeRedis(decode_responses=True)
    client = create_app(settings, services=Services.build(settings, client=redis, celery=DownCelery())).test_client()
    answer = client.post("/generate", json={"prompt": "x"}, headers=AUTH)
    assert answer.status_code == 503 and answer.json["error"]["code"] == "queue_unavailable"
    assert redis.scard("jobs:active") == 0 and not list(redis.scan_iter("job:*"))


def test_api_starts_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch would now fail
        "from api import create_app; from shared.settings import Settings\n"
        "create_app(Settings(api_keys='k'))\n"
        "assert not any(m.startswith(('diffusers', 'transformers', 'worker')) for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_samplers_endpoint_lists_every_key(client):
    from shared.samplers import sampler_keys

    entries = client.get("/samplers", headers=AUTH).json["samplers"]
    assert [e["key"] for e in entries] == sampler_keys()
    by_key = {e["key"]: e for e in entries}
    assert by_key["k_dpmpp_2m_ka"]["options"] == {"use_karras_sigmas": True}
    assert "approximation" in by_key["k_dpm_fast"] and "approximation" not in by_key["ddim"]
    assert by_key["k_euler_ancestral"]["alias_of"] == "k_euler_a"
    assert client.get("/samplers").status_code == 401


def test_metrics_count_requests_latency_refusals_and_queues(client):
    client.post("/generate", json={"prompt": "a cat"}, headers=AUTH)
    client.post("/generate", json={"prompt": ""}, headers=AUTH)
    client.get("/recent", headers={"X-API-Key": "wrong"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'diffq_api_requests_total{endpoint="jobs.generate",method="POST",status="202"} 1' in text
    assert 'diffq_api_requests_total{endpoint="jobs.generate",method="POST",status="400"} 1' in text
    assert 'diffq_api_refusals_total{code="invalid_request"} 1' in text
    assert 'diffq_api_refusals_total{code="unauthorized"} 1' in text
    assert 'diffq_api_request_seconds_bucket{endpoint="jobs.generate",le="+Inf"} 2' in text
    assert 'diffq_queue_depth{queue="model.tiny"}' in text and "diffq_unfinished_jobs 1" in text
    assert "diffq_workers 0" in text


def test_metrics_add_up_across_api_processes(settings, celery):
    server = fakeredis.FakeServer()
    apps = [
        create_app(
            settings,
            services=Services.build(
                settings, client=fakeredis.FakeRedis(server=server, decode_responses=True), celery=celery
            ),
        )
        for _ in range(2)
    ]
    for app in apps:  # like two gunicorn workers, each serving one request
        app.test_client().post("/generate", json={"prompt": "x"}, headers=AUTH)
    text = apps[0].test_client().get("/metrics").get_data(as_text=True)
    assert 'diffq_api_requests_total{endpoint="jobs.generate",method="POST",status="202"} 2' in text


def test_an_image_missing_from_storage_is_410_not_500(client, app):
    task_id = client.post("/generate", json={"prompt": "gone"}, headers=AUTH).json["task_id"]
    jobs = app.extensions["diffq"].jobs
    jobs.start(task_id, "w")
    image = {"key": f"cache/data/{task_id}-0.png", "seed": 1, "width": 8, "height": 8, "format": "png"}
    jobs.succeed(task_id, [image], 1)
    answer = client.get(f"/status/{task_id}", headers=AUTH)
    assert answer.status_code == 410 and answer.json["error"]["code"] == "image_gone"
    assert client.get(f"/status/{task_id}?format=json", headers=AUTH).json["state"] == "succeeded"
