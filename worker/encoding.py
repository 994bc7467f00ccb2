"""Text embeddings with prompt weights applied, for prompts of any length (SD1, SD2 and SDXL).

Each prompt is tokenized into 75-token chunks framed by BOS/EOS and padded to 77, as CLIP was
trained; each chunk goes through the text encoder and the chunks are concatenated, so long
prompts are not cut. Token weights scale the encoder output, then the chunk is rescaled to its
original mean (as AUTOMATIC1111 does) so weights shift emphasis without changing the overall
magnitude. Weighted sub-prompts are mixed as a weighted sum of their embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.prompts import parse_attention, split_subprompts

CHUNK = 75


@dataclass
class Encoded:
    """Embeddings for a batch: [batch, 77 x chunks, dim], plus SDXL's pooled embeddings."""

    embeds: object
    pooled: object | None = None


class PromptEncoder:
    """Encodes prompts with one or two (SDXL) CLIP text encoders of a pipeline."""

    def __init__(self, pipe, clip_skip: int = 0):
        self.pipe = pipe
        self.clip_skip = clip_skip
        self.is_sdxl = getattr(pipe, "text_encoder_2", None) is not None
        self.encoders = [(pipe.tokenizer, pipe.text_encoder)]
        if self.is_sdxl:
            self.encoders = [
                (t, e)
                for t, e in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2))
                if e is not None
            ]

    def encode_pair(self, prompts: list[str], negatives: list[str]) -> tuple[Encoded, Encoded]:
        """Embeddings of prompts and negative prompts, padded to one common length."""
        import torch

        positive = [self._encode_one(p) for p in prompts]
        negative = [self._encode_one(n) for n in negatives]
        length = max(e.embeds.shape[1] for e in positive + negative)
        padded = [self._pad(e, length) for e in positive + negative]
        half = len(positive)
        embeds = torch.cat([e.embeds for e in padded])
        pooled = torch.cat([e.pooled for e in padded]) if self.is_sdxl else None
        return (
            Encoded(embeds[:half], pooled[:half] if pooled is not None else None),
            Encoded(embeds[half:], pooled[half:] if pooled is not None else None),
        )

    def _encode_one(self, text: str) -> Encoded:
        """One prompt: sub-prompts mixed by weight; each sub-prompt's tokens weighted."""
        subprompts = split_subprompts(text)
        encoded = [(self._encode_weighted(fragment), weight) for fragment, weight in subprompts]
        length = max(e.embeds.shape[1] for e, _ in encoded)
        encoded = [(self._pad(e, length), w) for e, w in encoded]
        embeds = sum(e.embeds * w for e, w in encoded)
        pooled = sum(e.pooled * w for e, w in encoded) if self.is_sdxl else None
        return Encoded(embeds, pooled)

    def _encode_weighted(self, text: str) -> Encoded:
        outputs, pooled = [], None
        for position, (tokenizer, encoder) in enumerate(self.encoders):
            tokens, weights = self._tokens(tokenizer, text)
            chunks = []
            for start in range(0, max(len(tokens), 1), CHUNK):
                hidden, chunk_pooled = self._run(
                    tokenizer, encoder, tokens[start : start + CHUNK], weights[start : start + CHUNK]
                )
                chunks.append(hidden)
                if position == len(self.encoders) - 1 and pooled is None:
                    pooled = chunk_pooled
            outputs.append(chunks)
        import torch

        # SDXL concatenates the two encoders' features; chunks follow each other in sequence.
        per_chunk = [torch.cat([enc[i] for enc in outputs], dim=-1) for i in range(len(outputs[0]))]
        return Encoded(torch.cat(per_chunk, dim=1), pooled if self.is_sdxl else None)

    def _tokens(self, tokenizer, text: str) -> tuple[list[int], list[float]]:
        tokens: list[int] = []
        weights: list[float] = []
        for fragment, weight in parse_attention(text):
            # verbose=False: long prompts are expected here, they are chunked below.
            ids = tokenizer(fragment, add_special_tokens=False, truncation=False, verbose=False).input_ids
            tokens += ids
            weights += [weight] * len(ids)
        return tokens, weights

    def _run(self, tokenizer, encoder, tokens: list[int], weights: list[float]):
        import torch

        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        ids = [tokenizer.bos_token_id, *tokens, tokenizer.eos_token_id]
        ids += [pad] * (CHUNK + 2 - len(ids))
        token_weights = [1.0, *weights, 1.0] + [1.0] * (CHUNK + 2 - len(weights) - 2)
        device = encoder.device
        input_ids = torch.tensor([ids], device=device)
        out = encoder(input_ids, output_hidden_states=True)
        if self.is_sdxl:
            # SDXL uses the penultimate layer of both encoders, without the final norm.
            hidden = out.hidden_states[-(self.clip_skip + 2)]
            pooled = out[0] if hasattr(out, "text_embeds") else None
        elif self.clip_skip:
            # transformers 5 keeps the final norm on the model; 4.x under .text_model.
            final_norm = getattr(encoder, "text_model", encoder).final_layer_norm
            hidden = final_norm(out.hidden_states[-(self.clip_skip + 1)])
            pooled = None
        else:
            hidden, pooled = out.last_hidden_state, None
        hidden = hidden.to(dtype=self.pipe.unet.dtype)
        weight = torch.tensor(token_weights, device=hidden.device, dtype=hidden.dtype)[None, :, None]
        if torch.any(weight != 1):
            original_mean = hidden.float().mean()
            hidden = hidden * weight
            new_mean = hidden.float().mean()
            # Restore the original mean, unless it is ~0 (an untrained final norm): dividing by
            # it would blow the embedding up instead of rescaling it.
            if new_mean.abs() > 1e-4 * hidden.float().abs().mean():
                hidden = hidden * (original_mean / new_mean).to(hidden.dtype)
        return hidden, pooled

    def _pad(self, encoded: Encoded, length: int) -> Encoded:
        """Extend to `length` tokens with the embedding of an empty chunk."""
        import torch

        missing = (length - encoded.embeds.shape[1]) // (CHUNK + 2)
        if missing <= 0:
            return encoded
        empty = self._encode_weighted("").embeds
        return Encoded(torch.cat([encoded.embeds, *[empty] * missing], dim=1), encoded.pooled)
