"""Load a model's pipelines from its source: built-in, local folder, single file or Hugging Face."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.catalog import ModelSpec
from worker.errors import ModelUnavailable
from worker.memory import place_pipeline
from worker.tiny import ensure_tiny_checkpoint

log = logging.getLogger(__name__)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A model's text-to-image pipeline and, sharing its weights, its image-to-image pipeline.

    Jobs set their own scheduler on the pipeline before calling it; `lock` makes sure only one
    job at a time does so.
    """

    spec: ModelSpec
    txt2img: object
    img2img: object
    load_seconds: float
    memory_options: list[str] = field(default_factory=list)
    # The checkpoint's own scheduler config: every job's scheduler starts from it, never from
    # the previous job's (which may carry Karras sigmas or an SDE variant).
    scheduler_config: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _pipeline_classes(family: str):
    import diffusers

    if family == "sdxl":
        return diffusers.StableDiffusionXLPipeline, diffusers.StableDiffusionXLImg2ImgPipeline
    return diffusers.StableDiffusionPipeline, diffusers.StableDiffusionImg2ImgPipeline


def _source_path(spec: ModelSpec) -> Path:
    path = Path(spec.source).expanduser()
    return path if path.is_absolute() else Path(spec.base_dir) / path


def _single_file(cls, spec: ModelSpec, settings, common: dict):
    """A one-file checkpoint; its configs come from `config:` or are looked up by diffusers."""
    extra = {}
    if spec.config:
        config = Path(spec.config).expanduser()
        if not config.is_absolute() and (Path(spec.base_dir) / config).is_dir():
            config = Path(spec.base_dir) / config
        extra["config"] = str(config) if config.is_dir() else spec.config
    return cls.from_single_file(str(_source_path(spec)), local_files_only=settings.hf_offline, **extra, **common)


def _load_txt2img(spec: ModelSpec, settings, dtype):
    txt2img_cls, _ = _pipeline_classes(spec.family)
    common = {"dtype": dtype}
    if spec.family != "sdxl":
        common.update(safety_checker=None, requires_safety_checker=False)
    source = spec.source
    if source == "builtin:tiny":
        folder = ensure_tiny_checkpoint(settings.model_cache_dir)
        return txt2img_cls.from_pretrained(str(folder), local_files_only=True, **common)
    if source.startswith("builtin:"):
        raise ModelUnavailable(f"model '{spec.name}': unknown built-in source '{source}'")
    lowered = source.lower()
    if lowered.endswith(PICKLE_SUFFIXES):
        if not settings.allow_pickle_checkpoints:
            raise ModelUnavailable(
                f"model '{spec.name}' is a pickle checkpoint ({Path(source).name}), which can run code when "
                "loaded; convert it to .safetensors or set ALLOW_PICKLE_CHECKPOINTS=true on the worker"
            )
        return _single_file(txt2img_cls, spec, settings, common)
    if lowered.endswith(".safetensors"):
        path = _source_path(spec)
        if not path.is_file():
            raise ModelUnavailable(f"model '{spec.name}': checkpoint file {path.name} is missing on this worker")
        return _single_file(txt2img_cls, spec, settings, common)
    path = _source_path(spec)
    if path.is_dir():
        return txt2img_cls.from_pretrained(str(path), local_files_only=True, **common)
    if REPO_ID.match(source):
        return txt2img_cls.from_pretrained(
            source,
            cache_dir=str(Path(settings.model_cache_dir) / "hf"),
            local_files_only=settings.hf_offline,
            use_safetensors=True,
            **common,
        )
    raise ModelUnavailable(f"model '{spec.name}': source '{source}' is not a folder, file or repo id")


def load_model(spec: ModelSpec, settings, device: str, dtype) -> LoadedModel:
    """Load `spec` onto `device`; any failure becomes ModelUnavailable with a readable reason."""
    started = time.perf_counter()
    try:
        txt2img = _load_txt2img(spec, settings, dtype)
        memory_options = place_pipeline(txt2img, settings.machine_size, device)
        txt2img.set_progress_bar_config(disable=True)
        _, img2img_cls = _pipeline_classes(spec.family)
        # from_pipe casts to float32 unless told otherwise, and the modules are shared: pass the
        # dtype, or an fp16 GPU model would silently become fp32.
        img2img = img2img_cls.from_pipe(txt2img, dtype=dtype)
        img2img.set_progress_bar_config(disable=True)
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure means this model is unavailable
        log.exception("loading model %s failed", spec.name)
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"model '{spec.name}' could not be loaded: {reason}") from exc
    seconds = time.perf_counter() - started
    log.info(
        "loaded model %s on %s in %.2fs (memory options: %s)",
        spec.name,
        device,
        seconds,
        ", ".join(memory_options) or "none",
    )
    return LoadedModel(spec, txt2img, img2img, seconds, memory_options, dict(txt2img.scheduler.config))
