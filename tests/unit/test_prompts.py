"""Prompt syntax: attention weights (AUTOMATIC1111) and weighted sub-prompts (seed 001)."""

from __future__ import annotations

import pytest

from worker.prompts import parse_attention, split_subprompts


def weights(text):
    return [(fragment, round(weight, 4)) for fragment, weight in parse_attention(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", [("plain text", 1.0)]),
        ("a (red) dragon", [("a ", 1.0), ("red", 1.1), (" dragon", 1.0)]),
        ("((guitar))", [("guitar", 1.21)]),
        ("(((red)))", [("red", 1.331)]),
        ("[beach]", [("beach", 0.9091)]),
        ("[[beach]]", [("beach", 0.8264)]),
        ("(word:1.3) x", [("word", 1.3), (" x", 1.0)]),
        ("(word:0.5)", [("word", 0.5)]),
        ("(a (b:2) c)", [("a ", 1.1), ("b", 2.2), (" c", 1.1)]),
        (r"\(literal\) \[too\]", [("(literal) [too]", 1.0)]),
        ("(unclosed x", [("unclosed x", 1.1)]),
        ("stray ) and ]", [("stray ) and ]", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_attention_weights(text, expected):
    assert weights(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tabby cat:0.25 white duck:0.75", [("tabby cat", 0.25), ("white duck", 0.75)]),
        ("tabby cat:25 white duck:75", [("tabby cat", 0.25), ("white duck", 0.75)]),  # "add up to 1 or 100"
        ("a:1 b:1 hybrid", [("a", 1 / 3), ("b", 1 / 3), ("hybrid", 1 / 3)]),
        ("just a prompt", [("just a prompt", 1.0)]),
        ("(word:1.3) cat", [("(word:1.3) cat", 1.0)]),  # inside brackets: an attention weight
        ("ratio 16:9 photo", [("ratio 16:9 photo", 1.0)]),  # a colon after a digit is not a weight
        ("x:0 y:0", [("x", 0.5), ("y", 0.5)]),
    ],
)
def test_weighted_subprompts(text, expected):
    result = split_subprompts(text)
    assert [f for f, _ in result] == [f for f, _ in expected]
    assert [w for _, w in result] == pytest.approx([w for _, w in expected])
