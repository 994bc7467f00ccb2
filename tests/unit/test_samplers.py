"""Every sampler the template accepts maps to a real diffusers scheduler."""

from __future__ import annotations

import diffusers

from shared.settings import PROJECT_ROOT
from shared.templates import load_templates
from worker.samplers import make_scheduler, sampler_spec

BASE_CONFIG = diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).config


def test_every_template_sampler_builds_a_fresh_scheduler():
    keys = load_templates(PROJECT_ROOT / "templates")["generate"].fields["sampler"]["enum"]
    assert len(keys) == 21
    for key in keys:
        first, second = make_scheduler(key, BASE_CONFIG), make_scheduler(key, BASE_CONFIG)
        assert type(first).__name__ == sampler_spec(key).scheduler
        assert first is not second


def test_karras_and_v_prediction_options_are_applied():
    assert make_scheduler("k_dpmpp_2m_ka", BASE_CONFIG).config.use_karras_sigmas is True
    assert make_scheduler("k_dpmpp_2m", BASE_CONFIG).config.use_karras_sigmas is False
    assert make_scheduler("ddim", BASE_CONFIG, "v_prediction").config.prediction_type == "v_prediction"
    assert sampler_spec("k_euler_ancestral") == sampler_spec("k_euler_a")
