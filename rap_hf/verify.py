"""Rule-based answer checking: the final `\\boxed{}` answer against the ground truth.

Built on math-verify for mathematical answers. Words (colours, yes/no) and option letters are
compared as normalised strings first, because math-verify parses text as symbol products ("red"
becomes e*d*r) and a single letter as a variable. This fixes the failures of the released RAP
checker (docs/method.md, "Known defects of the released code"): an empty response never matches
"A" or "yes", "3" does not match "3.5", and "-5" keeps its sign.

All functions are safe off the main thread: math-verify's timeouts use `signal.alarm`, which only
works there, so elsewhere they run without a timeout.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from .data.schema import OPTION_LETTERS

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# The released format reward (EasyR1's `math_format_reward`), applied after the same whitespace
# normalisation around `<`, `>` and `/` that it does.
_FORMAT = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_WORDS = re.compile(r"^[a-z][a-z ']*$")  # words and spaces only: "x - y" is mathematics
_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[.:)]\s*.*)?$", re.DOTALL)


def extract_answer(text: str | None) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None if there is none.

    >>> extract_answer("<think>2+2</think> so \\\\boxed{3} no, \\\\boxed{\\\\frac{8}{2}}")
    '\\\\frac{8}{2}'
    """
    if not text:
        return None
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            content = text[start : i - 1].strip()
            if content:
                return content
    return None


def is_formatted(response: str | None) -> bool:
    """True when the response reasons inside `<think> </think>` and then gives a `\\boxed{}` answer.

    Same rule as the format reward of the released code (EasyR1's `math_format_reward`): the text,
    with whitespace around `<`, `>` and `/` removed, must start with `<think>`, close it, and
    contain `\\boxed{...}` after `</think>`.
    """
    if not response:
        return False
    normalised = re.sub(r"\s*(<|>|/)\s*", r"\1", response.strip())
    return _FORMAT.fullmatch(normalised) is not None


def normalize_text(text: str) -> str:
    """Lower-case, unwrap `\\text{}`-like macros, drop `$`, trailing dots and extra spaces."""
    previous = None
    while previous != text:
        previous, text = text, _WRAPPERS.sub(r"\1", text)
    text = text.replace("$", "").replace("\\,", " ").replace("\\ ", " ").replace("~", " ")
    text = re.sub(r"\s+", " ", text).strip().strip(".").strip()
    return text.lower()


def _option_letter(text: str, choices: Sequence[str] | None) -> str | None:
    """The option letter a text names: "B", "(b)", "B. blue", or the text of a choice."""
    text = text.strip()
    if choices:
        lowered = normalize_text(text)
        for letter, choice in zip(OPTION_LETTERS, choices):
            if lowered == normalize_text(str(choice)):
                return letter
    match = _LETTER.match(text)
    if match:
        letter = match.group(1).upper()
        if choices is None or letter in OPTION_LETTERS[: len(choices)]:
            return letter
    return None


def _is_option_letter(gold: str, choices: Sequence[str] | None) -> bool:
    stripped = gold.strip().strip("()")
    if len(stripped) != 1 or not stripped.isalpha():
        return False
    return choices is not None or stripped.isupper()


def _timeout() -> int | None:
    # math-verify times out through signal.alarm, which raises outside the main thread.
    return 5 if threading.current_thread() is threading.main_thread() else None


def math_equal(prediction: str, gold: str) -> bool:
    """Symbolic/numeric equality of two answers through math-verify (False when either fails to parse)."""
    from math_verify import parse, verify

    timeout = _timeout()

    def _parse(text: str):
        text = text.strip().strip("$")
        return parse(f"${text}$", parsing_timeout=timeout)

    gold_parsed, pred_parsed = _parse(gold), _parse(prediction)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def is_correct(response: str | None, answer: str, choices: Sequence[str] | None = None) -> bool:
    """Whether the final boxed answer of `response` matches the ground truth `answer`.

    Args:
        response: The model's full response; only its last `\\boxed{}` counts.
        answer: Ground truth: a number or expression, a word or phrase, or an option letter.
        choices: The options of a multiple-choice row, if any. Then the boxed answer may name the
            letter ("B", "(B)", "B. blue") or the text of the option.

    Returns:
        True only when a boxed answer exists and matches. Words and letters are compared as
        normalised strings; anything else goes through math-verify (so "0.5" matches
        "\\frac{1}{2}", "3" does not match "3.5", "-5" does not match "5").
    """
    prediction = extract_answer(response)
    gold = (answer or "").strip()
    if prediction is None or not gold:
        return False
    if normalize_text(prediction) == normalize_text(gold):
        return True
    if _is_option_letter(gold, choices) or (choices and _option_letter(gold, choices)):
        gold_letter = _option_letter(gold, choices)
        return gold_letter is not None and _option_letter(prediction, choices) == gold_letter
    if _WORDS.match(normalize_text(gold)):
        return False  # a word answer that did not match as text; never compare it symbolically
    return math_equal(prediction, gold)
