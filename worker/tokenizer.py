"""A real CLIP BPE tokenizer built offline from the vocabulary shipped in the open-clip-torch wheel."""

from __future__ import annotations

import gzip
import importlib.metadata
from pathlib import Path

VOCAB_FILE = "open_clip/bpe_simple_vocab_16e6.txt.gz"
# CLIP keeps the first 49152 - 256 - 2 merges; with 2 x 256 byte tokens and 2 specials that is 49408.
N_MERGES = 49152 - 256 - 2
VOCAB_SIZE = 49408


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of GPT-2/CLIP BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _vocab_path() -> Path:
    """Locate the BPE file without importing open_clip (which would pull in torchvision)."""
    try:
        dist = importlib.metadata.distribution("open_clip_torch")
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            "the CLIP vocabulary comes from the open-clip-torch wheel: pip install --no-deps open-clip-torch==3.3.0"
        ) from exc
    return Path(dist.locate_file(VOCAB_FILE))


def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The CLIP ViT-L/14 BPE vocabulary (token -> id) and merge list."""
    lines = gzip.open(_vocab_path()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    if len(tokens) != VOCAB_SIZE:
        raise RuntimeError(f"unexpected CLIP vocabulary size {len(tokens)}")
    return {t: i for i, t in enumerate(tokens)}, merges


def build_clip_tokenizer(target: Path):
    """Build the CLIP tokenizer, save it into `target` with save_pretrained and return it."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    tokenizer.save_pretrained(str(target))
    return tokenizer
