"""Sampler keys of the seed-001 API mapped to diffusers schedulers; a fresh scheduler per job."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplerSpec:
    label: str
    scheduler: str
    options: dict = field(default_factory=dict)
    # Why the diffusers scheduler is only the nearest equivalent, when it is not faithful.
    approximation: str = ""


KARRAS = {"use_karras_sigmas": True}
SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIM", "DDIMScheduler"),
    "plms": SamplerSpec("PLMS", "PNDMScheduler", {"skip_prk_steps": True}),
    "k_euler_a": SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler"),
    "k_euler": SamplerSpec("Euler", "EulerDiscreteScheduler"),
    "k_lms": SamplerSpec("LMS", "LMSDiscreteScheduler"),
    "k_heun": SamplerSpec("Heun", "HeunDiscreteScheduler"),
    "k_dpm_2": SamplerSpec("DPM2", "KDPM2DiscreteScheduler"),
    "k_dpm_2_a": SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    "k_dpmpp_2s_a": SamplerSpec(
        "DPM++ 2S a",
        "DPMSolverSinglestepScheduler",
        approximation="diffusers has no ancestral DPM++ 2S; the single-step DPM++ solver is used",
    ),
    "k_dpmpp_2m": SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    "k_dpmpp_sde": SamplerSpec(
        "DPM++ SDE",
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        approximation="DPM++ SDE runs as diffusers' multistep SDE-DPM-Solver++",
    ),
    "k_dpm_fast": SamplerSpec(
        "DPM fast",
        "DPMSolverMultistepScheduler",
        approximation="diffusers has no DPM fast; DPM++ 2M is used",
    ),
    "k_dpm_ad": SamplerSpec(
        "DPM adaptive",
        "DPMSolverMultistepScheduler",
        approximation="diffusers has no adaptive DPM; DPM++ 2M is used",
    ),
    "k_lms_ka": SamplerSpec("LMS Karras", "LMSDiscreteScheduler", KARRAS),
    "k_dpm_2_ka": SamplerSpec("DPM2 Karras", "KDPM2DiscreteScheduler", KARRAS),
    "k_dpm_2_a_ka": SamplerSpec("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", KARRAS),
    "k_dpmpp_2s_a_ka": SamplerSpec(
        "DPM++ 2S a Karras",
        "DPMSolverSinglestepScheduler",
        KARRAS,
        approximation="diffusers has no ancestral DPM++ 2S; the single-step DPM++ solver is used",
    ),
    "k_dpmpp_2m_ka": SamplerSpec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", KARRAS),
    "k_dpmpp_sde_ka": SamplerSpec(
        "DPM++ SDE Karras",
        "DPMSolverMultistepScheduler",
        {**KARRAS, "algorithm_type": "sde-dpmsolver++"},
        approximation="DPM++ SDE runs as diffusers' multistep SDE-DPM-Solver++",
    ),
}
ALIASES = {"k_euler_ancestral": "k_euler_a", "dpm2s_a": "k_dpmpp_2s_a"}


def sampler_spec(key: str) -> SamplerSpec:
    return SAMPLERS[ALIASES.get(key, key)]


def make_scheduler(key: str, base_config: dict, prediction_type: str | None = None):
    """A new scheduler for one job, built from the model's own scheduler config."""
    import diffusers

    spec = sampler_spec(key)
    scheduler_cls = getattr(diffusers, spec.scheduler)
    overrides = dict(spec.options)
    if prediction_type:
        overrides["prediction_type"] = prediction_type
    return scheduler_cls.from_config(base_config, **overrides)
