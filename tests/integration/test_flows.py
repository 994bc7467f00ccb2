"""Whole flows through real HTTP, a real redis-server and a real Celery worker on the tiny model."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from shared.images import read_parameters
from shared.settings import Settings
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.integration.conftest import Client
from tests.integration.stack import ApiServer, RedisServer, free_port

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = {"width": 64, "height": 64, "steps": 4}


def png_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_txt2img_async_then_status_json_and_image(client):
    accepted = client.post("/generate", {"prompt": "a red dragon", "seed": 42, **SMALL})
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    assert accepted.json()["status_url"].endswith(f"/status/{task_id}")

    job = client.wait(task_id)
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"step": 4, "total": 4}
    assert job["params"]["seed"] == 42 and job["params"]["model"] == "tiny"
    [image] = job["images"]
    assert (image["width"], image["height"], image["seed"], image["format"]) == (64, 64, 42, "png")

    # Without asking for JSON the status answers with the image itself (seed 001).
    direct = client.get(f"/status/{task_id}")
    assert direct.headers["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(direct.content))
    assert picture.size == (64, 64)
    assert "Seed: 42" in read_parameters(direct.content)
    # Accept: application/json gives JSON too.
    as_json = client.get(f"/status/{task_id}", headers={"Accept": "application/json"})
    assert as_json.json()["state"] == "succeeded"
    # The signed link works without any key (e.g. in an <img> tag).
    assert requests.get(image["url"], timeout=10).content == direct.content


def test_same_seed_same_pixels_and_seeds_per_image(client):
    body = {"prompt": "tabby cat", "seed": 7, "n_samples": 2, "n_iter": 2, **SMALL}
    first = client.wait(client.post("/generate", body).json()["task_id"])
    again = client.wait(client.post("/generate", body).json()["task_id"])
    assert [i["seed"] for i in first["images"]] == [7, 8, 9, 10]
    for a, b in zip(first["images"], again["images"], strict=True):
        assert requests.get(a["url"], timeout=10).content == requests.get(b["url"], timeout=10).content


def test_return_base64_and_jpeg(client):
    job = client.wait(
        client.post("/generate", {"prompt": "x", "format": "jpg", "return_base64": True, **SMALL}).json()["task_id"]
    )
    raw = base64.b64decode(job["images"][0]["base64"])
    assert Image.open(io.BytesIO(raw)).format == "JPEG"
    assert "Steps: 4" in read_parameters(raw)
    # return_base64 jobs answer JSON even to clients that did not ask for it.
    assert client.get(f"/status/{job['task_id']}").headers["Content-Type"].startswith("application/json")


def test_img2img_with_seed001_image(client):
    body = {
        "prompt": "a dragon",
        "init_img": png_b64(DATA / "seed001-24x24.png"),
        "denoising_strength": 0.5,
        "W": 64,
        "H": 64,
        "ddim_steps": 8,
        "seed": 3,
    }
    accepted = client.post("/img2img", body)
    assert accepted.status_code == 202, accepted.text
    job = client.wait(accepted.json()["task_id"])
    assert job["state"] == "succeeded", job
    assert job["progress"]["total"] == 4  # 8 steps x strength 0.5
    assert job["params"]["strength"] == 0.5 and "init_img" not in job["params"]
    assert job["images"][0]["width"] == 64


def test_img2img_accepts_data_url(client):
    body = {"prompt": "p", "init_img": "data:image/png;base64," + png_b64(DATA / "seed001-24x24.png"), **SMALL}
    job = client.wait(client.post("/img2img", body).json()["task_id"])
    assert job["state"] == "succeeded"


def test_seed001_examples_accepted_as_written(api):
    # Both example requests of seed 001, unchanged; their api_key is in the body.
    client = Client(api.url, key=None)
    for name, path in (("generate", "seed001-generate.json"), ("img2img", "seed001-img2img.json")):
        body = json.loads((DATA / path).read_text())
        accepted = client.post(f"/{name}", body)
        assert accepted.status_code == 202, accepted.text
        warnings = " ".join(accepted.json()["warnings"])
        for ignored in ("outdir", "config", "device", "precision", "from-file", "type"):
            assert f"'{ignored}' was ignored" in warnings
        job = Client(api.url, key="lksalsdfjliadfds").wait(accepted.json()["task_id"], timeout=180)
        assert job["state"] == "succeeded", job
        assert len(job["images"]) == body["n_samples"] * body["n_iter"]
        assert job["params"]["seed"] == 42 and "api_key" not in job["params"]


def test_synchronous_request_answers_like_status(client):
    answer = client.post("/generate", {"prompt": "sync", "synchronous_request": True, **SMALL})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/png"
    answer = client.post("/generate?format=json", {"prompt": "sync", "synchronous_request": True, **SMALL})
    assert answer.json()["state"] == "succeeded"


def test_synchronous_request_gives_202_when_wait_runs_out(make_api):
    fast = Client(make_api(sync_timeout_s=0.01).url)
    answer = fast.post("/generate", {"prompt": "slow", "synchronous_request": True, **SMALL})
    assert answer.status_code == 202
    assert fast.wait(answer.json()["task_id"])["state"] == "succeeded"


def test_recent_lists_newest_first_with_working_links(client):
    # One after the other: jobs sent together may share a batch and finish at the same moment.
    ids = []
    for i in range(3):
        ids.append(client.post("/generate", {"prompt": f"recent {i}", **SMALL}).json()["task_id"])
        client.wait(ids[-1])
    recent = client.get("/recent", params={"limit": 3}).json()["images"]
    assert [entry["task_id"] for entry in recent] == ids[::-1]
    for entry in recent:
        assert requests.get(entry["url"], timeout=10).headers["Content-Type"] == "image/png"
    assert len(client.get("/recent").json()["images"]) <= 10


def test_keys_see_only_their_own_jobs(api, client):
    task_id = client.post("/generate", {"prompt": "mine", **SMALL}).json()["task_id"]
    client.wait(task_id)
    other = Client(api.url, key=OTHER_KEY)
    assert other.get(f"/status/{task_id}").status_code == 404
    assert task_id not in {e["task_id"] for e in other.get("/recent", params={"limit": 100}).json()["images"]}


def test_unauthorized_requests_get_the_same_401(api):
    bodies = []
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": "Basic x"}):
        answer = requests.post(api.url + "/generate", json={"prompt": "x"}, headers=headers, timeout=10)
        assert answer.status_code == 401
        bodies.append(answer.json())
    for path in ("/recent", "/models", "/status/00000000-0000-4000-8000-000000000000"):
        assert requests.get(api.url + path, timeout=10).status_code == 401
    assert all(body == bodies[0] for body in bodies)
    # A key in the query string is not a key.
    assert requests.get(api.url + "/recent?api_key=test-key-0123456789", timeout=10).status_code == 401


def test_health_and_models(api, client):
    health = requests.get(api.url + "/health", timeout=10).json()
    assert health["redis"] is True and health["status"] == "ok"
    assert any(w["models"] == ["tiny"] and w["device"] == "cpu" for w in health["workers"])
    models = client.get("/models").json()
    assert models["default"] == "tiny"
    by_name = {m["name"]: m for m in models["models"]}
    assert {"sd14", "sd21", "sd21v"} <= set(by_name)
    assert by_name["sd21v"]["defaults"]["width"] == 768


def test_busy_when_queue_is_full(make_api):
    # sd14 jobs wait: the test worker serves only the tiny model's queue.
    small = Client(make_api(max_queue=2).url)
    before = small.get("/health").json()["unfinished_jobs"]
    codes = []
    for _ in range(max(0, 2 - before) + 1):
        codes.append(small.post("/generate", {"prompt": "wait", "model": "sd14"}))
    busy = codes[-1]
    assert busy.status_code == 503
    assert "system is busy" in busy.json()["error"]["message"]
    assert int(busy.headers["Retry-After"]) > 0


def test_redis_dying_and_returning(tmp_path):
    """An API already connected to Redis answers 503 fast when it dies, and recovers by itself."""
    server = RedisServer(tmp_path / "redis").start()
    api = ApiServer(Settings(redis_url=server.url, api_keys=TEST_KEY, output_dir=str(tmp_path / "out"))).start()
    try:
        client = Client(api.url)
        assert client.post("/generate", {"prompt": "before"}).status_code == 202
        server.stop()
        started = time.monotonic()
        answer = client.post("/generate", {"prompt": "while down"})
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "queue_unavailable"
        assert time.monotonic() - started < 1.0
        assert client.get("/health").status_code == 503
        server.start()
        assert client.post("/generate", {"prompt": "after"}).status_code == 202
        # With AOF on, the job queued before the restart is still there.
        assert server.client().scard("jobs:active") == 2
    finally:
        api.stop()
        server.stop()


def test_redis_down_gives_503_fast(make_api, tmp_path):
    down = Client(make_api(redis_url=f"redis://127.0.0.1:{free_port()}/0").url)
    started = time.monotonic()
    answer = down.post("/generate", {"prompt": "x"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert time.monotonic() - started < 1.0
    assert answer.json()["error"]["code"] == "queue_unavailable"


def test_random_diffusion_over_http(client):
    body = {
        "prompt_list": ["cat dancing in rain", "owl", "ship"],
        "n_samples": 2,
        "n_iter": 2,
        "seed": 11,
        "skip_grid": False,
        **SMALL,
    }
    job = client.wait(client.post("/generate", body).json()["task_id"])
    assert job["state"] == "succeeded", job
    images = [image for image in job["images"] if not image.get("grid")]
    assert [image["seed"] for image in images] == [11, 12, 13, 14]
    assert all(image["prompt"] in body["prompt_list"] and image["model"] == "tiny" for image in images)
    assert any(image.get("grid") for image in job["images"])
    recent = [entry for entry in client.get("/recent", params={"limit": 5}).json()["images"] if not entry.get("grid")]
    assert recent[0]["task_id"] == job["task_id"] and recent[0]["prompt"] in body["prompt_list"]


def test_controls_over_http(client):
    body = {
        "prompt": "a ((red)) [dragon] " + "very " * 90,
        "scale": 0,
        "clip_skip": 1,
        "sampler": "k_dpmpp_sde_ka",
        "format": "webp",
        "quality": 80,
        **SMALL,
    }
    accepted = client.post("/generate", body)
    assert any("k_dpmpp_sde_ka" in w for w in accepted.json()["warnings"])
    job = client.wait(accepted.json()["task_id"])
    assert job["state"] == "succeeded", job
    assert job["images"][0]["format"] == "webp"
    samplers = client.get("/samplers").json()["samplers"]
    assert {"ddim", "k_dpmpp_2m_ka", "DPMSolverMultistepScheduler"} <= {entry["key"] for entry in samplers}


def test_cancel_a_queued_job_it_never_runs(make_api, redis_server):
    client = Client(make_api().url)
    task_id = client.post("/generate", {"prompt": "never", "model": "sd14"}).json()["task_id"]  # not served here
    answer = client.session.delete(client.base + f"/tasks/{task_id}", timeout=10)
    assert answer.status_code == 200 and answer.json()["state"] == "canceled"
    assert client.status(task_id)["state"] == "canceled"
    assert task_id not in redis_server.client().smembers("jobs:active")
    again = client.session.delete(client.base + f"/tasks/{task_id}", timeout=10)
    assert again.status_code == 200  # canceling twice is fine


def test_cancel_a_running_job_spares_its_batch_mates(client):
    long = {"width": 128, "height": 128, "steps": 60}
    victim = client.post("/generate", {"prompt": "victim", "seed": 1, **long}).json()["task_id"]
    survivor = client.post("/generate", {"prompt": "survivor", "seed": 2, **long}).json()["task_id"]
    deadline = time.time() + 60
    while client.status(victim)["progress"]["step"] < 3 and time.time() < deadline:
        time.sleep(0.05)
    answer = client.session.delete(client.base + f"/tasks/{victim}", timeout=10)
    assert answer.status_code == 202 and answer.json()["cancel_requested"] is True
    job = client.wait(victim)
    assert job["state"] == "canceled" and job["images"] == []
    assert job["progress"]["step"] < 60  # it stopped at its next step
    assert client.wait(survivor)["state"] == "succeeded"
    finished = client.session.delete(client.base + f"/tasks/{survivor}", timeout=10)
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "not_cancelable"


def test_cancel_someone_elses_job_is_404(api, client):
    task_id = client.post("/generate", {"prompt": "mine", "model": "sd14"}).json()["task_id"]
    other = Client(api.url, key=OTHER_KEY)
    assert other.session.delete(other.base + f"/tasks/{task_id}", timeout=10).status_code == 404
    client.session.delete(client.base + f"/tasks/{task_id}", timeout=10)
