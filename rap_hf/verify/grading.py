"""`is_correct`: a response's final boxed answer against the ground truth, composed from the parts of
`rap_hf.verify` (the response read, the options read, the answers compared).

This is where a rule about what counts as "the same answer" as a whole is decided; how one answer
is read (`answers`, `quantities`, `normalize`), how an answer splits into parts (`parts`) and how
options are named (`choices`) live in their modules.

Several boxes: the response's final group of boxes (`response.final_boxes`: the last box and those a
connector joins to it) is one answer. Its boxes are joined and compared with the gold as one
multi-part answer (`parts.same_parts`: every part of the gold and no other, order-free where the
gold is a set of solutions, ordered where it is a tuple or names its parts). A box repeated ("\\boxed{143}
... \\boxed{143}") is that one value; different values against a one-value gold are wrong, so a hedge
("\\boxed{3} or \\boxed{4}") never wins. A gold that itself holds boxes is read the same way. Multiple
choice and option letters grade one box exactly as they always have; several boxes must each name the
right option ("\\boxed{C} \\boxed{145°}" is right, "\\boxed{B} or \\boxed{C}" is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from ..data.answers import OPTION_LETTERS, parse_choices
from .answers import Answer, read_answer, same
from .choices import gold_letter, gold_option_index, grade_choice, named_letter, read_options
from .normalize import plain_form
from .parts import Part, label_before, read_parts, same_parts
from .response import Boxed, extract_answer, final_boxes


def _distinct(boxes: list[Boxed]) -> list[Boxed]:
    """The boxes without repeats: a value boxed twice ("\\boxed{143} ... \\boxed{143}") is one value."""
    kept: list[Boxed] = []
    for box in boxes:
        if not any(same(read_answer(box.content), read_answer(k.content)) for k in kept):
            kept.append(box)
    return kept


@lru_cache(maxsize=1 << 14)
def _read_gold(gold: str) -> tuple[str, tuple[Part, ...]]:
    """The gold's text and parts; a gold that holds boxes ("n = \\boxed{1,-2}.") is its final boxes."""
    clean = plain_form(gold)  # a gold that is one whole box is already its content here
    boxes = final_boxes(clean) if "\\boxed" in clean or "\\fbox" in clean else []
    if not boxes:
        return gold, read_parts(gold)
    boxes = _distinct(boxes)
    parts = tuple(p for box in boxes for p in read_parts(box.content, label_before(box.lead)))
    return ", ".join(box.content for box in boxes), parts


def _same_answer(boxes: list[Boxed], predictions: list[str], gold: str) -> bool:
    """The final group of boxes (without repeats) against a free-form gold: as one value, or part by part."""
    gold_text, gold_parts = _read_gold(gold)
    per_box = [read_parts(box.content, label_before(box.lead)) for box in boxes]
    parts = [p for box_parts in per_box for p in box_parts]
    if len(parts) == 1 and len(gold_parts) == 1:  # one value each: compared as they always have been
        text = next(p for p, box_parts in zip(predictions, per_box) if box_parts)
        return same(read_answer(text), read_answer(gold_text))
    whole, gold_whole = read_answer(", ".join(b.content for b in boxes)), read_answer(gold_text)
    if whole.key == gold_whole.key or whole.compact == gold_whole.compact:
        return True  # the same text ("6 and 8" for "6 and 8")
    return same_parts(parts, gold_parts)


def _grade_free(boxes: list[Boxed], predictions: list[str], gold: str, options: tuple[Answer, ...] | None) -> bool:
    gold_as_letter = gold_letter(plain_form(gold))
    if gold_as_letter is not None:  # an option letter without options to read (or out of their range)
        return all(named_letter(plain_form(p)) == gold_as_letter for p in predictions)
    if options:
        letters = [named_letter(plain_form(p)) for p in predictions]
        one_gold = len(predictions) == 1 or len(_read_gold(gold)[1]) == 1  # not a multi-part gold "A, C"
        if one_gold and all(letter is not None and letter in OPTION_LETTERS[: len(options)] for letter in letters):
            return all(same(options[OPTION_LETTERS.find(letter)], read_answer(gold)) for letter in letters)
    return _same_answer(boxes, predictions, gold)


def is_correct(response: str | None, answer: str, choices: Sequence[str] | None = None) -> bool:
    """Whether the final boxed answer of `response` matches the ground truth `answer`.

    Args:
        response: The model's full response; its final `\\boxed{}` counts, or its final group of
            boxes when it boxes each part of a multi-part answer (`\\boxed{1}, \\boxed{2}`).
        answer: Ground truth as a dataset writes it (a non-string is read as its text): a number
            or expression (`$...$`, `\\boxed{}`, units and unicode maths allowed), a word or
            phrase, an option letter, or an option's text.
        choices: The options of a multiple-choice row, if any (a list, or the text / dict forms
            `parse_choices` reads). Then the boxed answer may name the letter ("B", "(B)",
            "B. blue") or give the value of the option, which must match it and no other option.

    Returns:
        True only when a boxed answer exists and matches. Words and letters are compared as
        normalised strings, plain numbers exactly, anything else through math-verify (so "0.5"
        matches "\\frac{1}{2}", "3" does not match "3.5", "-5" does not match "5"). A multi-part
        answer matches when it gives every part of the gold and no other (the module docstring).
    """
    prediction = extract_answer(response)
    gold = "" if answer is None else str(answer).strip()
    if prediction is None or not gold:
        return False
    if choices is not None and not isinstance(choices, (list, tuple)):
        choices = parse_choices(choices)
    options = read_options(tuple(str(c) for c in choices)) if choices else None
    boxes = _distinct(final_boxes(response)) or [Boxed(prediction, "")]
    # One box: its content exactly as it has always been read; several: each must be right (no hedge).
    predictions = [prediction] if len(boxes) == 1 else [box.content for box in boxes]
    if options:
        gold_index = gold_option_index(gold, options)
        if gold_index is not None:
            return all(grade_choice(p, gold_index, options) for p in predictions)
    return _grade_free(boxes, predictions, gold, options)
