"""Memory profiles by MACHINE_SIZE (seed 002): smaller machines trade speed for memory."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

PROFILES = {
    "big": (),
    "medium": ("attention_slicing", "vae_slicing"),
    "little": ("attention_slicing", "vae_slicing", "vae_tiling", "model_cpu_offload"),
    "tiny": ("attention_slicing", "vae_slicing", "vae_tiling", "sequential_cpu_offload"),
}
OFFLOADS = ("model_cpu_offload", "sequential_cpu_offload")


def profile(machine_size: str) -> tuple[str, ...]:
    if machine_size not in PROFILES:
        raise ValueError(f"MACHINE_SIZE must be one of {', '.join(PROFILES)}, not {machine_size!r}")
    return PROFILES[machine_size]


def place_pipeline(pipe, machine_size: str, device: str) -> list[str]:
    """Apply the profile's savings and move `pipe` to `device` (or let offloading place it).

    Offloading keeps weights in CPU memory and moves each part to the GPU when it runs; it only
    makes sense with an accelerator, so on CPU it is skipped.
    """
    applied = []
    for option in profile(machine_size):
        if option == "attention_slicing":
            pipe.enable_attention_slicing()
        elif option == "vae_slicing":
            pipe.vae.enable_slicing()
        elif option == "vae_tiling":
            pipe.vae.enable_tiling()
        elif option in OFFLOADS and device == "cpu":
            continue
        elif option == "model_cpu_offload":
            pipe.enable_model_cpu_offload(device=device)
        elif option == "sequential_cpu_offload":
            pipe.enable_sequential_cpu_offload(device=device)
        applied.append(option)
    if device != "cpu" and not any(option in OFFLOADS for option in applied):
        pipe.to(device)
    return applied
