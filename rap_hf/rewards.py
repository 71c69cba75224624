"""Reward functions for GRPO on RAP subsets, with TRL's reward signature.

TRL calls each reward as `fn(prompts=..., completions=..., completion_ids=..., **columns)`, where
`columns` are the dataset's other columns as lists (one entry per completion). These read
`answer` (and `choices` when the rows have options) and grade with `rap_hf.verify`, so they work
with the stock `trl.GRPOTrainer` as well as `RAPGRPOTrainer`.

The paper trains with `rap_reward` = 0.9 · accuracy + 0.1 · format (the EasyR1 math reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .data.answers import parse_choices
from .verify import is_correct, is_formatted

ACCURACY_WEIGHT = 0.9
FORMAT_WEIGHT = 0.1


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a plain string, or a conversational message list whose
    content is a string or a list of `{"type": "text", "text": ...}` blocks."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion or []:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(block.get("text", "") for block in content if isinstance(block, dict))
    return "".join(parts)


def _answers(answer: Sequence[str] | None, n: int) -> Sequence[str]:
    if answer is None:
        raise ValueError(
            "This reward needs the ground truth: the training dataset has no `answer` column. Build the rows "
            "with `rap-hf convert` (rap_hf.to_rap_format) or `rap-hf export --to trl` (rap_hf.to_trl), or add an "
            "`answer` column."
        )
    if len(answer) != n:
        raise ValueError(f"Got {n} completions but {len(answer)} answers")
    return answer


def accuracy_reward(completions: list, answer: Sequence[str] | None = None,
                    choices: Sequence[Sequence[str] | None] | None = None, **kwargs: Any) -> list[float]:
    """1.0 when the completion's last `\\boxed{}` answer matches `answer` (rap_hf.verify), else 0.0.

    With `choices` (a TRL keyword column: lists, dicts or JSON text, one entry per completion), a
    multiple-choice completion may box the letter or the option's value; another option's value is 0.0.
    """
    answer = _answers(answer, len(completions))
    choices = choices if choices is not None else [None] * len(completions)
    # Answers as text (a dataset may store 3 for "3"); options as lists, dicts or JSON text, as the
    # scorer reads them.
    return [float(is_correct(completion_text(c), "" if a is None else str(a), parse_choices(ch)))
            for c, a, ch in zip(completions, answer, choices)]


def format_reward(completions: list, **kwargs: Any) -> list[float]:
    """1.0 when the completion reasons inside `<think> </think>` and then gives a `\\boxed{}` answer
    (the released EasyR1 format rule), else 0.0."""
    return [float(is_formatted(completion_text(c))) for c in completions]


def rap_reward(completions: list, answer: Sequence[str] | None = None,
               choices: Sequence[Sequence[str] | None] | None = None, **kwargs: Any) -> list[float]:
    """The paper's reward: 0.9 · accuracy + 0.1 · format, in [0, 1]."""
    accuracy = accuracy_reward(completions, answer, choices)
    formatted = format_reward(completions)
    return [ACCURACY_WEIGHT * a + FORMAT_WEIGHT * f for a, f in zip(accuracy, formatted)]
