"""Every sampler the template accepts maps to a real diffusers scheduler with the right options."""

from __future__ import annotations

import diffusers
import pytest

from shared.samplers import SCHEDULER_CLASSES, sampler_keys, sampler_spec
from shared.settings import PROJECT_ROOT
from shared.templates import load_templates
from worker.samplers import make_scheduler

BASE_CONFIG = diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).config
SEED_001_KEYS = [
    "ddim",
    "plms",
    "k_euler_a",
    "k_euler_ancestral",
    "k_euler",
    "k_lms",
    "k_heun",
    "k_dpm_2",
    "k_dpm_2_a",
    "k_dpmpp_2s_a",
    "dpm2s_a",
    "k_dpmpp_2m",
    "k_dpmpp_sde",
    "k_dpm_fast",
    "k_dpm_ad",
    "k_lms_ka",
    "k_dpm_2_ka",
    "k_dpm_2_a_ka",
    "k_dpmpp_2s_a_ka",
    "k_dpmpp_2m_ka",
    "k_dpmpp_sde_ka",
]


def test_template_enum_is_the_sampler_table():
    keys = load_templates(PROJECT_ROOT / "templates")["generate"].fields["sampler"]["enum"]
    assert keys == sampler_keys()
    assert set(SEED_001_KEYS) <= set(keys) and set(SCHEDULER_CLASSES) <= set(keys)


@pytest.mark.parametrize("key", sampler_keys())
def test_each_key_builds_a_fresh_scheduler(key):
    first, second = make_scheduler(key, BASE_CONFIG), make_scheduler(key, BASE_CONFIG)
    assert type(first).__name__ == sampler_spec(key).scheduler
    assert first is not second


def test_options_are_applied():
    assert make_scheduler("k_dpmpp_2m_ka", BASE_CONFIG).config.use_karras_sigmas is True
    assert make_scheduler("k_dpmpp_2m", BASE_CONFIG).config.use_karras_sigmas is False
    assert make_scheduler("k_dpmpp_sde", BASE_CONFIG).config.algorithm_type == "sde-dpmsolver++"
    assert make_scheduler("plms", BASE_CONFIG).config.skip_prk_steps is True
    assert make_scheduler("ddim", BASE_CONFIG, "v_prediction").config.prediction_type == "v_prediction"
    assert (
        make_scheduler("EulerAncestralDiscreteScheduler", BASE_CONFIG, None, "trailing").config.timestep_spacing
        == "trailing"
    )
    assert sampler_spec("k_euler_ancestral") == sampler_spec("k_euler_a")


def test_only_unfaithful_keys_carry_an_approximation():
    approximate = {key for key in sampler_keys() if sampler_spec(key).approximation}
    assert approximate == {
        "k_dpmpp_2s_a",
        "dpm2s_a",
        "k_dpmpp_2s_a_ka",
        "k_dpmpp_sde",
        "k_dpmpp_sde_ka",
        "k_dpm_fast",
        "k_dpm_ad",
    }
