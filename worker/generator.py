"""Run one job: plan each image (seed, prompt, model), then generate batch by batch on loaded models."""

from __future__ import annotations

import random
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from itertools import groupby

from PIL import Image

from shared.catalog import ModelCatalog
from worker.detectors import detect
from worker.encoding import PromptEncoder
from worker.engine import Engine, WorkItem
from worker.errors import InvalidInput, JobTimeout, ModelUnavailable, OutOfMemory
from worker.imageops import compose, fit, mask_from_painted, prepare_mask, upscale, upscale_and_back
from worker.samplers import make_scheduler


@dataclass
class PlannedImage:
    index: int
    seed: int
    prompt: str
    model: str


@dataclass
class Generated:
    images: list[tuple[Image.Image, int]]
    total_steps: int
    warnings: list[str] = field(default_factory=list)
    # Per image: the prompt and model that made it (random diffusion reports them).
    plan: list[PlannedImage] = field(default_factory=list)
    # Seconds the device spent on pipeline calls holding this job's images.
    device_s: float = 0.0
    # Per image index: what went wrong with that image (seed 002's per-image errors).
    errors: dict[int, list[str]] = field(default_factory=dict)


def image_errors(image: Image.Image) -> list[str]:
    """Problems a person should know about one finished image."""
    low, high = image.convert("L").getextrema()
    if low == high:
        return [
            "the image came out as a single flat colour (NaN or overflow in half precision does this); "
            "try another seed, fewer steps or a float32 worker"
        ]
    return []


@dataclass
class Conditioning:
    """What seed 004's pipes add to a job: the input used for generation, the inpainting masks
    (one blurred for generation, one sharp for composing) and the ControlNet map."""

    init: Image.Image | None = None
    original: Image.Image | None = None
    mask: Image.Image | None = None
    sharp_mask: Image.Image | None = None
    control: Image.Image | None = None


def image_seeds(seed: int, count: int, fixed: bool) -> list[int]:
    """Seeds of a job's images: seed, seed+1, ... (or all the same with fixed_code)."""
    return [seed] * count if fixed else [seed + i for i in range(count)]


def plan_images(params: dict) -> list[PlannedImage]:
    """Which seed, prompt and model each image uses; random choices come from the job's seed."""
    count = params["n_samples"] * params["n_iter"]
    seeds = image_seeds(params["seed"], count, params.get("fixed_code", False))
    prompts = params.get("prompt_list") or [params["prompt"]]
    models = params.get("model_list") or [params["model"]]
    chooser = random.Random(params["seed"])
    plan = []
    for index in range(count):
        prompt = prompts[0] if len(prompts) == 1 else chooser.choice(prompts)
        model = models[0] if len(models) == 1 else chooser.choice(models)
        plan.append(PlannedImage(index, seeds[index], prompt, model))
    return plan


def batches(plan: list[PlannedImage], size: int) -> list[list[PlannedImage]]:
    """Images of one model together (in order), at most `size` per pipeline call."""
    out = []
    for _, group in groupby(sorted(plan, key=lambda p: (p.model, p.index)), key=lambda p: p.model):
        group = list(group)
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


def steps_per_batch(params: dict) -> int:
    if "strength" in params:
        return min(int(params["steps"] * params["strength"]), params["steps"])
    return params["steps"]


def _step_callback(items: list[WorkItem]):
    """diffusers' step-end hook: progress for each job, and cancels.

    A canceled job stops reporting at its next step; the call goes on for the others (their
    images must not change) and is interrupted only when every job in it is canceled.
    """

    def step_end(pipe, step, _timestep, kwargs):
        for item in items:
            if not item.canceled:
                item.on_step(step + 1)  # also learns of a cancel request, in the same round trip
            if not item.canceled and item.is_canceled():
                item.canceled = True
        if all(item.canceled for item in items):
            pipe._interrupt = True
        return kwargs

    return step_end


class Generator:
    """Plans jobs and runs their batches on the device engine."""

    def __init__(
        self,
        catalog: ModelCatalog,
        cache,
        max_batch: int = 8,
        window_s: float = 0.02,
        timeout_s: float | None = None,
        detectors=None,
    ):
        # detectors: worker.detectors.ModelDetectors for depth and pose (None: not configured).
        self.detectors = detectors
        self.catalog = catalog
        self.cache = cache
        self.timeout_s = timeout_s
        self.engine = Engine(self.run_batch, max_batch, window_s)

    def run(
        self,
        params: dict,
        init_image: Image.Image | None,
        on_progress,
        job_id: str = "",
        is_canceled=lambda: False,
        extra_images: dict | None = None,
    ) -> Generated:
        """Generate a job's images; its batches may share pipeline calls with other jobs'.

        extra_images holds the job's mask, image_painted and control_image, when given.
        """
        plan = plan_images(params)
        work = batches(plan, params["n_samples"])
        per_batch = steps_per_batch(params)
        total = per_batch * len(work)
        if init_image is not None:
            init_image = fit(init_image, params["width"], params["height"], params.get("resize_mode", "stretch"))
            if params.get("upscale"):
                init_image = upscale_and_back(init_image)
        cond = self.conditioning(params, init_image, extra_images or {})
        specs = [self.catalog.resolve(batch[0].model) for batch in work]
        for batch, spec in zip(work, specs, strict=True):
            if spec is None:
                raise ModelUnavailable(f"model '{batch[0].model}' is not configured on this worker")
        done = [0] * len(work)

        def reporter(number):
            def on_step(step):
                done[number] = step
                on_progress(sum(done), total)

            return on_step

        items = [
            WorkItem(
                job_id=job_id,
                model=spec.name,
                params=params,
                prompts=[p.prompt for p in batch],
                seeds=[p.seed for p in batch],
                init_image=cond.init,
                mask_image=cond.mask,
                control_image=cond.control,
                on_step=reporter(number),
                is_canceled=is_canceled,
            )
            for number, (batch, spec) in enumerate(zip(work, specs, strict=True))
        ]
        for item in items:
            self.engine.submit(item)
        results: dict[int, tuple[Image.Image, int]] = {}
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        for batch, item in zip(work, items, strict=True):
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                images = item.future.result(timeout=timeout)
            except FutureTimeout:
                for pending in items:
                    pending.canceled = True  # the engine drops them at their next step
                raise JobTimeout("the job ran past the worker's time limit; ask for fewer steps or images") from None
            for planned, image in zip(batch, images, strict=True):
                if cond.sharp_mask is not None:
                    image = compose(cond.original, image, cond.sharp_mask, params.get("blur_compose", 0))
                if params.get("post_upscale"):
                    image = upscale(image)
                results[planned.index] = (image, planned.seed)
        device_s = sum(item.device_s for item in items)
        errors = {i: found for i in range(len(plan)) if (found := image_errors(results[i][0]))}
        return Generated([results[i] for i in range(len(plan))], total, [], plan, device_s, errors)

    def conditioning(self, params: dict, init_image: Image.Image | None, extra: dict) -> Conditioning:
        """The mask (given, or computed from image_painted) and the ControlNet map of a job."""
        width, height = params["width"], params["height"]
        cond = Conditioning(init=init_image, original=init_image)
        sharp = None
        if extra.get("mask") is not None:
            sharp = prepare_mask(extra["mask"], width, height)
        elif extra.get("image_painted") is not None and init_image is not None:
            painted = fit(extra["image_painted"], width, height, params.get("resize_mode", "stretch"))
            sharp = mask_from_painted(init_image, painted)
            if sharp.getextrema()[1] == 0:
                raise InvalidInput("image_painted is identical to init_img: paint over the parts to redraw")
            # The painted colours guide what is drawn there (seed 004: "the colour of the mask affects the result").
            cond.init = painted
        if sharp is not None and init_image is not None:
            cond.sharp_mask = sharp
            cond.mask = prepare_mask(sharp, width, height, params.get("blur", 0))
        name = params.get("controlnet")
        if name:
            spec = self.catalog.controlnets.get(name)
            if spec is None:
                raise ModelUnavailable(f"ControlNet '{name}' is not configured on this worker")
            source = extra.get("control_image")
            detector = params.get("control_detector") or ("none" if source is not None else spec.detector)
            source = source if source is not None else init_image
            if detector != "none":
                source = detect(detector, source, self.detectors)
            cond.control = fit(source.convert("RGB"), width, height, "stretch")
        return cond

    def run_batch(self, items: list[WorkItem]) -> list[list[Image.Image]]:
        """On the device thread: one pipeline call for every image of `items`."""
        first = items[0]
        spec = self.catalog.resolve(first.model)
        with self.cache.use(spec.name, spec) as model, model.lock:
            controlnet = self.catalog.controlnets.get(first.params.get("controlnet") or "")
            kind = (
                "inpaint" if first.mask_image is not None else "img2img" if first.init_image is not None else "txt2img"
            )
            if controlnet is not None:
                kind = "controlnet" if kind == "txt2img" else f"controlnet_{kind}"
            pipe = model.pipeline(kind, controlnet)
            images = self._call(model, pipe, spec, items)
        out, start = [], 0
        for item in items:
            out.append(images[start : start + item.size])
            start += item.size
        return out

    def _call(self, model, pipe, spec, items: list[WorkItem]):
        import torch

        params = items[0].params
        prediction = spec.prediction_type if spec.prediction_type != "epsilon" else None
        # A fresh scheduler per call, from the checkpoint's own config; the model's lock is held.
        scheduler = make_scheduler(
            params["sampler"], model.scheduler_config, prediction, params.get("timestep_spacing")
        )
        multiplier = params.get("noise_multiplier", 1.0)
        if items[0].init_image is not None and multiplier != 1.0:
            add_noise = scheduler.add_noise
            # img2img noises the input with add_noise; scaling its noise is A1111's multiplier.
            scheduler.add_noise = lambda original, noise, timesteps: add_noise(original, noise * multiplier, timesteps)
        pipe.scheduler = scheduler
        model.use_loras(params.get("loras") or [])
        self._check_clip_skip(pipe, params.get("clip_skip", 0))
        encoder = PromptEncoder(pipe, params.get("clip_skip", 0))
        prompts = [prompt for item in items for prompt in item.prompts]
        negatives = [item.params.get("negative_prompt") or "" for item in items for _ in item.prompts]
        with torch.no_grad():
            positive, negative = encoder.encode_pair(prompts, negatives)
        call = {
            "prompt_embeds": positive.embeds,
            "negative_prompt_embeds": negative.embeds,
            "num_inference_steps": params["steps"],
            "guidance_scale": params["guidance_scale"],
            "output_type": "pil",
            # CPU generators, one per image: each image is what it would be alone, on any device.
            "generator": [torch.Generator(device="cpu").manual_seed(seed) for item in items for seed in item.seeds],
            "callback_on_step_end": _step_callback(items),
        }
        if positive.pooled is not None:
            call["pooled_prompt_embeds"] = positive.pooled
            call["negative_pooled_prompt_embeds"] = negative.pooled
        if params["sampler"] == "ddim":
            call["eta"] = params.get("ddim_eta", 0.0)

        def per_image(attribute: str) -> list:
            return [getattr(item, attribute) for item in items for _ in item.seeds]

        if items[0].init_image is not None:
            call["image"] = per_image("init_image")
            call["strength"] = params["strength"]
            if items[0].mask_image is not None:
                call["mask_image"] = per_image("mask_image")
                call["width"], call["height"] = params["width"], params["height"]
            if items[0].control_image is not None:
                call["control_image"] = per_image("control_image")
        else:
            call["width"], call["height"] = params["width"], params["height"]
            if items[0].control_image is not None:
                call["image"] = per_image("control_image")
        if items[0].control_image is not None:
            call["controlnet_conditioning_scale"] = params.get("control_scale", 1.0)
        try:
            return pipe(**call).images
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise OutOfMemory(
                f"the GPU ran out of memory for {len(prompts)} image(s) of {params['width']}x{params['height']}; "
                "ask for fewer or smaller images, or lower MAX_BATCH"
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"the pipeline refused the parameters: {exc}") from exc

    @staticmethod
    def _check_clip_skip(pipe, clip_skip: int) -> None:
        layers = pipe.text_encoder.config.num_hidden_layers
        if clip_skip >= layers:
            raise InvalidInput(f"clip_skip {clip_skip} is too large: this model's text encoder has {layers} layers")
