"""Rollouts with `transformers` `generate`: batched, left-padded, M samples per prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .sampling import SeededSampler


@dataclass
class Prompt:
    """One prompt: its chat-template text (None where no local processor renders it), the decoded
    images it refers to (none if text-only), and the chat messages it was rendered from.

    `encoded` holds the processor's output once `encode` has run, so a prompt's images are processed
    once however many passes (length check, rollouts, ACE, logit-CDE) read it; `server_messages` the
    messages as a server gets them (pictures as data URLs), built once for all M requests.
    """

    text: str | None
    images: list[Any] = field(default_factory=list)
    messages: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    encoded: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    server_messages: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)


class PromptTooLong(ValueError):
    """The prompt alone does not fit the model's context."""


def encode(processor, prompt: Prompt) -> dict[str, Any]:
    """The processor's tensors for one prompt (on the CPU), computed once and kept on the prompt."""
    if prompt.encoded is None:
        images = [prompt.images] if prompt.images else None
        prompt.encoded = dict(processor(text=[prompt.text], images=images, return_tensors="pt"))
    return prompt.encoded


def pad_token_id(processor) -> int:
    tokenizer = getattr(processor, "tokenizer", processor)
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def left_padded(
    encoded: Sequence[dict], continuations: Sequence[Sequence[int]] | None, pad_id: int
) -> tuple[dict, list[int]]:
    """One batch from per-prompt processor outputs, each row followed by its continuation (if any).

    Per-token tensors ([1, T]: input_ids, attention_mask, mm_token_type_ids, ...) are padded on the
    left so every row ends at the last position (generation continues there; teacher-forced
    continuations all end there); the others (pixel_values, image_grid_thw, ...) are concatenated along
    their first dimension over the rows that have them, which is how Qwen-VL and LLaVA processors batch
    images (a text-only row contributes none). Returns the batch and, per row, where its continuation
    starts (its prompt's end).
    """
    continuations = continuations if continuations is not None else [[] for _ in encoded]
    lengths = [e["input_ids"].shape[1] + len(c) for e, c in zip(encoded, continuations)]
    total = max(lengths)
    token_keys = ["input_ids", "attention_mask"] + sorted(
        {k for e in encoded for k, v in e.items() if k not in ("input_ids", "attention_mask") and torch.is_tensor(v)
         and v.dim() == 2 and v.shape == e["input_ids"].shape})
    dtypes = {k: next(e[k].dtype for e in encoded if k in e) for k in token_keys}
    batch = {k: torch.full((len(encoded), total), pad_id if k == "input_ids" else 0, dtype=dtypes[k])
             for k in token_keys}
    starts = []
    for row, (e, continuation, length) in enumerate(zip(encoded, continuations, lengths)):
        start = total - length
        prompt_len = e["input_ids"].shape[1]
        for key in token_keys:
            if key in e:
                batch[key][row, start : start + prompt_len] = e[key][0]
        batch["input_ids"][row, start + prompt_len :] = torch.tensor(list(continuation), dtype=dtypes["input_ids"])
        batch["attention_mask"][row, start + prompt_len :] = 1
        starts.append(start + prompt_len)
    for key in {k for e in encoded for k, v in e.items() if torch.is_tensor(v)} - set(token_keys):
        batch[key] = torch.cat([e[key] for e in encoded if key in e], dim=0)
    return batch, starts


def processor_inputs(processor, prompts: Sequence[Prompt], device: torch.device | str) -> dict[str, Any]:
    """Prompts (with or without images, mixed freely) as one left-padded batch on `device`."""
    batch, _ = left_padded([encode(processor, p) for p in prompts], None, pad_token_id(processor))
    return {k: v.to(device) for k, v in batch.items()}


def max_positions(model) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "max_position_embeddings", None)


def ensure_fits(processor, model, prompt: Prompt) -> None:
    """Encode `prompt` (kept on it, so later passes reuse it) and raise `PromptTooLong` when it
    alone fills the model's context."""
    length = encode(processor, prompt)["input_ids"].shape[1]
    limit = max_positions(model)
    if limit is not None and length >= limit:
        raise PromptTooLong(f"the prompt has {length} tokens; the model allows {limit} positions")


class TransformersEngine:
    """Samples M responses per prompt with `model.generate`.

    Each batch is tokenised once; `num_return_sequences=M` draws the M samples of every prompt from
    that single encoding. Sampling is reproducible: the same seed and the same batch give the same
    responses, and the global RNG state of the caller is left untouched.
    """

    def __init__(self, model, processor):
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self,
        prompts: Sequence[Prompt],
        num_samples: int,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 2048,
        seed: int = 0,
        sample_seeds: Sequence[Sequence[int]] | None = None,
    ) -> list[list[str]]:
        """`num_samples` responses for each prompt, as text with special tokens removed.

        With `sample_seeds` (one list of `num_samples` seeds per prompt), every response is drawn
        from its own seeded stream (`SeededSampler`): it does not depend on the batch it is in.
        Otherwise the batch shares one stream seeded with `seed`.
        """
        if not prompts:
            return []
        inputs = processor_inputs(self.processor, prompts, self.device)
        prompt_length = inputs["input_ids"].shape[1]
        sampling = temperature > 0
        generation_kwargs = dict(
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            num_return_sequences=num_samples,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
            # Checkpoints ship their own chat defaults (Qwen2.5-VL: repetition_penalty 1.05, top_k 1);
            # RAP's rollouts are plain sampling at the configured temperature and top-p.
            repetition_penalty=1.0,
        )
        if sampling and sample_seeds is not None:
            if len(sample_seeds) != len(prompts) or any(len(s) != num_samples for s in sample_seeds):
                raise ValueError("sample_seeds needs one list of num_samples seeds per prompt")
            # generate repeats each prompt num_samples times in a row: seeds in the same order.
            sampler = SeededSampler([s for per_prompt in sample_seeds for s in per_prompt],
                                    temperature=temperature, top_p=top_p)
            generation_kwargs.update(sampler.generate_kwargs())
        elif sampling:
            generation_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            if devices:
                torch.cuda.manual_seed_all(seed)
            output = self.model.generate(**inputs, **generation_kwargs)
        texts = self.tokenizer.batch_decode(output[:, prompt_length:], skip_special_tokens=True)
        return [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]
