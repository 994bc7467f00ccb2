"""Model sources: pickles refused, missing files reported, local folders loaded offline."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from shared.catalog import ModelSpec
from worker.errors import ModelUnavailable
from worker.loading import load_model
from worker.tiny import ensure_tiny_checkpoint


def load(spec, settings):
    return load_model(spec, settings, "cpu", torch.float32)


@pytest.mark.parametrize("name", ["model.ckpt", "weights.pt", "x.bin", "y.pth"])
def test_pickle_checkpoints_are_refused(tmp_path, worker_settings, name):
    (tmp_path / name).write_bytes(b"not even a pickle")
    with pytest.raises(ModelUnavailable, match="pickle"):
        load(ModelSpec("p", name, base_dir=str(tmp_path)), worker_settings)


def test_missing_safetensors_file(tmp_path, worker_settings):
    with pytest.raises(ModelUnavailable, match="missing"):
        load(ModelSpec("m", "absent.safetensors", base_dir=str(tmp_path)), worker_settings)


def test_corrupt_single_file_is_unavailable(tmp_path, worker_settings):
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    folder = ensure_tiny_checkpoint(worker_settings.model_cache_dir)
    spec = ModelSpec("b", "broken.safetensors", config=str(folder), base_dir=str(tmp_path))
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load(spec, worker_settings)


def test_corrupt_local_folder_is_unavailable(tmp_path, worker_settings):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load(ModelSpec("b", str(folder)), worker_settings)


def test_unknown_sources(worker_settings):
    with pytest.raises(ModelUnavailable, match="built-in"):
        load(ModelSpec("x", "builtin:huge"), worker_settings)
    with pytest.raises(ModelUnavailable, match="not a folder, file or repo id"):
        load(ModelSpec("x", "no such thing"), worker_settings)


def test_hub_repo_offline_is_unavailable(worker_settings):
    offline = dataclasses.replace(worker_settings, hf_offline=True)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load(ModelSpec("sd14", "CompVis/stable-diffusion-v1-4"), offline)


def test_local_diffusers_folder_loads(worker_settings):
    folder = ensure_tiny_checkpoint(worker_settings.model_cache_dir)
    loaded = load(ModelSpec("local", str(folder)), worker_settings)
    assert type(loaded.txt2img).__name__ == "StableDiffusionPipeline"
    assert type(loaded.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert loaded.img2img.unet is loaded.txt2img.unet  # one copy of the weights


def test_img2img_keeps_the_models_dtype(worker_settings):
    folder = ensure_tiny_checkpoint(worker_settings.model_cache_dir)
    loaded = load_model(ModelSpec("half", str(folder)), worker_settings, "cpu", torch.bfloat16)
    assert loaded.txt2img.unet.dtype == torch.bfloat16
    assert loaded.img2img.unet.dtype == torch.bfloat16 and loaded.img2img.vae.dtype == torch.bfloat16
