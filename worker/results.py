"""Write a job's images, then its metadata, to storage; keyed by job id so a rerun overwrites."""

from __future__ import annotations

import json
import math
import time

from PIL import Image

from shared.images import CONTENT_TYPES, EXTENSIONS, encode_image
from shared.samplers import sampler_spec
from shared.storage import INPUT_KEYS, image_key, job_folder, metadata_key


def parameters_text(params: dict, seed: int, model: str) -> str:
    """Generation parameters in AUTOMATIC1111's text format, readable by its PNG Info tab."""
    details = [
        f"Steps: {params['steps']}",
        f"Sampler: {sampler_spec(params['sampler']).label}",
        f"CFG scale: {params['guidance_scale']}",
        f"Seed: {seed}",
        f"Size: {params['width']}x{params['height']}",
        f"Model: {model}",
    ]
    if "strength" in params:
        details.append(f"Denoising strength: {params['strength']}")
    if params.get("clip_skip"):
        # AUTOMATIC1111 counts the last layer as 1, so skipping one layer is "Clip skip: 2".
        details.append(f"Clip skip: {params['clip_skip'] + 1}")
    if params.get("loras"):
        details.append("LoRAs: " + ", ".join(f"{lora['name']}:{lora['weight']}" for lora in params["loras"]))
    lines = [params["prompt"]]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    lines.append(", ".join(details))
    return "\n".join(lines)


def make_grid(images: list[Image.Image], per_row: int) -> Image.Image:
    per_row = max(1, min(per_row, len(images)))
    rows = math.ceil(len(images) / per_row)
    width, height = images[0].size
    grid = Image.new("RGB", (per_row * width, rows * height), (0, 0, 0))
    for index, image in enumerate(images):
        grid.paste(image, ((index % per_row) * width, (index // per_row) * height))
    return grid


def store_results(
    storage,
    job_id: str,
    params: dict,
    images: list[tuple[Image.Image, int]],
    plan=None,
    created_at: float | None = None,
    errors: dict[int, list[str]] | None = None,
) -> dict:
    """Store every image, the grid when asked, and the metadata JSON last; return that metadata.

    `plan` gives each image's prompt and model; random diffusion reports them per image.
    """
    folder = job_folder(params.get("user_id"), params.get("thread_id"))
    fmt = params["format"]
    ext = EXTENSIONS[fmt]
    quality = params.get("quality", 92)
    random_choice = bool(params.get("prompt_list") or params.get("model_list"))
    entries = []
    for index, (image, seed) in enumerate(images):
        prompt = plan[index].prompt if plan else params["prompt"]
        model = plan[index].model if plan else params["model"]
        key = image_key(folder, job_id, index, ext)
        data = encode_image(image, fmt, parameters_text({**params, "prompt": prompt}, seed, model), quality)
        storage.put(key, data, CONTENT_TYPES[fmt])
        entry = {"key": key, "seed": seed, "width": image.width, "height": image.height, "format": ext}
        entry["errors"] = (errors or {}).get(index, [])
        if random_choice:
            entry.update(prompt=prompt, model=model)
        entries.append(entry)
    if not params.get("skip_grid", True) and len(images) > 1:
        grid = make_grid([image for image, _ in images], params.get("n_rows") or params["n_samples"])
        key = image_key(folder, job_id, "grid", ext)
        grid_text = parameters_text(
            {**params, "prompt": entries[0].get("prompt", params.get("prompt"))}, images[0][1], params["model"]
        )
        storage.put(key, encode_image(grid, fmt, grid_text, quality), CONTENT_TYPES[fmt])
        entries.append(
            {"key": key, "seed": images[0][1], "width": grid.width, "height": grid.height, "format": ext, "grid": True}
        )
    metadata = {
        "job_id": job_id,
        "model": params["model"],
        "created_at": created_at,
        "finished_at": time.time(),
        "params": {k: v for k, v in params.items() if k not in INPUT_KEYS.values()},
        "images": entries,
        "ratings": [],
    }
    storage.put(metadata_key(folder, job_id), json.dumps(metadata, indent=2).encode(), "application/json")
    return metadata
