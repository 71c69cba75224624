"""What grading reads from a model's response: its final `\\boxed{}` answer, the final group of boxes
when it boxes each part of a multi-part answer, and whether it keeps the format RAP's rollouts and the
format reward ask for (reasoning in `<think> </think>`, then a boxed answer).

A group of boxes is the last box and the boxes before it that only a short connector separates from
the next one: `\\boxed{1}, \\boxed{2}`, `\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}`,
`\\boxed{(3, 3)} for part (a) and \\boxed{(1, 1)}`, or boxes side by side (`\\boxed{20} \\boxed{143}`).
A box further back, behind reasoning ("First guess \\boxed{3}. Recheck: ... \\boxed{4}"), is a draft
and is not read.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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


class Boxed(NamedTuple):
    """One boxed answer and the text just before it on its line (where a label such as "x =" sits)."""

    content: str
    lead: str


# Markup between two boxes that says nothing: delimiters, spacing, \text{} wrappers, line breaks.
_QUIET_MARKUP = re.compile(r"\\(?:text|textnormal|textrm|mathrm|mbox)\s*\{([^{}]*)\}|\\q?quad(?![A-Za-z])"
                           r"|\\[()\[\],;:! ]|\\\\|\$|&"
                           r"|\b[Pp]art\b|\(\s*(?:[a-h]|i{1,3}|iv|vi{0,3}|\d)\s*\)")  # "(b)", "part (ii)": labels
_TAG = re.compile(r"</?[A-Za-z]+>")
_CONNECTOR = re.compile(r"[,;、，；或和及]|\b(?:and|or)\b", re.IGNORECASE)
_MAX_JOINING_WORDS = 8  # "for part (a) and", "are: x =", not a sentence of reasoning
_MAX_QUIET_CHARS = 10  # "$$ ", ".\n\n", "\\] \\[": boxes side by side
_MAX_JOINING_CHARS = 60
_MAX_BETWEEN_CHARS = 400  # more text than any markup around a connector: reasoning


def _balanced_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each outermost box with balanced braces and some content, in order."""
    boxes: list[tuple[int, int, str]] = []
    for match in _BOXED.finditer(text):
        if boxes and match.start() < boxes[-1][1]:
            continue  # a box inside the previous one
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        content = text[match.end() : i - 1].strip() if depth == 0 else ""
        if content:
            boxes.append((match.start(), i, content))
    return boxes


def _joins(between: str) -> bool:
    """Whether the text between two boxes joins them into one answer (a connector, not reasoning)."""
    if len(between) > _MAX_BETWEEN_CHARS or _TAG.search(between):
        return False  # "</think>": the reasoning's box and the answer's are never one answer
    quiet = " ".join(_QUIET_MARKUP.sub(lambda m: f" {m.group(1) or ''} ", between).split())
    words = re.findall(r"[A-Za-z]+", quiet)
    if not words and len(quiet) <= _MAX_QUIET_CHARS:
        return True
    return (len(quiet) <= _MAX_JOINING_CHARS and len(words) <= _MAX_JOINING_WORDS
            and _CONNECTOR.search(quiet) is not None)


def final_boxes(text: str | None) -> list[Boxed]:
    """The final group of boxed answers, in order: the last box and those joined to it by connectors.

    >>> [b.content for b in final_boxes("<think>\\\\boxed{7}?</think> \\\\boxed{(1, 2)}, \\\\boxed{(2, 1)}")]
    ['(1, 2)', '(2, 1)']
    """
    if not text:
        return []
    boxes = _balanced_boxes(text)
    if not boxes:
        return []
    first = len(boxes) - 1
    while first > 0 and _joins(text[boxes[first - 1][1] : boxes[first][0]]):
        first -= 1
    group = []
    for start, _, content in boxes[first:]:
        line_start = text.rfind("\n", 0, start) + 1
        group.append(Boxed(content, text[max(line_start, start - 40) : start]))
    return group


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
