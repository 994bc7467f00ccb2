"""Sampler keys (seed 001's and diffusers' scheduler class names) and what each one runs.

Pure data, so the API can list and validate samplers without importing diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplerSpec:
    label: str
    scheduler: str
    options: dict = field(default_factory=dict)
    # Why the diffusers scheduler is only the nearest equivalent, when it is not faithful.
    approximation: str = ""

    def public(self, key: str) -> dict:
        entry = {"key": key, "label": self.label, "scheduler": self.scheduler, "options": self.options}
        if self.approximation:
            entry["approximation"] = self.approximation
        return entry


KARRAS = {"use_karras_sigmas": True}
SDE = {"algorithm_type": "sde-dpmsolver++"}
NO_2S_A = "diffusers has no ancestral DPM++ 2S; the single-step DPM++ solver is used"
NO_SDE = "DPM++ SDE runs as diffusers' multistep SDE-DPM-Solver++ (the Brownian-tree SDE sampler needs torchsde)"

SEED_SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIM", "DDIMScheduler"),
    "plms": SamplerSpec("PLMS", "PNDMScheduler", {"skip_prk_steps": True}),
    "k_euler_a": SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler"),
    "k_euler": SamplerSpec("Euler", "EulerDiscreteScheduler"),
    "k_lms": SamplerSpec("LMS", "LMSDiscreteScheduler"),
    "k_heun": SamplerSpec("Heun", "HeunDiscreteScheduler"),
    "k_dpm_2": SamplerSpec("DPM2", "KDPM2DiscreteScheduler"),
    "k_dpm_2_a": SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    "k_dpmpp_2s_a": SamplerSpec("DPM++ 2S a", "DPMSolverSinglestepScheduler", approximation=NO_2S_A),
    "k_dpmpp_2m": SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    "k_dpmpp_sde": SamplerSpec("DPM++ SDE", "DPMSolverMultistepScheduler", SDE, approximation=NO_SDE),
    "k_dpm_fast": SamplerSpec(
        "DPM fast", "DPMSolverMultistepScheduler", approximation="diffusers has no DPM fast; DPM++ 2M is used"
    ),
    "k_dpm_ad": SamplerSpec(
        "DPM adaptive", "DPMSolverMultistepScheduler", approximation="diffusers has no adaptive DPM; DPM++ 2M is used"
    ),
    "k_lms_ka": SamplerSpec("LMS Karras", "LMSDiscreteScheduler", KARRAS),
    "k_dpm_2_ka": SamplerSpec("DPM2 Karras", "KDPM2DiscreteScheduler", KARRAS),
    "k_dpm_2_a_ka": SamplerSpec("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", KARRAS),
    "k_dpmpp_2s_a_ka": SamplerSpec("DPM++ 2S a Karras", "DPMSolverSinglestepScheduler", KARRAS, approximation=NO_2S_A),
    "k_dpmpp_2m_ka": SamplerSpec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", KARRAS),
    "k_dpmpp_sde_ka": SamplerSpec(
        "DPM++ SDE Karras", "DPMSolverMultistepScheduler", {**KARRAS, **SDE}, approximation=NO_SDE
    ),
}
# Diffusers scheduler class names, accepted as they are (seed 004 names them this way).
SCHEDULER_CLASSES = (
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "LMSDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
    "LCMScheduler",
    "TCDScheduler",
)
SAMPLERS: dict[str, SamplerSpec] = {
    **SEED_SAMPLERS,
    **{name: SamplerSpec(name.removesuffix("Scheduler"), name) for name in SCHEDULER_CLASSES},
}
ALIASES = {"k_euler_ancestral": "k_euler_a", "dpm2s_a": "k_dpmpp_2s_a"}


def sampler_spec(key: str) -> SamplerSpec:
    return SAMPLERS[ALIASES.get(key, key)]


def sampler_keys() -> list[str]:
    """Every accepted key, aliases included."""
    return [*SAMPLERS, *ALIASES]
