"""Who may do what: admin keys, per-key rate limits, Idempotency-Key, CORS (all over real HTTP)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import requests

from tests.conftest import OTHER_KEY, TEST_KEY
from tests.integration.conftest import Client

pytestmark = pytest.mark.integration
ADMIN_KEY = "admin-key-5555555555"
SMALL = {"prompt": "access", "width": 64, "height": 64, "steps": 2}


def owner_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def test_an_admin_key_sees_and_cancels_every_owners_jobs(make_api, worker):
    api = make_api(admin_api_keys=ADMIN_KEY)
    owner, other, admin = Client(api.url), Client(api.url, OTHER_KEY), Client(api.url, ADMIN_KEY)
    task_id = owner.post("/generate", SMALL).json()["task_id"]
    job = owner.wait(task_id)
    assert other.get(f"/status/{task_id}").status_code == 404
    assert admin.status(task_id)["task_id"] == task_id
    image_key = job["images"][0]["key"]
    assert other.get(f"/images/{image_key}").status_code == 404
    assert admin.get(f"/images/{image_key}").headers["Content-Type"] == "image/png"
    recent = admin.get("/recent", params={"owner": owner_id(TEST_KEY), "limit": 100}).json()["images"]
    assert task_id in {entry["task_id"] for entry in recent}
    refused = other.get("/recent", params={"owner": owner_id(TEST_KEY)})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert admin.session.delete(f"{api.url}/tasks/{task_id}").status_code == 409  # finished: found, not 404


def test_rate_limits_answer_429_with_retry_after_per_key(make_api):
    api = make_api(rate_limit="", rate_limit_submit="3/minute")
    mine, theirs = Client(api.url), Client(api.url, OTHER_KEY)
    answers = [mine.post("/generate", {**SMALL, "steps": 1}) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    limited = answers[-1]
    assert limited.json()["error"]["code"] == "rate_limited" and "3 per 1 minute" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Retry-After" not in answers[0].headers  # a 202 must not tell clients to wait
    assert theirs.post("/generate", {**SMALL, "steps": 1}).status_code == 202  # another key, its own budget
    assert mine.get("/recent").status_code == 200  # only submissions were limited
    # A body key counts as that key, and health checks are never limited.
    body_key = requests.post(f"{api.url}/generate", json={**SMALL, "api_key": TEST_KEY}, timeout=10)
    assert body_key.status_code == 429
    assert all(requests.get(f"{api.url}/health", timeout=10).status_code == 200 for _ in range(5))


def test_a_global_rate_limit_counts_every_endpoint(make_api):
    api = make_api(rate_limit="4/minute", rate_limit_submit="")
    mine = Client(api.url)
    codes = [
        mine.get("/recent").status_code,
        mine.get("/models").status_code,
        mine.post("/generate", SMALL).status_code,
    ]
    codes += [mine.get("/samplers").status_code, mine.get("/recent").status_code]
    assert codes == [200, 200, 202, 200, 429]


def test_idempotency_key_gives_the_same_task_once(api, redis_server):
    client = Client(api.url)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.post("/generate", SMALL, headers=key)
    again = client.post("/generate", SMALL, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    assert again.json()["replayed"] is True and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["replayed"] is False
    changed = client.post("/generate", {**SMALL, "prompt": "something else"}, headers=key)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "idempotency_key_reused"
    # Keys are per API key: another caller's identical key is its own request.
    assert Client(api.url, OTHER_KEY).post("/generate", SMALL, headers=key).json()["task_id"] != first.json()["task_id"]
    done = client.wait(first.json()["task_id"])
    replay = client.post("/generate", SMALL, headers=key).json()
    assert replay["task_id"] == done["task_id"] and replay["state"] == "succeeded"
    bad = client.post("/generate", SMALL, headers={"Idempotency-Key": "x" * 300})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["error"]["fields"]


def test_a_refused_submission_releases_its_idempotency_key(make_api, api):
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    busy = Client(make_api(max_queue=0).url).post("/generate", SMALL, headers=key)
    assert busy.status_code == 503
    retried = Client(api.url).post("/generate", SMALL, headers=key)
    assert retried.status_code == 202 and retried.json()["replayed"] is False


def test_no_cors_unless_origins_are_configured(api, make_api):
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    for answer in (
        requests.options(f"{api.url}/generate", headers=origin, timeout=10),
        requests.get(f"{api.url}/health", headers=origin, timeout=10),
    ):
        assert not any(name.lower().startswith("access-control-") for name in answer.headers)
    allowed = make_api(cors_origins="https://app.example")
    preflight = requests.options(
        f"{allowed.url}/generate", headers={**origin, "Origin": "https://app.example"}, timeout=10
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    stranger = requests.options(f"{allowed.url}/generate", headers=origin, timeout=10)
    assert "Access-Control-Allow-Origin" not in stranger.headers
