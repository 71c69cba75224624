"""`is_correct`: a response's final boxed answer against the ground truth, composed from the parts of
`rap_hf.verify` (the response read, the options read, the answers compared).

This is where a rule about what counts as "the same answer" as a whole is decided; how one answer
is read (`answers`, `quantities`, `normalize`) and how options are named (`choices`) live in their
modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.schema import OPTION_LETTERS, parse_choices
from .answers import Answer, read_answer, same
from .choices import gold_letter, gold_option_index, grade_choice, named_letter, read_options
from .normalize import plain_form
from .response import extract_answer


def _grade_free(prediction: str, gold: str, options: tuple[Answer, ...] | None) -> bool:
    gold_as_letter = gold_letter(plain_form(gold))
    if gold_as_letter is not None:  # an option letter without options to read (or out of their range)
        return named_letter(plain_form(prediction)) == gold_as_letter
    if options:
        letter = named_letter(plain_form(prediction))
        if letter is not None and letter in OPTION_LETTERS[: len(options)]:
            return same(options[OPTION_LETTERS.find(letter)], read_answer(gold))
    return same(read_answer(prediction), read_answer(gold))


def is_correct(response: str | None, answer: str, choices: Sequence[str] | None = None) -> bool:
    """Whether the final boxed answer of `response` matches the ground truth `answer`.

    Args:
        response: The model's full response; only its last `\\boxed{}` counts.
        answer: Ground truth as a dataset writes it (a non-string is read as its text): a number
            or expression (`$...$`, `\\boxed{}`, units and unicode maths allowed), a word or
            phrase, an option letter, or an option's text.
        choices: The options of a multiple-choice row, if any (a list, or the text / dict forms
            `parse_choices` reads). Then the boxed answer may name the letter ("B", "(B)",
            "B. blue") or give the value of the option, which must match it and no other option.

    Returns:
        True only when a boxed answer exists and matches. Words and letters are compared as
        normalised strings, plain numbers exactly, anything else through math-verify (so "0.5"
        matches "\\frac{1}{2}", "3" does not match "3.5", "-5" does not match "5").
    """
    prediction = extract_answer(response)
    gold = "" if answer is None else str(answer).strip()
    if prediction is None or not gold:
        return False
    if choices is not None and not isinstance(choices, (list, tuple)):
        choices = parse_choices(choices)
    options = read_options(tuple(str(c) for c in choices)) if choices else None
    if options:
        gold_index = gold_option_index(gold, options)
        if gold_index is not None:
            return grade_choice(prediction, gold_index, options)
    return _grade_free(prediction, gold, options)
