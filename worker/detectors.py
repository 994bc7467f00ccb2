"""Turn an image into a ControlNet conditioning map (seed 004's ctypes).

canny, soft and soft-sobel run here with numpy and scipy; depth and pose need models that the
server configures under `detectors:` in models.yaml (a transformers depth-estimation model, and
OpenPose weights through the controlnet_aux package).
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from worker.errors import InvalidInput, ModelUnavailable

CANNY_LOW, CANNY_HIGH = 100, 200


def _gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64)


def _to_image(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")


def canny(image: Image.Image, low: float = CANNY_LOW, high: float = CANNY_HIGH) -> Image.Image:
    """Canny edges: Gaussian smoothing, Sobel gradients, non-maximum suppression, hysteresis."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(_gray(image), 1.4)
    gx, gy = ndimage.sobel(smooth, axis=1), ndimage.sobel(smooth, axis=0)
    magnitude = np.hypot(gx, gy)
    # Quantise the gradient direction to 0, 45, 90 or 135 degrees and keep local maxima along it.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = (((angle + 22.5) // 45) % 4).astype(int)
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    padded = np.pad(magnitude, 1)
    height, width = magnitude.shape
    keep = np.zeros_like(magnitude, dtype=bool)
    for index, (dy, dx) in offsets.items():
        ahead = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        behind = padded[1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]
        keep |= (sector == index) & (magnitude >= ahead) & (magnitude >= behind)
    thin = np.where(keep, magnitude, 0.0)
    strong, weak = thin >= high, thin >= low
    # Hysteresis: weak edges survive when connected to a strong one.
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    connected = np.zeros(count + 1, dtype=bool)
    connected[np.unique(labels[strong])] = True
    connected[0] = False
    return _to_image(connected[labels] * 255.0)


def soft_sobel(image: Image.Image) -> Image.Image:
    """Soft edges: the Sobel gradient magnitude, scaled to 0-255."""
    from scipy import ndimage

    gray = _gray(image)
    magnitude = np.hypot(ndimage.sobel(gray, axis=1), ndimage.sobel(gray, axis=0))
    peak = magnitude.max()
    return _to_image(magnitude / peak * 255.0 if peak else magnitude)


def soft(image: Image.Image) -> Image.Image:
    """Soft edges over several scales (like HED's): gradient magnitudes at three blurs, combined."""
    from scipy import ndimage

    gray = _gray(image)
    total = np.zeros_like(gray)
    for sigma in (1.0, 2.0, 4.0):
        total += ndimage.gaussian_gradient_magnitude(gray, sigma)
    peak = total.max()
    return _to_image(np.sqrt(total / peak) * 255.0 if peak else total)


class ModelDetectors:
    """depth and pose, loaded once per process from the sources in models.yaml."""

    def __init__(self, sources: dict[str, str], settings):
        self.sources = sources
        self.settings = settings
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def run(self, name: str, image: Image.Image) -> Image.Image:
        if name not in self.sources:
            raise InvalidInput(f"the {name} detector is not configured on this server (models.yaml detectors:)")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name, self.sources[name])
            detector = self._loaded[name]
        if name == "depth":
            return detector(image)["depth"].convert("RGB").resize(image.size)
        return detector(image).convert("RGB").resize(image.size)

    def _load(self, name: str, source: str):
        try:
            if name == "depth":
                from transformers import pipeline

                return pipeline("depth-estimation", model=source)
            from controlnet_aux import OpenposeDetector

            return OpenposeDetector.from_pretrained(source)
        except ImportError as exc:
            raise ModelUnavailable(f"the {name} detector needs a package this worker lacks: {exc.name}") from exc
        except Exception as exc:  # noqa: BLE001 - a bad detector source fails the job, not the worker
            raise ModelUnavailable(f"the {name} detector could not be loaded from '{source}': {exc}") from exc


BUILTIN = {"canny": canny, "soft": soft, "soft-sobel": soft_sobel}


def detect(name: str, image: Image.Image, models: ModelDetectors | None) -> Image.Image:
    if name in BUILTIN:
        return BUILTIN[name](image)
    if models is None:
        raise InvalidInput(f"the {name} detector is not configured on this server")
    return models.run(name, image)
