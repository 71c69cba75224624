"""`Layout`: how one source layout reads into canonical rows, in the spirit of datatrove's readers.

A layout has a name, says whether it recognises a dataset's columns, picks the source column of
each canonical one (`source_columns`, explicit arguments win), and reads a source row into a
canonical one (`read_row`). The published layouts (`rap_hf.data.layouts`, one module each) are
instances of this class: their fields are the data (which columns hold the question, the answer,
the images, ...), the reading is shared. A layout of your own is one instance, e.g.

    Layout("my_set", required=("q", "a", "pic"), question="q", answer=("a",), images=("pic",))

passed as `to_rap_format(ds, layout=...)`, or registered (`register_layout`) so that `preset="auto"`
and `rap-hf convert --preset` know it. Subclass it and override `read_row` for a row that needs
more than column picking.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...prompts import FORMAT_PROMPT
from ..answers import canonical_answer, parse_choices, render_question
from ..canonical import CanonicalRow, content_hash
from ..column_detection import (
    CHOICE_COLUMNS,
    ID_COLUMNS,
    IMAGE_COLUMNS,
    NUMBERED_IMAGE_COLUMN,
    field_value,
    first_present,
    numbered_image_columns,
)
from ..image_sources import ImageSources
from ..images import ImageRef, keep_missing_file, to_image_refs
from ..placeholders import strip_image_placeholders


@dataclass(frozen=True)
class SourceColumns:
    """Which source column feeds each canonical one, resolved for one dataset (None: none does)."""

    question: str | None
    question_fallbacks: tuple[str, ...]
    """Columns read, in order, on rows whose question is empty (MathVerse's Vision Only rows)."""
    messages: str | None
    """Column of chat messages the question (and its images) come from, instead of `question`."""
    answer: str | None
    choices: str | None
    id: str | None
    context: str | None
    unit: str | None
    precision: str | None
    images: tuple[str, ...]
    numbers: Mapping[str, int] = field(default_factory=dict)
    """`image_k` column -> k: `<image k>` names that column (rows skip empty ones, so k maps to a
    position per row)."""
    default_question: str | None = None
    """The question of rows with no question text in any column (the layout's `default_question`)."""

    @property
    def used(self) -> set[str]:
        """The source columns a conversion reads (a dotted id by its struct column)."""
        used = {*self.images, *self.question_fallbacks, self.messages, self.question, self.answer, self.choices,
                self.context}
        if self.id:
            used.add(self.id.split(".", 1)[0])
        return used - {None}


@dataclass(frozen=True)
class Layout:
    """How one source layout maps to canonical columns: its fields say which columns hold what, and
    its methods (shared by every layout) recognise the columns and read the rows."""

    name: str
    required: tuple[str, ...]
    """Columns the layout is recognised by (with an answer column): all must be present."""
    question: str | None = None
    question_fallbacks: tuple[str, ...] = ()
    """Columns whose text is the question on rows where the question column is empty (MathVerse's
    Vision Only rows put the question in the picture, and the instruction in `query_cot`)."""
    answer: tuple[str, ...] = ("answer",)
    images: tuple[str, ...] | None = None
    """Image columns to look for; None: any layout's (numbered `image_k` columns, then `IMAGE_COLUMNS`)."""
    choices: tuple[str, ...] = CHOICE_COLUMNS
    """Option columns to look for; () where the question already holds its options."""
    messages: str | None = None  # column holding chat messages to take the question from
    id: tuple[str, ...] = ID_COLUMNS
    """Candidate columns; a dotted name ("reward_model.ground_truth") reads a field of a struct column."""
    context: str | None = None
    """Column prefixed to the question as `Context: ...` when not empty (ScienceQA's `hint`)."""
    hints: bool = True
    """Append MathVista's `unit` and `precision` to the question when those columns exist."""
    default_question: str | None = None
    """The question of rows that have none in their columns: MMMU-Pro's vision config puts the whole
    question, options included, in the picture, so the text asks to answer it."""
    render_choices: bool = True
    """Write the options into the question as `(A) ...` lines; False where the picture shows them (the
    options are still kept as `choices`, to grade an answer that names an option's value)."""

    def missing(self, columns: Sequence[str]) -> list[str]:
        """The required columns that `columns` lacks."""
        return [c for c in self.required if c not in columns]

    def recognises(self, columns: Sequence[str]) -> bool:
        """Whether a dataset with these columns is in this layout: every required column, and one of the
        answer columns (TRL's `prompt` alone is not enough: its answer is in `solution` or `answer`)."""
        return not self.missing(columns) and first_present(self.answer, columns) is not None

    def source_columns(self, columns: Sequence[str], *, question: str | None = None, answer: str | None = None,
                       images: Sequence[str] | None = None, id: str | None = None,
                       choices: str | None = None) -> SourceColumns:
        """The source column of each canonical one for a dataset with `columns`; the arguments (the
        user's explicit mapping) win over the layout's own. A named question replaces the messages
        and the context."""
        if images is None:
            images = numbered_image_columns(columns) if self.images is None else []
            if not images:
                found = first_present(self.images if self.images is not None else IMAGE_COLUMNS, columns)
                images = [found] if found else []
        return SourceColumns(
            question=question or self.question,
            question_fallbacks=() if question else tuple(c for c in self.question_fallbacks if c in columns),
            messages=self.messages if question is None else None,
            answer=answer or first_present(self.answer, columns),
            choices=choices or first_present(self.choices, columns),
            id=id or first_present(self.id, columns),
            context=self.context if question is None and self.context in columns else None,
            unit="unit" if self.hints and "unit" in columns else None,
            precision="precision" if self.hints and "precision" in columns else None,
            images=tuple(images),
            numbers={c: int(m.group(1)) for c in images if (m := NUMBERED_IMAGE_COLUMN.match(c))},
            default_question=None if question else self.default_question,
        )

    def read_row(self, batch: Mapping[str, list], i: int, source: SourceColumns,
                 image_root: ImageSources | str | os.PathLike | None) -> CanonicalRow:
        """Row `i` of a batch of source rows as a canonical row.

        The question comes from its column or the last user turn of the messages, without the paper's
        format prompt when it already ends with it, prefixed with the context, its placeholders
        resolved, MathVista's unit and precision appended, the options rendered in. The images come
        from the image columns, else from the messages. The id is the source's, else a content hash.
        """
        text, refs, positions = _question_and_images(batch, i, source, image_root)
        if source.context is not None and str(batch[source.context][i] or "").strip():
            text = f"Context: {str(batch[source.context][i]).strip()}\n{text}"
        text = strip_image_placeholders(text, count=len(refs), positions=positions)
        text = _with_hints(text, batch[source.unit][i] if source.unit else None,
                           batch[source.precision][i] if source.precision else None)
        raw_choices = parse_choices(batch[source.choices][i]) if source.choices else None
        choices = [strip_image_placeholders(c, count=len(refs), positions=positions, option=True)
                   for c in raw_choices] if raw_choices else None
        question = render_question(text, choices if self.render_choices else None)
        raw_answer = field_value(batch, source.answer, i)
        answer = canonical_answer(raw_answer, choices)
        source_id = field_value(batch, source.id, i) if source.id else None
        rap_id = str(source_id) if source_id not in (None, "") else content_hash(question, answer, refs)
        return CanonicalRow(rap_id=rap_id, question=question, answer=answer, images=refs, choices=choices,
                            source_answer=raw_answer)


def _question_and_images(batch: Mapping[str, list], i: int, source: SourceColumns,
                         image_root: ImageSources | str | os.PathLike | None
                         ) -> tuple[str, list[ImageRef], dict[int, int]]:
    """(question text as written, image references, `<image k>` -> position in the row) of row i."""
    refs: list[ImageRef] = []
    if source.messages is not None:
        text, message_images = _messages_question(batch[source.messages][i])
        refs = to_image_refs(message_images, image_root)
    else:
        text = (batch[source.question][i] if source.question else None) or ""
        fallbacks = [batch[column][i] for column in source.question_fallbacks] + [source.default_question]
        text = text if str(text).strip() else next((f for f in fallbacks if f and str(f).strip()), text)
    text = _without_format_prompt(str(text))
    positions: dict[int, int] = {}
    column_refs: list[ImageRef] = []
    for column in source.images:
        found = to_image_refs(batch[column][i], image_root)
        if found and column in source.numbers:
            positions[source.numbers[column]] = len(column_refs) + 1
        column_refs.extend(found)
    if column_refs:  # prefer the image columns: messages may carry only placeholder references
        refs = column_refs
    return text, [keep_missing_file(ref) for ref in refs], positions


def _messages_question(messages: Any) -> tuple[str, list[Any]]:
    """The last user turn's text and the images referenced in its content blocks."""
    if isinstance(messages, str):
        messages = json.loads(messages)
    if isinstance(messages, dict):
        messages = [messages]
    users = [m for m in messages or [] if m.get("role") == "user"]
    if not users:
        raise ValueError("no user message in the conversation")
    content = users[-1].get("content")
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for block in content or []:
        kind = block.get("type")
        if kind == "text" or (kind is None and "text" in block):
            texts.append(block.get("text") or "")
        elif kind in ("image", "image_url") or "image" in block:
            ref = block.get("image") or block.get("image_url") or block.get("path") or block.get("url")
            if isinstance(ref, dict):
                ref = ref.get("url") or ref.get("path") or ref
            if ref is not None:
                images.append(ref)
    return "\n".join(t for t in texts if t), images


def _without_format_prompt(text: str) -> str:
    """Drop the paper's format instruction when a source prompt already ends with it."""
    suffix = FORMAT_PROMPT.strip()
    stripped = text.rstrip()
    return stripped[: -len(suffix)].rstrip() if stripped.endswith(suffix) else text


def _with_hints(text: str, unit: Any, precision: Any) -> str:
    """MathVista's `unit` and `precision`, which its own `query` column states, kept in the question:
    ` (Unit: cm)` as MathVista writes it, and the number of decimal places asked for."""
    if isinstance(unit, str) and unit.strip() and "(unit:" not in text.lower():
        text = f"{text.rstrip()} (Unit: {unit.strip()})"
    if isinstance(precision, (int, float)) and not isinstance(precision, bool) and not math.isnan(precision):
        places = int(precision)
        rule = "a whole number" if places == 0 else f"{places} decimal place{'' if places == 1 else 's'}"
        text = f"{text.rstrip()}\nGive the answer to {rule}."
    return text
