"""Teacher-forced sequences: a rendered prompt (with its images) followed by given text.

ACE reads the attention over prompt + response, logit-CDE the probability of the reference answer
after the prompt. Both tokenise the prompt with the processor (which expands image tokens) and
append the continuation's own token ids, so its tokens and their character offsets are known
exactly, whatever the tokenizer would have merged across the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..rollouts.transformers_engine import Prompt, processor_inputs


@dataclass
class Continuation:
    """Token ids of appended text and, per token, its character span in that text."""

    ids: list[int]
    offsets: list[tuple[int, int]]


def tokenize_continuation(tokenizer, text: str) -> Continuation:
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return Continuation(list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]])


def teacher_forced_inputs(
    processor, prompts: Sequence[Prompt], continuations: Sequence[Continuation], device
) -> tuple[dict, list[int]]:
    """One left-padded batch of prompt + continuation, and where each continuation starts.

    Returns the model inputs and, per row, the position of its first continuation token. Every
    continuation ends at the last position, so `logits_to_keep` can keep only the tail.
    """
    inputs = processor_inputs(processor, prompts, device)
    tokenizer = getattr(processor, "tokenizer", processor)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = inputs["input_ids"]
    batch, prompt_len = input_ids.shape
    longest = max((len(c.ids) for c in continuations), default=0)
    total = prompt_len + longest
    starts = []
    extended: dict[str, torch.Tensor] = {}
    per_token_keys = [k for k, v in inputs.items() if torch.is_tensor(v) and v.shape[:2] == (batch, prompt_len)]
    for key in per_token_keys:
        value = inputs[key]
        fill = pad_id if key == "input_ids" else 0
        extended[key] = torch.full((batch, total), fill, dtype=value.dtype, device=value.device)
    for row, continuation in enumerate(continuations):
        shift = longest - len(continuation.ids)  # extra left padding so every row ends together
        for key in per_token_keys:
            extended[key][row, shift : shift + prompt_len] = inputs[key][row]
        suffix = slice(shift + prompt_len, total)
        extended["input_ids"][row, suffix] = torch.tensor(continuation.ids, dtype=input_ids.dtype)
        if "attention_mask" in extended:
            extended["attention_mask"][row, suffix] = 1
        starts.append(shift + prompt_len)
    return {**inputs, **extended}, starts


def answer_log_probs(
    model, processor, prompts: Sequence[Prompt], continuations: Sequence[Continuation],
    scored: Sequence[Sequence[int]], device,
) -> list[float]:
    """Mean log-probability of the `scored` continuation tokens (indices into each continuation)."""
    inputs, starts = teacher_forced_inputs(processor, prompts, continuations, device)
    total = inputs["input_ids"].shape[1]
    longest = max(len(c.ids) for c in continuations)
    with torch.inference_mode():
        # Logits only for the tail: position t's token is predicted by the logits at t - 1.
        logits = model(**inputs, logits_to_keep=longest + 1).logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)
    first_kept = total - (longest + 1)
    means = []
    for row, (start, continuation, indices) in enumerate(zip(starts, continuations, scored)):
        values = []
        for index in indices:
            position = start + index
            token = continuation.ids[index]
            values.append(log_probs[row, position - 1 - first_kept, token].item())
        means.append(sum(values) / len(values))
    return means
