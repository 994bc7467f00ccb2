"""Prompt syntax: attention weights as AUTOMATIC1111 writes them and seed 001's weighted sub-prompts.

(word)       weight x 1.1          ((word))   x 1.21
[word]       weight / 1.1          (word:1.3) weight 1.3
\\( \\) \\[ \\]  literal brackets
tabby cat:0.25 white duck:0.75     sub-prompts mixed 1 : 3 (weights are normalised)
"""

from __future__ import annotations

import re

ROUND = 1.1
SQUARE = 1 / 1.1
# A weight that closes an explicit group: "(word:1.3)".
_WEIGHT_CLOSE = re.compile(r":\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)")
# A top-level sub-prompt weight: "text:0.25" followed by a space or the end.
_SUBPROMPT_WEIGHT = re.compile(r":([+-]?(?:\d+\.?\d*|\.\d+))(?=\s|$)")


def parse_attention(text: str) -> list[tuple[str, float]]:
    """Split `text` into (fragment, weight) pieces; unbalanced brackets still apply to the end."""
    pieces: list[list] = []
    open_groups: list[tuple[str, int]] = []  # (bracket, index of the first piece inside it)
    index = 0

    def add(fragment: str) -> None:
        if fragment:
            pieces.append([fragment, 1.0])

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            add(text[index + 1])
            index += 2
            continue
        if char in "([":
            open_groups.append((char, len(pieces)))
            index += 1
            continue
        weight = _WEIGHT_CLOSE.match(text, index) if char == ":" else None
        if weight and open_groups and open_groups[-1][0] == "(":
            _, start = open_groups.pop()
            scale(start, float(weight.group(1)))
            index = weight.end()
            continue
        if char == ")" and open_groups and open_groups[-1][0] == "(":
            scale(open_groups.pop()[1], ROUND)
        elif char == "]" and open_groups and open_groups[-1][0] == "[":
            scale(open_groups.pop()[1], SQUARE)
        else:
            add(char)
        index += 1
    for bracket, start in open_groups:
        scale(start, ROUND if bracket == "(" else SQUARE)
    return _merge(pieces)


def _merge(pieces: list[list]) -> list[tuple[str, float]]:
    """Join neighbouring characters of equal weight back into fragments."""
    merged: list[tuple[str, float]] = []
    for fragment, weight in pieces:
        if merged and abs(merged[-1][1] - weight) < 1e-9:
            merged[-1] = (merged[-1][0] + fragment, merged[-1][1])
        else:
            merged.append((fragment, weight))
    return merged or [("", 1.0)]


def split_subprompts(text: str) -> list[tuple[str, float]]:
    """Seed 001's "a:0.25 b:0.75": sub-prompts and their normalised weights.

    Only colons outside brackets count, so "(word:1.3)" stays an attention weight. A prompt with
    no sub-prompt weights is one sub-prompt of weight 1.
    """
    parts: list[tuple[str, float]] = []
    depth = 0
    start = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0 and index > 0 and not text[index - 1].isdigit():
            # "cat:0.25" is a weight; "16:9" is not.
            match = _SUBPROMPT_WEIGHT.match(text, index)
            if match:
                parts.append((text[start:index].strip(), float(match.group(1))))
                start = index = match.end()
                continue
        index += 1
    tail = text[start:].strip()
    if tail or not parts:
        parts.append((tail, 1.0))
    parts = [(fragment, weight) for fragment, weight in parts if fragment or len(parts) == 1]
    total = sum(weight for _, weight in parts)
    if len(parts) == 1 or total == 0:
        return [(fragment, 1.0 / len(parts)) for fragment, _ in parts] if total == 0 else [(parts[0][0], 1.0)]
    return [(fragment, weight / total) for fragment, weight in parts]
