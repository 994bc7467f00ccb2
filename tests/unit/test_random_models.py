"""The full-size random architectures match the real checkpoints' shapes (built on the meta
device: no memory, no time), so benchmarks on them time the real thing."""

from __future__ import annotations

import pytest
import torch

from worker.random_models import build_random_pipeline


def millions(module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 2)


@pytest.mark.parametrize(
    ("kind", "unet", "text", "cross"),
    [
        # Parameter counts of runwayml/stable-diffusion-v1-5 and stabilityai/sd-turbo.
        ("sd15", 859.52, 123.06, 768),
        ("sd-turbo", 865.91, 340.39, 1024),
    ],
)
def test_random_architectures_match_the_real_ones(tmp_path, kind, unet, text, cross):
    pipe = build_random_pipeline(kind, tmp_path, device="meta")
    assert millions(pipe.unet) == unet
    assert millions(pipe.text_encoder) == text
    assert millions(pipe.vae) == 83.65
    assert pipe.unet.config.cross_attention_dim == cross
    assert pipe.unet.device.type == "meta"


def test_random_sources_are_in_the_catalog(catalog):
    assert catalog.resolve("sd15-random").source == "random:sd15"
    assert catalog.resolve("sd-turbo-random").default("steps") == 1


def test_unknown_random_architecture_is_unavailable(worker_settings):
    from shared.catalog import ModelSpec
    from worker.errors import ModelUnavailable
    from worker.loading import load_model

    with pytest.raises(ModelUnavailable, match="unknown random architecture"):
        load_model(ModelSpec("x", "random:sd99"), worker_settings, "cpu", torch.float32)
