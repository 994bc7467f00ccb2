"""Generation controls applied in the worker, on the tiny models of each family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from shared.catalog import ModelCatalog
from tests.unit.tiny_job import TINY_JOB
from worker.cache import ModelCache
from worker.generator import Generator, plan_images
from worker.imageops import fit
from worker.tiny import ensure_tiny_checkpoint

BASE = TINY_JOB


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory, worker_settings):
    """A real LoRA file for the tiny SD1 model, made with peft and saved as diffusers does."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = tmp_path_factory.mktemp("lora")
    pipe = StableDiffusionPipeline.from_pretrained(str(ensure_tiny_checkpoint(worker_settings.model_cache_dir)))
    torch.manual_seed(1)
    # init_lora_weights=False: random B matrices, so the adapter really changes the output.
    pipe.unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=state, weight_name="tiny-lora.safetensors")
    return folder / "tiny-lora.safetensors"


@pytest.fixture(scope="module")
def generator(worker_settings, tiny_lora):
    from worker.loading import load_model

    tiny_folder = ensure_tiny_checkpoint(worker_settings.model_cache_dir)
    catalog = ModelCatalog.from_dict(
        {
            "models": {
                "tiny": {"source": "builtin:tiny"},
                "tiny-b": {"source": "builtin:tiny", "aliases": ["b"]},
                "tiny-vae": {"source": "builtin:tiny", "vae": str(tiny_folder / "vae")},
                "tiny-sd2": {"source": "builtin:tiny-sd2", "family": "sd2", "prediction_type": "v_prediction"},
                "tiny-sdxl": {"source": "builtin:tiny-sdxl", "family": "sdxl"},
            },
            "loras": {"tiny-lora": {"source": str(tiny_lora), "family": "sd1"}},
        }
    )
    cache = ModelCache(6, lambda spec: load_model(spec, worker_settings, "cpu", torch.float32, catalog.loras))
    return Generator(catalog, cache)


def run(generator, init=None, **changes):
    return generator.run({**BASE, **changes}, init, lambda step, total: None)


def pixels(result, index=0):
    return np.asarray(result.images[index][0], dtype=np.int16)


def test_guidance_zero_ignores_the_prompt_and_negative_steers_away(generator):
    cat0, dog0 = (
        pixels(run(generator, prompt="cat", guidance_scale=0)),
        pixels(run(generator, prompt="dog", guidance_scale=0)),
    )
    assert np.array_equal(cat0, dog0)  # only the unconditional prediction is used
    cat7, dog7 = pixels(run(generator, prompt="cat")), pixels(run(generator, prompt="dog"))
    assert not np.array_equal(cat7, dog7)
    negative = pixels(run(generator, prompt="cat", guidance_scale=-3))
    assert not np.array_equal(negative, cat0) and not np.array_equal(negative, cat7)


def test_prompt_weights_change_the_image(generator):
    assert not np.array_equal(
        pixels(run(generator, prompt="a dragon")), pixels(run(generator, prompt="a (dragon:1.6)"))
    )


def test_clip_skip_changes_the_image_and_is_checked(generator):
    from worker.errors import InvalidInput

    assert not np.array_equal(pixels(run(generator)), pixels(run(generator, clip_skip=1)))
    with pytest.raises(InvalidInput, match="clip_skip"):
        run(generator, clip_skip=5)  # the tiny text encoder has 2 layers


@pytest.mark.parametrize("model", ["tiny-sd2", "tiny-sdxl"])
def test_other_families_generate_and_are_deterministic(generator, model):
    first, again = run(generator, model=model, n_samples=2), run(generator, model=model, n_samples=2)
    assert [seed for _, seed in first.images] == [5, 6]
    assert np.array_equal(pixels(first, 1), pixels(again, 1))
    loaded = generator.cache._entries[model].value
    assert type(loaded.txt2img).__name__ == (
        "StableDiffusionXLPipeline" if model == "tiny-sdxl" else "StableDiffusionPipeline"
    )
    init = Image.new("RGB", (40, 72), "green")
    assert run(generator, init=init, model=model, strength=0.5, steps=4).images[0][0].size == (64, 64)


def test_v_prediction_comes_from_the_catalog(generator):
    run(generator, model="tiny-sd2")
    assert generator.cache._entries["tiny-sd2"].value.txt2img.scheduler.config.prediction_type == "v_prediction"


def test_vae_override_is_used(generator):
    run(generator, model="tiny-vae")
    model = generator.cache._entries["tiny-vae"].value
    assert model.txt2img.vae is model.img2img.vae
    # The override here holds the same weights, so the image is the same as the plain model's.
    assert np.array_equal(pixels(run(generator, model="tiny-vae")), pixels(run(generator)))


def test_loras_apply_by_weight_and_switch_off(generator):
    plain = pixels(run(generator))
    with_lora = pixels(run(generator, loras=[{"name": "tiny-lora", "weight": 1.0}]))
    zero = pixels(run(generator, loras=[{"name": "tiny-lora", "weight": 0.0}]))
    assert not np.array_equal(plain, with_lora)
    assert np.abs(zero - plain).max() <= 1
    assert np.array_equal(pixels(run(generator)), plain)  # the next job without LoRAs is unaffected


def test_img2img_controls(generator):
    init = Image.new("RGB", (96, 64), (200, 30, 30))
    init.paste(Image.new("RGB", (16, 64), (0, 0, 255)), (0, 0))  # a blue left edge that crop removes
    plain = run(generator, init=init, strength=0.5, steps=4)
    assert not np.array_equal(
        pixels(plain), pixels(run(generator, init=init, strength=0.5, steps=4, noise_multiplier=0.5))
    )
    assert not np.array_equal(
        pixels(plain), pixels(run(generator, init=init, strength=0.5, steps=4, resize_mode="crop"))
    )
    assert run(generator, init=init, strength=0.5, steps=4, upscale=True).images[0][0].size == (64, 64)
    assert run(generator, init=init, strength=0.5, steps=4, post_upscale=True).images[0][0].size == (128, 128)


def test_resize_modes():
    image = Image.new("RGB", (200, 100), "red")
    image.paste(Image.new("RGB", (20, 100), "blue"), (0, 0))
    assert fit(image, 64, 64, "stretch").getpixel((2, 32)) == (0, 0, 255)
    assert fit(image, 64, 64, "crop").getpixel((2, 32)) == (255, 0, 0)  # the blue left edge is cropped away
    filled = fit(image, 64, 64, "fill")
    assert filled.size == (64, 64) and filled.getpixel((2, 32))[2] > 200  # contained, edges filled


def test_random_diffusion_is_seeded_and_reported(generator):
    params = {
        **BASE,
        "prompt": None,
        "prompt_list": ["cat", "dog", "owl"],
        "model_list": ["tiny", "tiny-b"],
        "n_samples": 2,
        "n_iter": 3,
    }
    plan = plan_images(params)
    assert plan == plan_images(params)  # same seed, same choices
    assert {p.prompt for p in plan} <= {"cat", "dog", "owl"} and len({p.model for p in plan}) == 2
    assert [p.seed for p in plan] == [5, 6, 7, 8, 9, 10]
    result = generator.run(params, None, lambda s, t: None)
    assert [p.model for p in result.plan] == [p.model for p in plan] and len(result.images) == 6
    # An image made in a random job equals the same prompt, model and seed made alone.
    third = plan[2]
    alone = run(generator, prompt=third.prompt, model=third.model, seed=third.seed)
    assert np.abs(pixels(result, 2) - pixels(alone)).max() <= 2
