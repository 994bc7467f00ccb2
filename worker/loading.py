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
from worker.tiny import BUILDERS, ensure_tiny_checkpoint

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
    # LoRAs the catalog declares (name -> LoraSpec) and those already loaded as adapters.
    lora_specs: dict = field(default_factory=dict)
    loaded_loras: set = field(default_factory=set)
    # Seed 004's other pipes share these weights: made on first use, kept with the model.
    controlnet_loader: object = None
    controlnets: dict = field(default_factory=dict)
    extra_pipes: dict = field(default_factory=dict)

    def pipeline(self, kind: str, controlnet=None):
        """The pipeline of `kind` (txt2img, img2img, inpaint, controlnet, controlnet_img2img,
        controlnet_inpaint), sharing this model's modules; `controlnet` is a ControlNetSpec."""
        if kind == "txt2img":
            return self.txt2img
        if kind == "img2img":
            return self.img2img
        key = (kind, controlnet.name if controlnet else None)
        if key not in self.extra_pipes:
            extra = {}
            if controlnet is not None:
                if controlnet.name not in self.controlnets:
                    self.controlnets[controlnet.name] = self.controlnet_loader(controlnet)
                extra["controlnet"] = self.controlnets[controlnet.name]
            cls = pipeline_class(self.spec.family, kind)
            pipe = cls.from_pipe(self.txt2img, dtype=self.txt2img.dtype, **extra)
            pipe.set_progress_bar_config(disable=True)
            self.extra_pipes[key] = pipe
        return self.extra_pipes[key]

    def use_loras(self, loras: list[dict]) -> None:
        """Activate exactly these LoRAs (loading each once), or none."""
        names = [lora["name"] for lora in loras]
        for name in names:
            if name not in self.loaded_loras:
                self._load_lora(name)
        if names:
            self.txt2img.enable_lora()
            self.txt2img.set_adapters(names, adapter_weights=[lora["weight"] for lora in loras])
        elif self.loaded_loras:
            self.txt2img.disable_lora()

    def _load_lora(self, name: str) -> None:
        spec = self.lora_specs.get(name)
        if spec is None:
            raise ModelUnavailable(f"LoRA '{name}' is not in this worker's models.yaml")
        path = Path(spec.source).expanduser()
        path = path if path.is_absolute() else Path(spec.base_dir) / path
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelUnavailable(f"LoRA '{name}' is a pickle file; only .safetensors LoRAs are loaded")
        try:
            if path.is_dir():
                self.txt2img.load_lora_weights(str(path), adapter_name=name)
            else:
                self.txt2img.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
        except Exception as exc:  # noqa: BLE001 - a bad LoRA file fails the job, not the worker
            log.exception("loading LoRA %s failed", name)
            raise ModelUnavailable(f"LoRA '{name}' could not be loaded: {str(exc).splitlines()[0][:300]}") from exc
        self.loaded_loras.add(name)


def _true_cfg(pipeline_cls):
    """The pipeline class with classifier-free guidance for every scale but 1.

    diffusers turns guidance off for scales <= 1; the seed-001 API (like AUTOMATIC1111) applies
    uncond + scale x (cond - uncond) as written: 0 ignores the prompt, negative steers away.
    """

    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale != 1 and self.unet.config.time_cond_proj_dim is None

    return type(
        pipeline_cls.__name__,
        (pipeline_cls,),
        {
            "do_classifier_free_guidance": property(do_classifier_free_guidance),
            "__module__": __name__,
        },
    )


_CLASSES: dict[str, tuple] = {}


def _pipeline_classes(family: str):
    import diffusers

    if family not in _CLASSES:
        if family == "sdxl":
            pair = (diffusers.StableDiffusionXLPipeline, diffusers.StableDiffusionXLImg2ImgPipeline)
        else:
            pair = (diffusers.StableDiffusionPipeline, diffusers.StableDiffusionImg2ImgPipeline)
        _CLASSES[family] = tuple(_true_cfg(cls) for cls in pair)
    return _CLASSES[family]


EXTRA_PIPES = {
    "sd": {
        "inpaint": "StableDiffusionInpaintPipeline",
        "controlnet": "StableDiffusionControlNetPipeline",
        "controlnet_img2img": "StableDiffusionControlNetImg2ImgPipeline",
        "controlnet_inpaint": "StableDiffusionControlNetInpaintPipeline",
    },
    "sdxl": {
        "inpaint": "StableDiffusionXLInpaintPipeline",
        "controlnet": "StableDiffusionXLControlNetPipeline",
        "controlnet_img2img": "StableDiffusionXLControlNetImg2ImgPipeline",
        "controlnet_inpaint": "StableDiffusionXLControlNetInpaintPipeline",
    },
}


def pipeline_class(family: str, kind: str):
    """Inpainting works with any checkpoint: with a 4-channel UNet, diffusers blends the kept
    latents back at every step (seed 004's MaskedIm2ImPipe)."""
    import diffusers

    key = (family, kind)
    if key not in _CLASSES:
        name = EXTRA_PIPES["sdxl" if family == "sdxl" else "sd"][kind]
        _CLASSES[key] = _true_cfg(getattr(diffusers, name))
    return _CLASSES[key]


def load_controlnet(spec, settings, device: str, dtype):
    """A ControlNet from models.yaml: built in, a local folder, a .safetensors file or a repo id."""
    from diffusers import ControlNetModel

    from worker.tiny import CONTROLNET_BUILDERS, ensure_tiny_controlnet

    source = spec.source
    try:
        if source.startswith("builtin:"):
            kind = source.removeprefix("builtin:")
            if kind not in CONTROLNET_BUILDERS:
                raise ModelUnavailable(f"ControlNet '{spec.name}': unknown built-in source '{source}'")
            model = ControlNetModel.from_pretrained(
                str(ensure_tiny_controlnet(settings.model_cache_dir, kind)), local_files_only=True
            )
        elif source.lower().endswith(PICKLE_SUFFIXES):
            raise ModelUnavailable(f"ControlNet '{spec.name}' is a pickle file; only .safetensors are loaded")
        else:
            path = _source_path(spec)
            if source.lower().endswith(".safetensors"):
                model = ControlNetModel.from_single_file(str(path))
            elif path.is_dir():
                model = ControlNetModel.from_pretrained(str(path), local_files_only=True)
            elif REPO_ID.match(source):
                model = ControlNetModel.from_pretrained(
                    source,
                    cache_dir=str(Path(settings.model_cache_dir) / "hf"),
                    local_files_only=settings.hf_offline,
                    use_safetensors=True,
                )
            else:
                raise ModelUnavailable(f"ControlNet '{spec.name}': source '{source}' is not a folder, file or repo id")
    except ModelUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad ControlNet fails the job, not the worker
        log.exception("loading ControlNet %s failed", spec.name)
        raise ModelUnavailable(
            f"ControlNet '{spec.name}' could not be loaded: {str(exc).splitlines()[0][:300]}"
        ) from exc
    return model.to(device, dtype)


def _load_vae(spec: ModelSpec, settings, dtype):
    """A model's VAE override: a diffusers folder, repo id, or single .safetensors file."""
    from diffusers import AutoencoderKL

    source = Path(spec.vae).expanduser()
    source = source if source.is_absolute() else Path(spec.base_dir) / source
    if str(source).lower().endswith(".safetensors"):
        return AutoencoderKL.from_single_file(str(source), dtype=dtype)
    if source.is_dir():
        return AutoencoderKL.from_pretrained(str(source), dtype=dtype, local_files_only=True)
    return AutoencoderKL.from_pretrained(
        spec.vae,
        dtype=dtype,
        cache_dir=str(Path(settings.model_cache_dir) / "hf"),
        local_files_only=settings.hf_offline,
    )


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


def _random(spec: ModelSpec, settings, dtype):
    """A full-size architecture with random weights, built where the worker runs it."""
    from worker.devices import resolve_device
    from worker.random_models import ARCHITECTURES, build_random_pipeline

    kind = spec.source.removeprefix("random:")
    if kind not in ARCHITECTURES:
        raise ModelUnavailable(
            f"model '{spec.name}': unknown random architecture '{kind}' (known: {', '.join(ARCHITECTURES)})"
        )
    pipe = build_random_pipeline(
        kind, Path(settings.model_cache_dir) / "random-tokenizer", resolve_device(settings.device), dtype
    )
    # The engine's CFG rule (guidance for every scale but 1) comes with our pipeline class.
    txt2img_cls, _ = _pipeline_classes(spec.family)
    return txt2img_cls(**pipe.components, requires_safety_checker=False)


def _load_txt2img(spec: ModelSpec, settings, dtype):
    txt2img_cls, _ = _pipeline_classes(spec.family)
    common = {"dtype": dtype}
    if spec.family != "sdxl":
        common.update(safety_checker=None, requires_safety_checker=False)
    if spec.vae:
        common["vae"] = _load_vae(spec, settings, dtype)
    source = spec.source
    if source.startswith("random:"):
        return _random(spec, settings, dtype)
    if source.startswith("builtin:"):
        kind = source.removeprefix("builtin:")
        if kind not in BUILDERS:
            raise ModelUnavailable(
                f"model '{spec.name}': unknown built-in source '{source}' (built-ins: {', '.join(BUILDERS)})"
            )
        folder = ensure_tiny_checkpoint(settings.model_cache_dir, kind)
        return txt2img_cls.from_pretrained(str(folder), local_files_only=True, **common)
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


def _speedups(pipe, settings) -> list[str]:
    """Optional: channels-last memory layout and torch.compile for the UNet (slow first call)."""
    import torch

    applied = []
    if settings.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        applied.append("channels_last")
    if settings.torch_compile:
        pipe.unet = torch.compile(pipe.unet, fullgraph=False)
        applied.append("torch_compile")
    return applied


def load_model(spec: ModelSpec, settings, device: str, dtype, lora_specs: dict | None = None) -> LoadedModel:
    """Load `spec` onto `device`; any failure becomes ModelUnavailable with a readable reason."""
    started = time.perf_counter()
    try:
        txt2img = _load_txt2img(spec, settings, dtype)
        memory_options = place_pipeline(txt2img, settings.machine_size, device)
        memory_options += _speedups(txt2img, settings)
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
    return LoadedModel(
        spec,
        txt2img,
        img2img,
        seconds,
        memory_options,
        dict(txt2img.scheduler.config),
        lora_specs=lora_specs or {},
        controlnet_loader=lambda controlnet: load_controlnet(controlnet, settings, device, dtype),
    )
