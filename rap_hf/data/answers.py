"""Options and answers: reading a source's choices, rendering them into the question, and the
canonical answer (the option letter for multiple choice).

Sources write options as lists, `{"A": ...}` dicts or lists written as text, and answers as option
texts, letters, 0-based indexes (ScienceQA) or `\\boxed{...}` (ViRL39K); every later stage reads
one form: `(A) ...` lines in the question and the letter as the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .placeholders import strip_image_placeholders

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_choices(value: Any) -> list[str] | None:
    """Choices as a list of strings, from a list, a `{"A": ...}` dict or a JSON/Python list string."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            import ast

            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        choices = [str(c).strip() for c in value if c is not None]
        return choices or None
    return None


def render_question(question: str, choices: Sequence[str] | None = None, *, count: int | None = None,
                    positions: Mapping[int, int] | None = None) -> str:
    """The canonical question: placeholders resolved (`strip_image_placeholders`), then the options
    as `(A) ...` lines (their placeholders always become words: an option may be just `<image 2>`)."""
    question = strip_image_placeholders(question, count=count, positions=positions)
    if choices:
        lines = [f"({OPTION_LETTERS[i]}) {strip_image_placeholders(c, count=count, positions=positions, option=True)}"
                 for i, c in enumerate(choices)]
        question = question + "\nChoices:\n" + "\n".join(lines)
    return question


def _unboxed(text: str) -> str:
    """`\\boxed{X}` -> X when the whole answer is one boxed expression (ViRL39K writes answers so)."""
    if not (text.startswith("\\boxed{") and text.endswith("}")):
        return text
    depth = 0
    for i, char in enumerate(text[len("\\boxed"):], start=len("\\boxed")):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return text[len("\\boxed{"):-1].strip() if i == len(text) - 1 else text
    return text


def answer_index(answer: Any) -> int | None:
    """An answer that is an integer (not a bool), or None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, float) and answer.is_integer():
        return int(answer)
    return None


def canonical_answer(answer: Any, choices: Sequence[str] | None = None) -> str:
    """The answer as a string; with choices, the option letter (boxed in multiple-choice answers:
    docs/method.md, "Rollouts").

    With options, an answer is read as, in order: an integer (0-based index: ScienceQA's
    convention), an option letter (`B`, `(b)`, `B.`), an option's text, a digit string that is no
    option's text (a 0-based index written as text). Without options, numbers stay numbers ("0" is
    the answer 0). A whole-answer `\\boxed{...}` is unwrapped.
    """
    if answer is None:
        return ""
    if isinstance(answer, float) and math.isnan(answer):
        return ""
    index = answer_index(answer)
    if choices and index is not None and 0 <= index < len(choices):
        return OPTION_LETTERS[index]
    if isinstance(answer, (list, tuple)):
        answer = answer[0] if len(answer) == 1 else ", ".join(map(str, answer))
    text = _unboxed(str(answer).strip())
    if choices:
        letters = OPTION_LETTERS[: len(choices)]
        letter = re.fullmatch(r"\(?\s*([A-Za-z])\s*[).:]?", text)
        if letter and letter.group(1).upper() in letters:
            return letter.group(1).upper()
        for option_letter, choice in zip(letters, choices):
            if text == choice or text.lower() == choice.lower():
                return option_letter
        if text.isdigit() and int(text) < len(choices):
            return OPTION_LETTERS[int(text)]
    return text
