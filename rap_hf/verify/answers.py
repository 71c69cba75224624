"""An answer read once (`read_answer`, cached per distinct string) and two answers compared (`same`).

Cheapest first: equal texts (lower-cased, with and without spaces) match; plain numbers with an
optional unit compare as numbers (`rap_hf.verify.quantities`); words and sentences (colours, yes/no,
"quarter past") only ever compare as text, because math-verify parses text as symbol products ("red"
becomes e*d*r); anything else goes through math-verify (`rap_hf.verify.symbolic`), after a trailing
unit is set aside.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from .normalize import plain_form
from .quantities import ASSIGNMENT, MATH_NAMES, NUMBER_WORDS, quantity, same_quantity, split_unit
from .symbolic import math_equal

_WORDS = re.compile(r"^[a-z]+(?:['-][a-z]+)*(?: [a-z]+(?:['-][a-z]+)*)*$")  # "x - y" is mathematics
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}(?![A-Za-z])")
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\{[^{}]*\})?")  # \begin{array}{cc}: no words
_SPELLINGS = {"grey": "gray", "colour": "color", "centre": "center"}
# An inequality's relation and the one variable it is about, before or after it ("x > -2", "-2 < a_1").
_RELATION = r"(?:>|<|\\(?:geq?|leq?|gt|lt|neq?)(?:slant)?(?![A-Za-z]))"
_SUBJECTLESS = re.compile(rf"^{_RELATION}")
_VARIABLE = r"[A-Za-z](?:_\{?\w+\}?)?"
_SUBJECT = re.compile(rf"^({_VARIABLE})\s*{_RELATION}")  # "x > -2"
_TRAILING_SUBJECT = re.compile(rf"{_RELATION}\s*({_VARIABLE})$")  # "-2 < x"


class Answer(NamedTuple):
    """An answer in the forms comparison needs, read once."""

    clean: str  # plain LaTeX, case kept
    key: str  # lower-case, single spaces
    compact: str  # key without spaces
    prose: bool  # words or sentences: compared as text, never symbolically
    quantity: tuple[Fraction, str | None] | None  # a plain number and its unit
    core: str  # `clean` without its trailing unit, for math-verify
    unit: str | None
    name: str | None  # what an assignment names: "x" of "x = 5"


def _is_prose(text: str) -> bool:
    """Words only ("red", "quarter past"), or two or more words of three letters or more."""
    if _WORDS.match(text.lower()):
        return True
    words = _PROSE_WORD.findall(_ENVIRONMENT.sub(" ", text))
    return sum(w.lower() not in MATH_NAMES for w in words) >= 2


@lru_cache(maxsize=1 << 16)
def read_answer(text: str) -> Answer:
    """`text` (a gold or a boxed prediction) in its plain form, read as words, a quantity or mathematics."""
    clean = plain_form(text)
    key = clean.lower()
    core, unit = split_unit(clean)
    prose = _is_prose(core)
    if prose:
        key = " ".join(_SPELLINGS.get(word, word) for word in key.split())
    value = quantity(clean, key) if not _WORDS.match(key) or key in NUMBER_WORDS else None
    assignment = ASSIGNMENT.match(clean)
    name = assignment.group(0).split("=")[0].replace(" ", "") if assignment else None
    return Answer(clean, key, key.replace(" ", ""), prose, value, core, unit, name)


def same(a: Answer, b: Answer) -> bool:
    """Whether answer `a` is answer `b` (what it is checked against): as text, as numbers, or through math-verify."""
    if a.key == b.key or a.compact == b.compact:
        return True
    with_subject = _with_one_subject(a, b)
    if with_subject is not None:
        return same(*with_subject)
    if a.name and b.name and a.name != b.name:
        return False  # "y = 3" does not answer "x = 3"
    if a.quantity is not None and b.quantity is not None:
        return same_quantity(a.quantity, b.quantity)
    if a.prose or b.prose or not a.core or not b.core:
        return False
    if a.unit and b.unit and a.unit != b.unit:
        return False
    if a.core.replace(" ", "") == b.core.replace(" ", ""):
        return True
    return math_equal(a.core, b.core)


def _with_one_subject(a: Answer, b: Answer) -> tuple[Answer, Answer] | None:
    """`a` and `b` about the same variable, when one is an inequality that leaves it out: K12 golds
    write "x > -2" as ">-2", so ">-2" reads as "x>-2" beside "x>-2" (None when neither is such a pair)."""
    for bare, full, flip in ((b, a, False), (a, b, True)):
        subject = _SUBJECT.match(full.clean) or _TRAILING_SUBJECT.search(full.clean)
        if subject and _SUBJECTLESS.match(bare.clean):
            completed = read_answer(subject.group(1) + bare.clean)
            return (completed, b) if flip else (a, completed)
    return None
