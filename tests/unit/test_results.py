"""Stored results: images first, metadata last, parameters readable as AUTOMATIC1111 writes them."""

from __future__ import annotations

import io
import json

from PIL import Image

from shared.images import read_parameters
from shared.storage import LocalStorage
from worker.results import parameters_text, store_results

JOB = "0b7f3c1e-8d2a-4f4e-9a51-6f0d7b2c9e11"
PARAMS = {
    "model": "tiny",
    "prompt": "a cat",
    "negative_prompt": "dog",
    "steps": 20,
    "guidance_scale": 7.5,
    "width": 8,
    "height": 8,
    "seed": 42,
    "sampler": "k_euler_a",
    "format": "png",
    "n_samples": 2,
    "n_iter": 1,
    "skip_grid": True,
    "n_rows": 0,
}


def images(n=2):
    return [(Image.new("RGB", (8, 8), (i * 40, 0, 0)), 42 + i) for i in range(n)]


def test_parameters_text_is_a1111_format():
    text = parameters_text(PARAMS, 43, "tiny")
    assert text == (
        "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 43, Size: 8x8, Model: tiny"
    )


def test_png_jpg_webp_carry_parameters(tmp_path):
    storage = LocalStorage(tmp_path)
    for fmt, ext in (("png", "png"), ("jpg", "jpg"), ("jpeg", "jpg"), ("webp", "webp")):
        entries = store_results(storage, JOB, {**PARAMS, "format": fmt}, images(1))["images"]
        data = storage.get(entries[0]["key"])
        assert entries[0]["key"].endswith(f"{JOB}-0.{ext}")
        assert "Seed: 42" in read_parameters(data)


def test_layout_metadata_and_grid(tmp_path):
    storage = LocalStorage(tmp_path)
    params = {**PARAMS, "skip_grid": False, "user_id": "u1", "thread_id": "t1"}
    entries = store_results(storage, JOB, params, images(2))["images"]
    assert [e["key"] for e in entries] == [
        f"u1/t1/data/{JOB}-0.png",
        f"u1/t1/data/{JOB}-1.png",
        f"u1/t1/data/{JOB}-grid.png",
    ]
    assert [e["seed"] for e in entries[:2]] == [42, 43]
    grid = Image.open(io.BytesIO(storage.get(entries[2]["key"])))
    assert grid.size == (16, 8)  # n_rows 0: n_samples images per row
    metadata = json.loads(storage.get(f"u1/t1/data/{JOB}.json"))
    assert metadata["params"]["prompt"] == "a cat" and len(metadata["images"]) == 3


def test_rerun_overwrites_instead_of_duplicating(tmp_path):
    storage = LocalStorage(tmp_path)
    store_results(storage, JOB, PARAMS, images(2))
    store_results(storage, JOB, PARAMS, images(2))
    assert len(list((tmp_path / "cache" / "data").iterdir())) == 3  # two images and one metadata file


def test_random_diffusion_images_say_which_prompt_and_model(tmp_path):
    from worker.generator import PlannedImage

    storage = LocalStorage(tmp_path)
    plan = [PlannedImage(0, 42, "cat", "tiny"), PlannedImage(1, 43, "dog", "tiny-b")]
    params = {**PARAMS, "prompt": None, "prompt_list": ["cat", "dog"], "model_list": ["tiny", "tiny-b"]}
    entries = store_results(storage, JOB, params, images(2), plan)["images"]
    assert [(e["prompt"], e["model"]) for e in entries] == [("cat", "tiny"), ("dog", "tiny-b")]
    text = read_parameters(storage.get(entries[1]["key"]))
    assert text.startswith("dog\n") and "Model: tiny-b" in text and "Seed: 43" in text


def test_clip_skip_and_loras_in_parameters():
    text = parameters_text({**PARAMS, "clip_skip": 1, "loras": [{"name": "style", "weight": 0.8}]}, 1, "tiny")
    assert "Clip skip: 2" in text and "LoRAs: style:0.8" in text


def test_jpeg_quality_is_applied(tmp_path):
    storage = LocalStorage(tmp_path)
    noisy = [(Image.effect_noise((64, 64), 80).convert("RGB"), 1)]
    low = store_results(storage, JOB, {**PARAMS, "format": "jpg", "quality": 10}, noisy)["images"]
    low_size = len(storage.get(low[0]["key"]))
    high = store_results(storage, JOB, {**PARAMS, "format": "jpg", "quality": 95}, noisy)["images"]
    assert len(storage.get(high[0]["key"])) > 2 * low_size
