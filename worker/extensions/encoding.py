"""image_encoding: one embedding per image, stored as processed/image_encoding/<image>.json."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from shared.dsl import ThreadData

TASK = "image_encoding"
CHUNK = 16
LAYOUT = 8  # the offline encoder's colour layout is an 8x8 grid
BINS = 16  # and a 16-bin histogram per channel


class OfflineEncoder:
    """Deterministic and dependency-free: the image's 8x8 colour layout and per-channel histograms,
    L2-normalised (240 numbers). Similar pictures get nearby vectors; no model is needed."""

    name = "offline-colour-layout-v1"

    def encode(self, images: list[Image.Image]) -> list[list[float]]:
        vectors = []
        for image in images:
            rgb = image.convert("RGB")
            layout = np.asarray(rgb.resize((LAYOUT, LAYOUT), Image.BOX), dtype=np.float64) / 127.5 - 1.0
            pixels = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
            hist = [np.bincount(pixels[:, c] // (256 // BINS), minlength=BINS) / len(pixels) for c in range(3)]
            vector = np.concatenate([layout.reshape(-1), np.concatenate(hist) * 4.0])
            norm = np.linalg.norm(vector)
            vectors.append((vector / norm if norm else vector).round(6).tolist())
        return vectors


class ClipEncoder:
    """A CLIP vision tower with its projection (transformers), from a folder or a Hugging Face id."""

    def __init__(self, source: str, settings):
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        from worker.devices import resolve_device

        self.device = resolve_device(settings.device)
        options = {}
        if not Path(source).expanduser().is_dir():
            options = {"cache_dir": str(Path(settings.model_cache_dir) / "hf"), "local_files_only": settings.hf_offline}
        self.processor = CLIPImageProcessor.from_pretrained(source, **options)
        self.model = CLIPVisionModelWithProjection.from_pretrained(source, **options).to(self.device).eval()
        self.name = f"clip:{source}"
        self._torch = torch

    def encode(self, images: list[Image.Image]) -> list[list[float]]:
        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with self._torch.no_grad():
            embeds = self.model(pixel_values=inputs["pixel_values"].to(self.device)).image_embeds
        embeds = self._torch.nn.functional.normalize(embeds.float(), dim=-1)
        return embeds.cpu().numpy().round(6).tolist()


_encoders: dict[str, object] = {}
_lock = threading.Lock()


def encoder_for(settings):
    """The process's encoder: CLIP when CLIP_VISION_MODEL names one, the offline encoder otherwise."""
    source = settings.clip_vision_model
    with _lock:
        if source not in _encoders:
            _encoders[source] = ClipEncoder(source, settings) if source else OfflineEncoder()
        return _encoders[source]


def run(data: ThreadData, query, settings) -> dict:
    from worker.extensions import ExtensionError, write_result

    item = next(item for item in query.inputs if item.attribute == "log/image")
    images = data.select(item, per_image_task=TASK)
    try:
        encoder = encoder_for(settings)
    except Exception as exc:  # noqa: BLE001 - a missing or broken CLIP model is the operator's to fix
        raise ExtensionError(
            f"the CLIP vision model '{settings.clip_vision_model}' could not be loaded: {exc}"
        ) from exc
    keys = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        pictures = []
        for image in chunk:
            try:
                pictures.append(Image.open(io.BytesIO(data.storage.get(image["key"]))))
            except KeyError:
                raise ExtensionError(
                    f"image {image['filename']} is listed in the log but missing from storage"
                ) from None
        for image, vector in zip(chunk, encoder.encode(pictures), strict=True):
            name = image["filename"].rsplit(".", 1)[0]
            payload = {
                "image": image["filename"],
                "key": image["key"],
                "prompt_id": image["prompt_id"],
                "encoder": encoder.name,
                "dimensions": len(vector),
                "embedding": vector,
            }
            keys.append(write_result(data, TASK, name, payload))
    return {"task": TASK, "encoder": encoder.name, "encoded": len(keys), "keys": keys}
