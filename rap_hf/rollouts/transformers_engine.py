"""Rollouts with `transformers` `generate`: batched, left-padded, M samples per prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .sampling import SeededSampler


@dataclass
class Prompt:
    """One rendered prompt: chat-template text and the decoded images it refers to (none if text-only)."""

    text: str
    images: list[Any] = field(default_factory=list)


class PromptTooLong(ValueError):
    """The prompt alone does not fit the model's context."""


def processor_inputs(processor, prompts: Sequence[Prompt], device: torch.device | str) -> dict[str, Any]:
    """Tokenise prompts (and their images) into one left-padded batch on `device`.

    All prompts of a batch must either all have images or all be text-only: processors take one
    `images` argument for the whole batch.
    """
    with_images = [bool(p.images) for p in prompts]
    if any(with_images) and not all(with_images):
        raise ValueError("a batch mixes prompts with and without images; split it by condition first")
    kwargs: dict[str, Any] = {"text": [p.text for p in prompts], "return_tensors": "pt", "padding": True}
    if all(with_images) and prompts:
        kwargs["images"] = [p.images for p in prompts]
    tokenizer = getattr(processor, "tokenizer", processor)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues at the right end of every row
    try:
        inputs = processor(**kwargs)
    finally:
        tokenizer.padding_side = side
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}


def max_positions(model) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "max_position_embeddings", None)


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
            flat = [s for per_prompt in sample_seeds for s in per_prompt]
            generation_kwargs.update(temperature=1.0, top_p=1.0, top_k=0,
                                     logits_processor=[SeededSampler(flat, temperature=temperature, top_p=top_p)])
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
