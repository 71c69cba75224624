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

from ..rollouts.transformers_engine import Prompt, encode, left_padded, pad_token_id


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
    """One left-padded batch of prompt + continuation on `device`, and where each continuation starts.

    Every continuation ends at the last position, so `logits_to_keep` can keep only the tail.
    """
    encoded = [encode(processor, prompt) for prompt in prompts]
    batch, starts = left_padded(encoded, [c.ids for c in continuations], pad_token_id(processor))
    return {k: v.to(device) for k, v in batch.items()}, starts


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
