"""Pick the device and precision a worker runs on."""

from __future__ import annotations


def resolve_device(setting: str = "auto") -> str:
    """`auto` picks cuda, then mps, then cpu; an explicit value is used as given."""
    import torch

    if setting and setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def dtype_for(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32
