"""Run one job's generation on a loaded model: n_iter batches of n_samples, one seed per image."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from shared.catalog import ModelCatalog
from shared.jobs import total_steps
from worker.errors import InvalidInput, ModelUnavailable, OutOfMemory
from worker.samplers import make_scheduler


@dataclass
class Generated:
    images: list[tuple[Image.Image, int]]
    total_steps: int
    warnings: list[str] = field(default_factory=list)


def image_seeds(seed: int, count: int, fixed: bool) -> list[int]:
    """Seeds of a job's images: seed, seed+1, ... (or all the same with fixed_code)."""
    return [seed] * count if fixed else [seed + i for i in range(count)]


class Generator:
    def __init__(self, catalog: ModelCatalog, cache):
        self.catalog = catalog
        self.cache = cache

    def run(self, params: dict, init_image: Image.Image | None, on_progress) -> Generated:
        spec = self.catalog.resolve(params["model"])
        if spec is None:
            raise ModelUnavailable(f"model '{params['model']}' is not configured on this worker")
        warnings: list[str] = []
        with self.cache.use(spec.name, spec) as model, model.lock:
            pipe = model.img2img if init_image is not None else model.txt2img
            images, total = self._generate(pipe, model.scheduler_config, spec, params, init_image, on_progress)
        return Generated(images, total, warnings)

    def _generate(self, pipe, scheduler_config, spec, params, init_image, on_progress):
        import torch

        prediction = spec.prediction_type if spec.prediction_type != "epsilon" else None
        # A fresh scheduler per job (schedulers keep state); the model's lock is held meanwhile.
        pipe.scheduler = make_scheduler(params["sampler"], scheduler_config, prediction)
        n_samples, n_iter = params["n_samples"], params["n_iter"]
        seeds = image_seeds(params["seed"], n_samples * n_iter, params.get("fixed_code", False))
        total = total_steps(params)
        per_batch = total // n_iter
        common = {
            "num_inference_steps": params["steps"],
            "guidance_scale": params["guidance_scale"],
            "output_type": "pil",
        }
        if params["sampler"] == "ddim":
            common["eta"] = params.get("ddim_eta", 0.0)
        if init_image is not None:
            common["image"] = init_image.resize((params["width"], params["height"]), Image.LANCZOS)
            common["strength"] = params["strength"]
        else:
            common["width"], common["height"] = params["width"], params["height"]
        results: list[tuple[Image.Image, int]] = []
        for iteration in range(n_iter):
            batch_seeds = seeds[iteration * n_samples : (iteration + 1) * n_samples]
            done = iteration * per_batch

            def step_end(_pipe, step, _timestep, kwargs, done=done):
                on_progress(done + step + 1, total)
                return kwargs

            # CPU generators: the same seed gives the same starting noise on any device.
            generators = [torch.Generator(device="cpu").manual_seed(s) for s in batch_seeds]
            try:
                output = pipe(
                    prompt=[params["prompt"]] * n_samples,
                    negative_prompt=[params.get("negative_prompt") or ""] * n_samples,
                    generator=generators,
                    callback_on_step_end=step_end,
                    **common,
                )
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                raise OutOfMemory(
                    f"the GPU ran out of memory for {n_samples} image(s) of {params['width']}x{params['height']}; "
                    "ask for fewer or smaller images"
                ) from exc
            except ValueError as exc:
                raise InvalidInput(f"the pipeline refused the parameters: {exc}") from exc
            results.extend(zip(output.images, batch_seeds, strict=True))
        return results, total
