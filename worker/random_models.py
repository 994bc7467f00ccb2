"""Full-size real architectures with random weights (`random:sd15`, `random:sd-turbo`).

They cost nothing to download and time exactly like the real checkpoints, so GPU benchmarks are
honest offline. Modules are created directly on the target device, so no CPU copy is made.
"""

from __future__ import annotations

from pathlib import Path

BUILD_SEED = 0

SD_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "sample_size": 512,
    "in_channels": 3,
    "out_channels": 3,
    "scaling_factor": 0.18215,
}
SD_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}
ARCHITECTURES = {
    # Stable Diffusion 1.5: CLIP ViT-L/14 text encoder, 768-d cross-attention.
    "sd15": {
        "unet": {**SD_UNET, "cross_attention_dim": 768, "attention_head_dim": 8},
        "text": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "projection_dim": 768,
            "hidden_act": "quick_gelu",
        },
        "scheduler": ("PNDMScheduler", {"skip_prk_steps": True, "steps_offset": 1}),
    },
    # SD-Turbo (the SD 2.1 architecture): OpenCLIP ViT-H text encoder (23 layers used), 1024-d.
    "sd-turbo": {
        "unet": {
            **SD_UNET,
            "cross_attention_dim": 1024,
            "attention_head_dim": (5, 10, 20, 20),
            "use_linear_projection": True,
        },
        "text": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 23,
            "projection_dim": 512,
            "hidden_act": "gelu",
        },
        "scheduler": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing", "steps_offset": 1}),
    },
}


def build_random_pipeline(kind: str, tokenizer_dir: Path, device: str = "cpu", dtype=None):
    """A StableDiffusionPipeline of the named architecture with random weights on `device`."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from worker.tokenizer import VOCAB_SIZE, build_clip_tokenizer

    arch = ARCHITECTURES[kind]
    torch.manual_seed(BUILD_SEED)
    with torch.device(device):
        unet = UNet2DConditionModel(**arch["unet"])
        vae = AutoencoderKL(**SD_VAE)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=VOCAB_SIZE,
                max_position_embeddings=77,
                bos_token_id=49406,
                eos_token_id=49407,
                pad_token_id=49407,
                **arch["text"],
            )
        )
    scheduler_name, scheduler_options = arch["scheduler"]
    scheduler = getattr(diffusers, scheduler_name)(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", **scheduler_options
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_clip_tokenizer(tokenizer_dir),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if dtype is not None and dtype != torch.float32:
        pipe.to(dtype=dtype)
    return pipe
