"""Build a fresh diffusers scheduler for one job from a sampler key."""

from __future__ import annotations

from shared.samplers import sampler_spec


def make_scheduler(
    key: str, base_config: dict, prediction_type: str | None = None, timestep_spacing: str | None = None
):
    """A new scheduler for one job, built from the model's own scheduler config."""
    import diffusers

    spec = sampler_spec(key)
    scheduler_cls = getattr(diffusers, spec.scheduler)
    overrides = dict(spec.options)
    if prediction_type:
        overrides["prediction_type"] = prediction_type
    if timestep_spacing:
        overrides["timestep_spacing"] = timestep_spacing
    return scheduler_cls.from_config(base_config, **overrides)
