"""Prompt embeddings on the tiny models: weights, sub-prompts, long prompts and clip skip change
the text encoder's output exactly as specified."""

from __future__ import annotations

import pytest
import torch

from worker.encoding import CHUNK, PromptEncoder


@pytest.fixture(scope="module")
def pipes(worker_settings, catalog):
    from worker.loading import load_model

    return {
        name: load_model(catalog.resolve(name), worker_settings, "cpu", torch.float32).txt2img
        for name in ("tiny", "tiny-sdxl")
    }


def embed(pipe, text, clip_skip=0):
    with torch.no_grad():
        positive, _ = PromptEncoder(pipe, clip_skip).encode_pair([text], [""])
    return positive


def test_plain_prompt_matches_diffusers(pipes):
    pipe = pipes["tiny"]
    ours = embed(pipe, "a photo of a cat").embeds
    with torch.no_grad():
        theirs, _ = pipe.encode_prompt("a photo of a cat", "cpu", 1, False)
    assert ours.shape == (1, CHUNK + 2, 32)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_a_weight_scales_its_tokens_against_the_rest(pipes):
    pipe = pipes["tiny"]
    plain = embed(pipe, "a cat").embeds[0]
    weighted = embed(pipe, "a (cat:1.5)").embeds[0]
    # Tokens: BOS, a, cat, EOS. After the mean rescale every token shares one factor k,
    # and "cat" alone carries the extra 1.5.
    ratio_a = weighted[1] / plain[1]
    ratio_cat = weighted[2] / plain[2]
    assert torch.allclose(ratio_cat, ratio_a * 1.5, rtol=1e-4)
    assert not torch.allclose(plain, weighted)


def test_brackets_weigh_like_numbers(pipes):
    pipe = pipes["tiny"]
    assert torch.allclose(embed(pipe, "a ((cat))").embeds, embed(pipe, "a (cat:1.21)").embeds, atol=1e-5)
    assert torch.allclose(embed(pipe, "a [cat]").embeds, embed(pipe, f"a (cat:{1 / 1.1})").embeds, atol=1e-5)
    # Escaped brackets are literal characters, not emphasis.
    assert not torch.allclose(embed(pipe, r"a \(cat\)").embeds, embed(pipe, "a (cat)").embeds)


def test_subprompts_mix_embeddings_by_weight(pipes):
    pipe = pipes["tiny"]
    mixed = embed(pipe, "tabby cat:0.25 white duck:0.75").embeds
    expected = 0.25 * embed(pipe, "tabby cat").embeds + 0.75 * embed(pipe, "white duck").embeds
    assert torch.allclose(mixed, expected, atol=1e-6)


def test_long_prompts_are_chunked_not_cut(pipes):
    pipe = pipes["tiny"]
    words = "red " * 100
    long_a = embed(pipe, words + "cat").embeds
    long_b = embed(pipe, words + "dog").embeds
    assert long_a.shape == (1, 2 * (CHUNK + 2), 32)
    # The 101st word lives in the second chunk and still changes the embedding.
    assert torch.allclose(long_a[:, : CHUNK + 2], long_b[:, : CHUNK + 2])
    assert not torch.allclose(long_a[:, CHUNK + 2 :], long_b[:, CHUNK + 2 :])


def test_negative_and_positive_are_padded_to_one_length(pipes):
    with torch.no_grad():
        positive, negative = PromptEncoder(pipes["tiny"]).encode_pair(["short"], ["word " * 90])
    assert positive.embeds.shape == negative.embeds.shape == (1, 2 * (CHUNK + 2), 32)


def test_clip_skip_uses_an_earlier_layer(pipes):
    pipe = pipes["tiny"]
    skipped = embed(pipe, "a cat", clip_skip=1).embeds
    ids = pipe.tokenizer("a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.allclose(skipped, expected, atol=1e-6)
    assert not torch.allclose(skipped, embed(pipe, "a cat").embeds)


def test_sdxl_concatenates_both_encoders_and_pools_the_second(pipes):
    pipe = pipes["tiny-sdxl"]
    encoded = embed(pipe, "a (cat:1.2) " + "word " * 80)
    assert encoded.embeds.shape == (1, 2 * (CHUNK + 2), 64)  # 32 + 32 features
    assert encoded.pooled.shape == (1, 32)
    with torch.no_grad():
        theirs = pipe.encode_prompt("a photo", device="cpu", do_classifier_free_guidance=False)
    ours = embed(pipe, "a photo")
    assert torch.allclose(ours.embeds, theirs[0], atol=1e-5) and torch.allclose(ours.pooled, theirs[2], atol=1e-5)
