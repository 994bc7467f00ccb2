"""Bad requests over real HTTP: a 4xx JSON error naming the problem, and nothing enqueued."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from PIL import Image

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.integration
HEADERS = {"Authorization": f"Bearer {TEST_KEY}"}


def b64_png(size=(16, 16)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


CASES = [
    # (path, body, expected status, field or code named)
    ("/generate", {}, 400, "prompt"),
    ("/generate", {"prompt": "   "}, 400, "prompt"),
    ("/generate", {"prompt": "x" * 5000}, 400, "prompt"),
    ("/generate", {"prompt": "a\u0000b"}, 400, "prompt"),
    ("/generate", {"prompt": "x", "output_dir": "/tmp"}, 400, "output_dir"),
    ("/generate", {"prompt": "x", "model": "../x.ckpt"}, 400, "model"),
    ("/generate", {"prompt": "x", "model": "nope"}, 400, "model"),
    ("/generate", {"prompt": "x", "W": 513}, 400, "W"),
    ("/generate", {"prompt": "x", "width": 0}, 400, "width"),
    ("/generate", {"prompt": "x", "height": 100000}, 400, "height"),
    ("/generate", {"prompt": "x", "width": 512.5}, 400, "width"),
    ("/generate", {"prompt": "x", "width": "512"}, 400, "width"),
    ("/generate", {"prompt": "x", "width": True}, 400, "width"),
    ("/generate", {"prompt": "x", "ddim_steps": 0}, 400, "ddim_steps"),
    ("/generate", {"prompt": "x", "steps": 10**9}, 400, "steps"),
    ("/generate", {"prompt": "x", "seed": 2**64}, 400, "seed"),
    ("/generate", {"prompt": "x", "seed": -1}, 400, "seed"),
    ("/generate", {"prompt": "x", "seed": "42"}, 400, "seed"),
    ("/generate", {"prompt": "x", "n_samples": 0}, 400, "n_samples"),
    ("/generate", {"prompt": "x", "n_iter": 1000}, 400, "n_iter"),
    ("/generate", {"prompt": "x", "sampler": "magic"}, 400, "sampler"),
    ("/generate", {"prompt": "x", "steps": 20, "ddim_steps": 30}, 400, "ddim_steps"),
    ("/img2img", {"prompt": "x"}, 400, "init_img"),
    ("/img2img", {"prompt": "x", "init_img": "!!!"}, 400, "init_img"),
    ("/img2img", {"prompt": "x", "init_img": "https://example.com/a.png"}, 400, "init_img"),
    ("/img2img", {"prompt": "x", "init_img": "data:text/plain;base64,aGVsbG8="}, 400, "init_img"),
    ("/img2img", {"prompt": "x", "init_img": b64_png(), "strength": 1.5}, 400, "strength"),
    ("/img2img", {"prompt": "x", "init_img": b64_png(), "denoising_strength": 0}, 400, "denoising_strength"),
    ("/img2img", {"prompt": "x", "init_img": b64_png(), "strength": 0.01, "steps": 10}, 400, "strength"),
]


def queue_state(redis_server) -> tuple[int, int]:
    client = redis_server.client()
    return client.scard("jobs:active"), sum(client.llen(k) for k in client.scan_iter("model.*"))


@pytest.mark.parametrize(
    ("path", "body", "status", "named"), CASES, ids=[f"{c[0]}:{c[3]}:{i}" for i, c in enumerate(CASES)]
)
def test_bad_field_is_named_and_nothing_enqueued(api, redis_server, path, body, status, named):
    before = queue_state(redis_server)
    answer = requests.post(api.url + path, json=body, headers=HEADERS, timeout=10)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert named in error["fields"], error
    assert queue_state(redis_server) == before


RAW_CASES = [
    ("malformed JSON", b'{"prompt": ', "application/json", 400, "invalid_json"),
    ("wrong content type", b"prompt=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("JSON array", b'["x"]', "application/json", 400, "invalid_request"),
    ("JSON string", b'"x"', "application/json", 400, "invalid_request"),
    ("JSON null", b"null", "application/json", 400, "invalid_request"),
    ("NaN", b'{"prompt": "x", "scale": NaN}', "application/json", 400, "invalid_json"),
    ("Infinity", b'{"prompt": "x", "scale": Infinity}', "application/json", 400, "invalid_json"),
    ("deep nesting", b"[" * 100000 + b"]" * 100000, "application/json", 400, "invalid_json"),
    ("lone surrogate", b'{"prompt": "\\ud800"}', "application/json", 400, "invalid_request"),
]


@pytest.mark.parametrize(("label", "raw", "ctype", "status", "code"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_bad_body(api, redis_server, label, raw, ctype, status, code):
    before = queue_state(redis_server)
    answer = requests.post(api.url + "/generate", data=raw, headers={**HEADERS, "Content-Type": ctype}, timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert queue_state(redis_server) == before


def test_body_over_the_limit_is_413(make_api):
    small = make_api(max_content_length=1024)
    body = json.dumps({"prompt": "x" * 4096})
    answer = requests.post(
        small.url + "/generate", data=body, headers={**HEADERS, "Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("path", ["/status/../../etc/passwd", "/status/" + "a" * 10000, "/status/not-a-uuid"])
def test_bad_task_ids_are_404(api, path):
    answer = requests.get(api.url + path, headers=HEADERS, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("limit", ["-1", "abc", "0", "1000000000", "1.5"])
def test_bad_recent_limit(api, limit):
    answer = requests.get(api.url + "/recent", params={"limit": limit}, headers=HEADERS, timeout=10)
    assert answer.status_code == 400
    assert "limit" in answer.json()["error"]["fields"]


def test_image_paths_cannot_escape_storage(api):
    for path in ("/images/../../etc/passwd", "/images/cache/data/x.py", "/images/cache/inputs/abc.png"):
        assert requests.get(api.url + path, headers=HEADERS, timeout=10).status_code == 404
