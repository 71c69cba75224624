"""Prepared rows: what every stage that runs a model needs of one canonical row, or why it cannot run.

Scoring, evaluation and the warm-up all start the same way: read the row's question, answer and
options, decode its images, render the prompt with the images and (for CDE) without them through
the one chat template (`rap_hf.prompts`), and check that the prompt fits the model. This module is
that step, once, so the rules and their messages cannot drift apart between stages. A row that
fails any check gets `error` (one line, naming the cause) instead of stopping its batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data.images import ImageDecodeError, decode_row_images
from .data.answers import parse_choices
from .prompts import FORMAT_PROMPT, build_conversation
from .rollouts.transformers_engine import Prompt, ensure_fits

EMPTY_ANSWER = "empty answer: the row has no ground truth to grade against"
NO_IMAGE = "no image: RAP measures how much the image matters, and this row has none"
# What to do when many rows fail for one reason, by the reason's opening words (flags of rap-hf score).
FIXES = {
    "empty answer": "map the answer column with --answer (or fill in the answers)",
    "no image": "map the image column with --images, and --image-root when its paths are relative",
    "Image N of row": "check that the image files exist and open (relative paths resolve against --image-root)",
    "prompt could not be built: PromptTooLong": "lower --max-pixels, or shorten the questions",
    "prompt could not be built": "check the model's processor (and --min-pixels / --max-pixels, --processor-kwargs)",
}
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b\d+\b")


def error_reason(error: str) -> str:
    """A row error without what is particular to the row (its id, quoted names, numbers), so that errors
    can be counted by reason: "Image N of row '…' could not be decoded: UnidentifiedImageError: ..."."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", error.splitlines()[0] if error else ""))[:160]


def fix_for(reason: str) -> str | None:
    """What to try when rows fail for `reason` (an `error_reason`), or None when there is no advice."""
    return next((fix for start, fix in FIXES.items() if reason.startswith(start)), None)


@dataclass
class PreparedRow:
    """One canonical row, ready for a model: its prompts built, or `error` saying why not.

    Attributes:
        index: The row's position in its batch (where its results go).
        rap_id: The row's stable id.
        question, answer, choices: As in the canonical row (answer stripped; choices parsed, or None).
        images: The decoded images (PIL), in order.
        image_prompt: The prompt with the images (encoded once, when a model was given to check it).
        text_prompt: The same prompt without image blocks (CDE's text-only condition), when asked for.
        error: None, or why the row cannot be used; stages skip such rows and report it as `rap_error`.
    """

    index: int
    rap_id: str
    question: str = ""
    answer: str = ""
    choices: list[str] | None = None
    images: list[Any] = field(default_factory=list)
    image_prompt: Prompt | None = None
    text_prompt: Prompt | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def prepare_rows(
    batch: Mapping[str, Sequence[Any]],
    processor,
    *,
    model=None,
    format_prompt: str | None = FORMAT_PROMPT,
    system_prompt: str | None = None,
    text_prompt: bool = True,
    require_image: bool = True,
    errors: Sequence[str | None] | None = None,
) -> list[PreparedRow]:
    """Prepare every row of a `datasets` batch (a dict of columns) for a model.

    Args:
        batch: Canonical columns `rap_id`, `question`, `answer`, `images` (and `choices` if present).
        processor: The model's processor; its chat template renders the prompts. None (rollouts from
            inference servers, which render their own) keeps only each prompt's messages.
        model: When given, each image prompt is encoded now (its pictures processed once, reused by
            every later pass) and a prompt that alone fills the model's context is a row error.
        format_prompt, system_prompt: As in `rap_hf.prompts.build_conversation`.
        text_prompt: Also build the text-only prompt (CDE's second condition).
        require_image: A row without images is an error (RAP compares with and without the image;
            evaluation accepts text-only rows).
        errors: Errors an earlier pass recorded per row (e.g. `rap_error`); such rows keep theirs.
    """
    choices_column = batch.get("choices")
    rows = []
    for i in range(len(batch["rap_id"])):
        row = PreparedRow(index=i, rap_id=str(batch["rap_id"][i]), question=batch["question"][i] or "",
                          answer=(batch["answer"][i] or "").strip())
        rows.append(row)
        if errors is not None and errors[i]:
            row.error = errors[i]
            continue
        row.choices = parse_choices(choices_column[i]) if choices_column is not None else None
        if not row.answer:
            row.error = EMPTY_ANSWER
            continue
        try:
            row.images = decode_row_images(batch["images"][i], row.rap_id)
        except ImageDecodeError as error:
            row.error = str(error)
            continue
        if require_image and not row.images:
            row.error = NO_IMAGE
            continue
        try:
            render = dict(format_prompt=format_prompt, system_prompt=system_prompt)
            row.image_prompt = build_prompt(processor, row.question, row.images, with_images=True, **render)
            if text_prompt:
                row.text_prompt = build_prompt(processor, row.question, row.images, with_images=False, **render)
            if model is not None:
                ensure_fits(processor, model, row.image_prompt)
        except Exception as error:  # processor failures (odd aspect ratios, ...) are per-row
            row.error = f"prompt could not be built: {type(error).__name__}: {error}"
            row.image_prompt = row.text_prompt = None
    return rows


def build_prompt(processor, question: str, images: list[Any], *, with_images: bool,
                 format_prompt: str | None = FORMAT_PROMPT, system_prompt: str | None = None) -> Prompt:
    """A row's prompt with its images or text-only: the chat messages (what a server is sent) and, with a
    processor, their chat-template text (what a local model reads)."""
    messages = build_conversation(question, len(images), with_images=with_images, format_prompt=format_prompt,
                                  system_prompt=system_prompt)
    text = (processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            if processor is not None else None)
    return Prompt(text, list(images) if with_images else [], messages=messages)
