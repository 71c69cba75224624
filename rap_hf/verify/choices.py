"""Multiple choice: option letters, options read as answers, and a response graded against the options.

The gold is the option letter, or the option's text. The response is right when it names the right
letter ("C", "(C)", "C.", "Option C"), or the right letter with that option's value ("C. 145°"), or a
value that matches the right option and no other. Another option's value, a value equal to two
options, and a letter whose value names another option are wrong. A bare letter is read as a letter
first (the prompt asks for the letter), even when an option's text is itself a letter; a letter
beyond the options ("Q" of four) is read as a value. Options that start with their own label
("A. 6 cm") are read without it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..data.answers import OPTION_LETTERS
from .answers import Answer, read_answer, same
from .normalize import plain_form

_BARE_LETTER = re.compile(r"^(?:(?:option|choice|answer)\s*:?\s*)?\(?\s*([A-Za-z])\s*\)?\s*[.:)]?$", re.IGNORECASE)
_LETTER_AND_TEXT = re.compile(
    r"^(?:(?:option|choice)\s*)?(?:\(\s*([A-Za-z])\s*\)\s*[.:]?|([A-Za-z])\s*[.:)])\s*(\S.*)$",
    re.IGNORECASE | re.DOTALL)


def _bare_letter(clean: str) -> str | None:
    match = _BARE_LETTER.match(clean)
    return match.group(1) if match else None


def _letter_and_text(clean: str) -> tuple[str, str] | None:
    match = _LETTER_AND_TEXT.match(clean)
    if not match:
        return None
    return (match.group(1) or match.group(2)), match.group(3)


def gold_letter(clean: str) -> str | None:
    """The option letter a gold names: "A", "(A)", "$$A$$" (capitals only: "a" may be a variable)."""
    letter = _bare_letter(clean)
    return letter if letter and letter.isupper() else None


def named_letter(clean: str) -> str | None:
    """The letter a response names, alone ("c", "(C)") or before a text ("C. 145°"), upper-cased."""
    letter = _bare_letter(clean)
    if letter is None:
        pair = _letter_and_text(clean)
        letter = pair[0] if pair else None
    return letter.upper() if letter else None


@lru_cache(maxsize=1 << 14)
def read_options(choices: tuple[str, ...]) -> tuple[Answer, ...]:
    """The options as answers, each without a label of its own letter ("A. 6 cm" -> "6 cm")."""
    answers = []
    for letter, choice in zip(OPTION_LETTERS, choices):
        clean = plain_form(choice)
        pair = _letter_and_text(clean)
        if pair and pair[0] == letter:
            clean = pair[1]
        answers.append(read_answer(clean))
    return tuple(answers)


def _agrees(text: Answer, option: Answer) -> bool:
    """Whether the text after a letter ("C. 145°") agrees with that letter's option."""
    if same(text, option):
        return True
    return option.prose and re.search(rf"\b{re.escape(option.key)}\b", text.key) is not None


def gold_option_index(gold: str, options: tuple[Answer, ...]) -> int | None:
    """Which option the gold names: its letter, or else the one option its text matches."""
    clean = plain_form(gold)
    letter = gold_letter(clean)
    if letter is None:  # "B. 6cm", "(B) 6cm"
        pair = _letter_and_text(clean)
        letter = pair[0] if pair and pair[0].isupper() and pair[0] in OPTION_LETTERS[: len(options)] else None
    if letter is not None:
        index = OPTION_LETTERS.find(letter)
        return index if index < len(options) else None
    answer = read_answer(gold)
    exact = [i for i, o in enumerate(options) if o.key == answer.key or o.compact == answer.compact]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None
    matching = [i for i, o in enumerate(options) if same(answer, o)]
    return matching[0] if len(matching) == 1 else None


def grade_choice(prediction: str, gold_index: int, options: tuple[Answer, ...]) -> bool:
    """Whether the boxed `prediction` names the option at `gold_index` (by letter, letter and value, or value)."""
    clean = plain_form(prediction)
    letter = _bare_letter(clean)
    if letter is not None and letter.upper() in OPTION_LETTERS[: len(options)]:
        return OPTION_LETTERS.find(letter.upper()) == gold_index
    pair = _letter_and_text(clean)
    if pair is not None and pair[0].upper() in OPTION_LETTERS[: len(options)]:
        index, text = OPTION_LETTERS.find(pair[0].upper()), read_answer(pair[1])
        if any(same(text, o) for i, o in enumerate(options) if i != index):
            return False  # "C. 140°" where 140° is B: the response contradicts itself
        return index == gold_index and _agrees(text, options[index])
    # A value: it must match the right option and no other.
    answer = read_answer(prediction)
    if not same(answer, options[gold_index]):
        return False
    return not any(same(answer, o) for i, o in enumerate(options) if i != gold_index)
