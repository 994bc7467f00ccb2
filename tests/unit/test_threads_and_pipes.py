"""Unit checks of seed 000's logs and DSL and seed 004's image operations (no servers).

The log writers use a process-local lock here instead of Redis: the integration tests run the
same code with Redis locks across worker processes."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image, ImageDraw

from shared.dsl import DslError, parse_fetch, parse_preprocess
from shared.storage import LocalStorage, StorageError
from shared.threadlog import LOG_COLUMNS, ThreadLogs
from worker.detectors import canny, soft, soft_sobel
from worker.extensions.encoding import OfflineEncoder
from worker.extensions.projection import align, project
from worker.generator import image_errors
from worker.imageops import compose, mask_from_painted


def local_locks():
    locks = defaultdict(threading.Lock)
    guard = threading.Lock()

    def lock(name):
        with guard:
            return locks[name]

    return lock


def metadata(job_id: str, created: float) -> dict:
    params = {"prompt": f"p {job_id}", "width": 64, "height": 64, "steps": 2, "n_samples": 1, "model": "tiny"}
    return {
        "job_id": job_id,
        "model": "tiny",
        "created_at": created,
        "finished_at": created + 1,
        "params": params,
        "images": [{"key": f"u/t/data/{job_id}-0.png"}],
        "ratings": [],
    }


def test_concurrent_writers_lose_no_row_and_missing_rows_heal(tmp_path):
    storage = LocalStorage(tmp_path)
    logs = ThreadLogs(storage, local_locks())
    jobs = [metadata(f"job{i:02d}", 1_700_000_000 + i) for i in range(24)]
    for job in jobs:
        storage.put(f"u/t/data/{job['job_id']}.json", json.dumps(job).encode())
    threads = [threading.Thread(target=logs.record, args=("u", "t", job)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = list(csv.DictReader(io.StringIO(storage.get("u/t/log.csv").decode())))
    assert [row["prompt_id"] for row in rows] == [job["job_id"] for job in jobs]
    assert tuple(rows[0]) == LOG_COLUMNS
    # A job whose worker died after writing its JSON shows up with the next write.
    late = metadata("job99", 1_700_000_100)
    storage.put("u/t/data/job99.json", json.dumps(late).encode())
    storage.put("u/t/log.csv", storage.get("u/t/log.csv"))
    logs.record("u", "t")
    assert storage.get("u/t/log.csv").decode().count("\n") == 26  # header + 25 rows
    (thread,) = csv.DictReader(io.StringIO(storage.get("u/log.csv").decode()))
    assert thread["thread_id"] == "t" and thread["prompt_count"] == "25"


def test_storage_lists_only_safe_keys(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("u/t/data/a.json", b"{}")
    (tmp_path / "u" / "t" / "data" / "evil name.json").write_text("{}")
    assert storage.list("u/t/data") == ["u/t/data/a.json"]
    assert storage.list("u/none") == []
    with pytest.raises(StorageError):
        storage.list("../etc")


def test_dsl_names_every_bad_part():
    with pytest.raises(DslError) as caught:
        parse_fetch({"dsl": {"data": {"user_id": "cache"}, "input": [{"attribute": "x"}], "output": "csv"}})
    assert set(caught.value.fields) == {"data.user_id", "input[0].attribute", "output"}
    query = parse_preprocess({"task": "image_projection", "data": {"user_id": 0, "thread_id": 0}})
    assert (query.user_id, query.thread_id, query.output) == ("0", "0", "latest-log/prompt")
    assert [item.attribute for item in query.inputs] == ["preprocess/image_encoding", "preprocess/image_projection"]
    with pytest.raises(DslError) as caught:
        parse_preprocess(
            {"task": "image_encoding", "data": {"user_id": "u", "thread_id": "t"}, "input": [{"attribute": "log/log"}]}
        )
    assert "image_encoding" in caught.value.fields["input"] and "log/image" in caught.value.fields["input"]


def square(fill=(0, 0, 0)) -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle([16, 16, 47, 47], fill=fill)
    return image


def test_detectors_find_the_square_edges_and_nothing_on_a_flat_image():
    for detector in (canny, soft, soft_sobel):
        edges = np.asarray(detector(square()).convert("L"))
        assert edges[16, 30] > 100 and edges[32, 32] < 20 and edges[2, 2] < 20, detector.__name__
        assert np.asarray(detector(Image.new("RGB", (32, 32), "gray"))).max() == 0
    thin = np.asarray(canny(square()).convert("L")) > 0
    assert 100 < thin.sum() < 300  # one- or two-pixel lines around a 32x32 square, not filled bands


def test_mask_from_painted_and_compose():
    original = Image.new("RGB", (64, 64), (100, 100, 100))
    painted = square(fill=(255, 0, 0))
    painted.paste(original.crop((0, 0, 64, 16)), (0, 0))
    mask = np.asarray(mask_from_painted(original, painted))
    assert mask[32, 32] == 255 and mask[5, 5] == 0
    generated = Image.new("RGB", (64, 64), (0, 0, 255))
    out = np.asarray(compose(original, generated, Image.fromarray(mask)))
    assert tuple(out[32, 32]) == (0, 0, 255) and tuple(out[5, 5]) == (100, 100, 100)


def test_flat_images_are_reported_per_image():
    assert image_errors(Image.new("RGB", (8, 8), "black"))
    assert image_errors(square()) == []


def test_offline_encoder_and_projection():
    encoder = OfflineEncoder()
    red, red2, blue = encoder.encode([square((255, 0, 0)), square((250, 5, 0)), square((0, 0, 255))])
    assert len(red) == 240 and abs(np.linalg.norm(red) - 1) < 1e-5
    assert np.dot(red, red2) > np.dot(red, blue)
    points = project(np.array([red, red2, blue]))
    assert points.shape == (3, 2)
    assert np.linalg.norm(points[0] - points[1]) < np.linalg.norm(points[0] - points[2])
    previous = {"points": [{"image": "a", "x": -points[0, 0], "y": points[0, 1]}]}
    flipped = align(points.copy(), ["a", "b", "c"], previous)
    assert flipped[0, 0] == -points[0, 0]


def test_clip_vision_encoder_from_a_local_folder(tmp_path):
    """CLIP_VISION_MODEL: a (tiny, random) CLIP vision tower saved like any checkpoint."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from shared.settings import Settings
    from worker.extensions.encoding import ClipEncoder

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    started = time.perf_counter()
    encoder = ClipEncoder(str(tmp_path), Settings(device="cpu", model_cache_dir=str(tmp_path / "cache")))
    vectors = encoder.encode([square((255, 0, 0)), square((0, 0, 255))])
    assert len(vectors) == 2 and len(vectors[0]) == 16 and encoder.name == f"clip:{tmp_path}"
    assert abs(np.linalg.norm(vectors[0]) - 1) < 1e-4 and vectors[0] != vectors[1]
    assert time.perf_counter() - started < 30
