"""Built-in tiny models: real SD1, SD2 and SDXL pipeline shapes with random weights, built deterministically.

They make noise, not pictures. They exist so that the whole platform runs offline, in CI and on
a laptop, through the same save_pretrained / from_pretrained path as any real checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from worker.tokenizer import VOCAB_SIZE, build_clip_tokenizer

BUILD_SEED = 0
# Bump when an architecture below changes, so caches built by older code are not reused.
TINY_VERSION = "2"


def _text_config(**changes):
    from transformers import CLIPTextConfig

    values = {
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": 77,
        "layer_norm_eps": 1e-5,
    }
    return CLIPTextConfig(**{**values, **changes})


def _vae():
    from diffusers import AutoencoderKL

    # Four blocks give the real 8x downsampling, so latents are width/8 x height/8 as in SD.
    return AutoencoderKL(
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


def _unet(**changes):
    from diffusers import UNet2DConditionModel

    values = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    }
    return UNet2DConditionModel(**{**values, **changes})


SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def build_sd1(tokenizer_dir: Path):
    """SD 1.x shape: one CLIP text encoder, epsilon prediction."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    return StableDiffusionPipeline(
        unet=_unet(),
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config()),
        tokenizer=build_clip_tokenizer(tokenizer_dir),
        scheduler=DDIMScheduler(**SCHEDULER, clip_sample=False, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sd2(tokenizer_dir: Path):
    """SD 2.x-v shape: linear projections, per-block head sizes, v-prediction."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    return StableDiffusionPipeline(
        unet=_unet(use_linear_projection=True, attention_head_dim=(2, 4)),
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(hidden_act="gelu")),
        tokenizer=build_clip_tokenizer(tokenizer_dir),
        scheduler=DDIMScheduler(**SCHEDULER, clip_sample=False, set_alpha_to_one=False, prediction_type="v_prediction"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl(tokenizer_dir: Path):
    """SDXL shape: two text encoders (the second with a projection), size and crop conditioning."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    # The added embedding sees 6 size/crop numbers x 8 plus the second encoder's 32-d projection.
    unet = _unet(
        use_linear_projection=True,
        attention_head_dim=(2, 4),
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
    )
    tokenizer = build_clip_tokenizer(tokenizer_dir)
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(projection_dim=32)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(projection_dim=32)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(**SCHEDULER, timestep_spacing="leading"),
    )


BUILDERS = {"tiny": build_sd1, "tiny-sd2": build_sd2, "tiny-sdxl": build_sdxl}


def build_tiny_pipeline(tokenizer_dir: Path, kind: str = "tiny"):
    """Build a tiny pipeline in memory; weights come from a fixed seed."""
    import torch

    torch.manual_seed(BUILD_SEED)
    return BUILDERS[kind](tokenizer_dir)


def ensure_tiny_checkpoint(cache_dir: str | Path, kind: str = "tiny") -> Path:
    """Return the folder of the saved tiny checkpoint, building and saving it on first use."""
    if kind not in BUILDERS:
        raise KeyError(kind)
    target = Path(cache_dir) / f"builtin-{kind}-v{TINY_VERSION}"
    return _save_once(target, "model_index.json", lambda staging: build_tiny_pipeline(staging / "tokenizer-src", kind))


def _save_once(target: Path, marker: str, build) -> Path:
    """Save build(staging_dir) to `target` unless `target/marker` exists.

    Several workers may build at once: each saves into a private temp folder and renames it into
    place; the loser of the race throws its copy away and uses the winner's.
    """
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging).save_pretrained(str(staging / "model"), safe_serialization=True)
        try:
            os.rename(staging / "model", target)
        except OSError:
            if not (target / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


CONTROLNET_BUILDERS = {"tiny-controlnet": "tiny"}
CONTROLNET_VERSION = "2"


def ensure_tiny_controlnet(cache_dir: str | Path, kind: str = "tiny-controlnet") -> Path:
    """The folder of a tiny ControlNet shaped for a tiny model's UNet (random weights, fixed seed),
    built and saved on first use like the tiny checkpoints."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    if kind not in CONTROLNET_BUILDERS:
        raise KeyError(kind)
    target = Path(cache_dir) / f"builtin-{kind}-v{TINY_VERSION}.{CONTROLNET_VERSION}"
    if (target / "config.json").exists():
        return target
    base = ensure_tiny_checkpoint(cache_dir, CONTROLNET_BUILDERS[kind])

    def build(_staging):
        unet = UNet2DConditionModel.from_pretrained(str(base), subfolder="unet", local_files_only=True)
        torch.manual_seed(BUILD_SEED)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 32))
        # from_unet zero-initialises the conditioning embedding's output and the residual
        # convolutions (training starts from "no effect"); random ones make the control map count.
        # The embedding's convolutions get variance-keeping (He) weights and no bias, so the map's
        # pixels, not the biases, decide what reaches the UNet.
        with torch.no_grad():
            for conv in controlnet.controlnet_cond_embedding.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
                    conv.weight.normal_(0, (2.0 / fan_in) ** 0.5)
                    conv.bias.zero_()
            for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
                conv.weight.normal_(0, 0.5)
        return controlnet

    return _save_once(target, "config.json", build)
