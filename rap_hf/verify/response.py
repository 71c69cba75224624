"""What grading reads from a model's response: its final `\\boxed{}` answer, and whether it keeps the
format RAP's rollouts and the format reward ask for (reasoning in `<think> </think>`, then a boxed answer).
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# The released format reward (EasyR1's `math_format_reward`), applied after the same whitespace
# normalisation around `<`, `>` and `/` that it does.
_FORMAT = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)


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
