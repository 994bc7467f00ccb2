"""image_projection: the thread's image embeddings projected to 2-D (PCA), one result per run,
stored for the latest prompt as processed/image_projection/<prompt_id>.json."""

from __future__ import annotations

import numpy as np

from shared.dsl import ThreadData

TASK = "image_projection"


def project(vectors: np.ndarray) -> np.ndarray:
    """PCA to two dimensions; each axis's sign fixed so its largest loading is positive."""
    centered = vectors - vectors.mean(axis=0)
    if len(vectors) < 2 or not np.any(centered):
        return np.zeros((len(vectors), 2))
    _, singular, axes = np.linalg.svd(centered, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    points = centered @ (axes * signs[:, None]).T
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    return points


def align(points: np.ndarray, images: list[str], previous: dict | None) -> np.ndarray:
    """Flip axes so images shown before stay on the same side of the plot as last time."""
    if not previous:
        return points
    before = {point["image"]: (point["x"], point["y"]) for point in previous.get("points", [])}
    shared = [i for i, name in enumerate(images) if name in before]
    if not shared:
        return points
    old = np.array([before[images[i]] for i in shared])
    for axis in range(2):
        if float(np.dot(old[:, axis], points[shared, axis])) < 0:
            points[:, axis] = -points[:, axis]
    return points


def run(data: ThreadData, query, settings) -> dict:
    from worker.extensions import ExtensionError, write_result

    encodings, previous = [], None
    for item in query.inputs:
        if item.attribute == "preprocess/image_encoding":
            encodings = data.select(item)
        elif item.attribute == f"preprocess/{TASK}":
            found = data.select(item)
            previous = found[-1] if found else None
    if not encodings:
        raise ExtensionError("the thread has no image encodings yet: run the image_encoding extension first")
    # One vector space: if the encoder changed, project what the newest encoder made.
    encoder = encodings[-1]["encoder"]
    encodings = [e for e in encodings if e["encoder"] == encoder]
    names = [e["image"] for e in encodings]
    points = align(project(np.array([e["embedding"] for e in encodings], dtype=np.float64)), names, previous)
    rows = data.rows()
    latest = rows[-1]["prompt_id"] if rows else encodings[-1]["prompt_id"]
    payload = {
        "prompt_id": latest,
        "method": "pca",
        "encoder": encoder,
        "points": [
            {"image": e["image"], "prompt_id": e["prompt_id"], "x": round(float(x), 6), "y": round(float(y), 6)}
            for e, (x, y) in zip(encodings, points, strict=True)
        ],
    }
    key = write_result(data, TASK, latest, payload)
    return {"task": TASK, "prompt_id": latest, "points": len(encodings), "keys": [key]}
