"""Seed 004's pipes over real HTTP on the tiny model: inpainting (mask or painted copy) and ControlNet
(given conditioning image, or derived from the input through a detector)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
COMMON = {"prompt": "a cat", "width": SIZE, "height": SIZE, "steps": 4, "seed": 7, "return_base64": True}


def b64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def gradient() -> Image.Image:
    x = np.linspace(0, 255, SIZE, dtype=np.uint8)
    return Image.fromarray(
        np.stack([np.tile(x, (SIZE, 1)), np.tile(x[:, None], (1, SIZE)), np.full((SIZE, SIZE), 90, np.uint8)], axis=2)
    )


def result(client, path: str, body: dict) -> tuple[dict, np.ndarray]:
    answer = client.post(path, body)
    assert answer.status_code == 202, answer.text
    job = client.wait(answer.json()["task_id"])
    assert job["state"] == "succeeded", job
    image = job["images"][0]
    assert image["errors"] == []
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["base64"]))).convert("RGB"), dtype=np.int16)
    return job, pixels


def test_inpainting_with_a_mask_keeps_what_is_not_masked(client):
    init = gradient()
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle([0, 0, SIZE // 2 - 1, SIZE - 1], fill=255)
    _, pixels = result(client, "/img2img", {**COMMON, "init_img": b64(init), "mask": b64(mask), "strength": 0.9})
    original = np.asarray(init, dtype=np.int16)
    assert np.array_equal(pixels[:, SIZE // 2 :], original[:, SIZE // 2 :])  # kept exactly
    assert np.abs(pixels[:, : SIZE // 2] - original[:, : SIZE // 2]).mean() > 10  # repainted

    # blur_compose softens the seam: pixels just outside the mask now change a little.
    _, soft = result(
        client, "/img2img", {**COMMON, "init_img": b64(init), "mask": b64(mask), "strength": 0.9, "blur_compose": 4}
    )
    assert np.abs(soft[:, SIZE // 2 : SIZE // 2 + 2] - original[:, SIZE // 2 : SIZE // 2 + 2]).max() > 0
    assert np.array_equal(soft[:, -8:], original[:, -8:])


def test_inpainting_from_a_painted_copy(client):
    init = gradient()
    painted = init.copy()
    ImageDraw.Draw(painted).rectangle([40, 40, 60, 60], fill=(255, 0, 0))
    _, pixels = result(
        client, "/img2img", {**COMMON, "init_img": b64(init), "image_painted": b64(painted), "strength": 0.6, "blur": 2}
    )
    original = np.asarray(init, dtype=np.int16)
    outside = np.ones((SIZE, SIZE), dtype=bool)
    outside[40:61, 40:61] = False
    assert np.array_equal(pixels[outside], original[outside])
    assert np.abs(pixels[42:59, 42:59] - original[42:59, 42:59]).mean() > 10

    same = client.post("/img2img", {**COMMON, "init_img": b64(init), "image_painted": b64(init)})
    job = client.wait(same.json()["task_id"])
    assert job["state"] == "failed" and "identical" in job["error"]["message"]


def test_controlnet_with_a_conditioning_image_changes_the_result(client):
    edges = Image.new("RGB", (SIZE, SIZE), "black")
    ImageDraw.Draw(edges).ellipse([10, 10, 54, 54], outline="white", width=3)
    _, plain = result(client, "/generate", COMMON)
    job, steered = result(
        client, "/generate", {**COMMON, "controlnet": "tiny-canny", "control_image": b64(edges), "control_scale": 1.5}
    )
    assert job["params"]["controlnet"] == "tiny-canny"
    assert np.abs(plain - steered).mean() > 1  # same seed and prompt: the ControlNet made the difference
    _, again = result(
        client, "/generate", {**COMMON, "controlnet": "tiny-canny", "control_image": b64(edges), "control_scale": 1.5}
    )
    assert np.array_equal(steered, again)  # and it is deterministic


def test_controlnet_from_the_input_image_through_detectors(client):
    init = gradient()
    ImageDraw.Draw(init).rectangle([16, 16, 48, 48], fill=(0, 0, 0))
    outputs = {}
    for name, detector in (("tiny-canny", None), ("tiny-soft", None), ("tiny-canny", "soft-sobel")):
        body = {**COMMON, "init_img": b64(init), "strength": 0.8, "controlnet": name}
        if detector:
            body["control_detector"] = detector
        _, outputs[(name, detector)] = result(client, "/img2img", body)
    # canny and soft maps differ, so do the images they steer
    assert not np.array_equal(outputs[("tiny-canny", None)], outputs[("tiny-soft", None)])
    # inpainting and ControlNet together
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle([0, 0, 31, 63], fill=255)
    _, both = result(
        client,
        "/img2img",
        {**COMMON, "init_img": b64(init), "mask": b64(mask), "strength": 0.8, "controlnet": "tiny-canny"},
    )
    assert np.array_equal(both[:, 32:], np.asarray(init, dtype=np.int16)[:, 32:])


def test_bad_pipe_requests_name_the_field(client):
    image = b64(gradient())
    cases = [
        ("/img2img", {"init_img": image, "mask": image, "image_painted": image}, "image_painted", "not both"),
        ("/generate", {"controlnet": "tiny-canny"}, "control_image", "required"),
        ("/generate", {"controlnet": "nope", "control_image": image}, "controlnet", "unknown ControlNet"),
        ("/generate", {"controlnet": "sdxl-canny", "control_image": image}, "controlnet", "sdxl"),
        ("/generate", {"control_image": image}, "control_image", "needs controlnet"),
        (
            "/img2img",
            {"init_img": image, "controlnet": "tiny-canny", "control_detector": "depth"},
            "control_detector",
            "not configured",
        ),
        (
            "/img2img",
            {"init_img": image, "controlnet": "sd15-openpose"},
            "controlnet",
            "pose detector is not configured",
        ),
        ("/img2img", {"init_img": image, "mask": "not base64!"}, "mask", ""),
    ]
    for path, fields, field, words in cases:
        answer = client.post(path, {**COMMON, **fields})
        assert answer.status_code == 400, (fields, answer.text)
        error = answer.json()["error"]
        assert field in error["fields"] and words in error["fields"][field], (field, error)
