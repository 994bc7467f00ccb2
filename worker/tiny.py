"""The built-in tiny model: a real SD1-shaped pipeline with random weights, built deterministically.

It makes noise, not pictures. It exists so that the whole platform runs offline, in CI and on a
laptop, through the same save_pretrained / from_pretrained path as any real checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from worker.tokenizer import VOCAB_SIZE, build_clip_tokenizer

BUILD_SEED = 0
# Bump when the architecture below changes, so caches built by older code are not reused.
TINY_VERSION = "1"


def _components():
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(BUILD_SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    # Four blocks give the real 8x downsampling, so latents are width/8 x height/8 as in SD.
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=VOCAB_SIZE,
            max_position_embeddings=77,
            layer_norm_eps=1e-5,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return unet, vae, text_encoder, scheduler


def build_tiny_pipeline(tokenizer_dir: Path):
    """Build the tiny StableDiffusionPipeline in memory (weights from a fixed seed)."""
    from diffusers import StableDiffusionPipeline

    unet, vae, text_encoder, scheduler = _components()
    tokenizer = build_clip_tokenizer(tokenizer_dir)
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def ensure_tiny_checkpoint(cache_dir: str | Path) -> Path:
    """Return the folder of the saved tiny checkpoint, building and saving it on first use.

    Several workers may start at once: each builds into a private temp folder and renames it
    into place; the loser of the race throws its copy away and uses the winner's.
    """
    target = Path(cache_dir) / f"builtin-tiny-v{TINY_VERSION}"
    if (target / "model_index.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        pipe = build_tiny_pipeline(staging / "tokenizer-src")
        pipe.save_pretrained(str(staging / "model"), safe_serialization=True)
        try:
            os.rename(staging / "model", target)
        except OSError:
            if not (target / "model_index.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
