"""Multi-part answers: an answer read as its parts, and two multi-part answers compared.

Parts are separated, outside any bracket, by a comma, a semicolon, "and" or "or" ("19, 46, and 82",
"6 \\text{ and } 8", "x = 1 \\text{ or } x = 2"); a bracketed tuple, interval, union of intervals or
matrix is one part. Digits grouped in threes ("1,000", "12,000,023") are one number, not parts, and
"a \\pm b" is two parts, "a + b" and "a - b". Against an answer of several parts, a set written as a
set ("\\{1, 3\\}") is its elements and a union of intervals its intervals.

A part may name what it gives: "x = 1", "a_{37} = 19", "x \\in (2, 12)", or a name before the whole
list ("n = 1, 2, 3", "(x, y) = (5, 8) and (8, 5)") or before its box ("y_1 = \\boxed{...}").

Two multi-part answers are the same when every part of the gold is matched by one part of the
answer and no part is left over: order-free where the gold is a set of solutions ("-2, 1", "(2, 2),
(6, 2)", "x = 1, x = 2"), by name where the gold names different things ("k = 45, n = 2") and the
answer names them too, and in order where it does not ("\\boxed{45} and \\boxed{2}"). A tuple stays
one ordered value ("(1, 2)" is not "(2, 1)"), except against parts that name its components
("x = 1, y = 2" gives "(1, 2)").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from .answers import Answer, read_answer, same
from .normalize import plain_form

# What can be named: "x", "x_1", "a_{37}", "\alpha", "f(x)", "y'", or a tuple of those: "(x, y)".
_SYMBOL = r"(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z]\))?'?"
_NAME = rf"(?:{_SYMBOL}|\(\s*{_SYMBOL}(?:\s*,\s*{_SYMBOL})+\s*\))"
_NAMED = re.compile(rf"^\s*({_NAME})\s*(?:=|\\in(?![A-Za-z]))\s*(?!=)(.+)$", re.DOTALL)
_LABEL = re.compile(rf"(?:^|(?<=[\s$(,;:]))({_NAME})\s*(?:=|\\in(?![A-Za-z]))\s*$")
_LEAD_DELIMITERS = re.compile(r"(?:\$|\\\(|\\\[|\s)+$")
_SEPARATOR = re.compile(r"\s*[,;、；]\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+|\s*[或和及]\s*", re.IGNORECASE)
_UNION = re.compile(r"\s*\\cup(?![A-Za-z])\s*")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_OPENING = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
_ENVIRONMENT = re.compile(r"\\(begin|end)\{[^{}]*\}|\\(langle|rangle)(?![A-Za-z])")
_PLUS_MINUS = re.compile(r"\\(pm|mp)(?![A-Za-z])\s*")
_HIDDEN = "\0"


class Part(NamedTuple):
    """One part of an answer: what it names, if anything ("x" of "x = 1"), and its value."""

    name: str | None
    value: Answer


def _name_key(name: str) -> str:
    """The name without spaces and braces: a_{37} and a_37, (x, y) and (x,y) name the same thing."""
    return re.sub(r"[\s{}]", "", name)


def _names_agree(a: str, b: str) -> bool:
    """Whether two names name the same thing; x_1 and x_2 are solutions for x ("x = 1 or x = 2")."""
    a, b = _name_key(a), _name_key(b)
    return a == b or a.split("_")[0] == b or b.split("_")[0] == a


def _top_level(text: str) -> str:
    """`text` with every character inside brackets, environments or thousands hidden (same length)."""
    flat, depth, i = [], 0, 0
    while i < len(text):
        token = _ENVIRONMENT.match(text, i)
        if token:  # \begin{pmatrix} ... \end{pmatrix}, \langle ... \rangle
            opening = token.group(1) == "begin" or token.group(2) == "langle"
            depth = depth + 1 if opening else max(depth - 1, 0)
            flat.append(_HIDDEN * len(token.group(0)))
            i = token.end()
            continue
        char = text[i]
        step = _OPENING.get(char, 0)
        if step < 0:
            depth = max(depth - 1, 0)
        flat.append(char if depth == 0 and step == 0 else _HIDDEN)
        depth += max(step, 0)
        i += 1
    flat_text = "".join(flat)
    return _THOUSANDS.sub(lambda m: _HIDDEN * len(m.group(0)), flat_text)


def split_parts(clean: str) -> list[str]:
    """The parts of a plain-form answer, split at commas, semicolons, "and" and "or" outside brackets."""
    flat = _top_level(clean)
    pieces, start = [], 0
    for match in _SEPARATOR.finditer(flat):
        pieces.append(clean[start : match.start()])
        start = match.end()
    pieces.append(clean[start:])
    return [p.strip() for p in pieces if p.strip()]


def _set_elements(clean: str) -> list[str] | None:
    """The elements of an answer written as a set, "\\{1, 3\\}"; None for anything else."""
    if not (clean.startswith("\\{") and clean.endswith("\\}")):
        return None
    if _top_level(clean)[1:].strip(_HIDDEN):  # "\{1\} \cup \{2\}" is not one set
        return None
    return split_parts(clean[2:-2].strip())


def _tuple_components(clean: str) -> list[str] | None:
    """The components of a round-bracketed tuple, "(1, 2)" -> ["1", "2"]; None for anything else."""
    if not (clean.startswith("(") and clean.endswith(")")) or _HIDDEN * len(clean) != _top_level(clean):
        return None
    components = split_parts(clean[1:-1])
    return components if len(components) > 1 else None


def _with_plus_minus(value: str) -> list[str]:
    """One "\\pm" is two answers: 1 \\pm \\sqrt{19} -> ["1 +\\sqrt{19}", "1 -\\sqrt{19}"]."""
    signs = _PLUS_MINUS.findall(value)
    if len(signs) != 1:
        return [value]
    first, second = ("+", "-") if signs[0] == "pm" else ("-", "+")
    return [_PLUS_MINUS.sub(first, value), _PLUS_MINUS.sub(second, value)]


def _named(text: str) -> tuple[str | None, str]:
    match = _NAMED.match(text)
    if not match or "=" in _top_level(match.group(2)):
        return None, text
    return match.group(1), match.group(2).strip()


def label_before(lead: str) -> str | None:
    """The name a box is given in the text before it: "y_1 = " in "$y_1 = \\boxed{...}$", "x \\in "."""
    match = _LABEL.search(_LEAD_DELIMITERS.sub("", lead))
    return match.group(1) if match else None


@lru_cache(maxsize=1 << 14)
def read_parts(text: str, label: str | None = None) -> tuple[Part, ...]:
    """`text` (a gold, or one boxed answer given `label` before its box) as its parts, each read once."""
    clean = plain_form(text)
    name, body = _named(clean)  # "n = 1, 2, 3": the name of every part
    pieces = split_parts(body)
    parts = []
    for piece in pieces:
        own_name, value = _named(piece) if len(pieces) > 1 else (None, piece)
        for one in [value] if _set_elements(value) else _with_plus_minus(value):  # a set's own, later
            parts.append(Part(own_name or name or label, read_answer(one)))
    return tuple(parts)


def _same_part(answer: Part, gold: Part) -> bool:
    if answer.name and gold.name and not _names_agree(answer.name, gold.name):
        return False
    return same(answer.value, gold.value)


def _matched(answer: Sequence[Part], gold: Sequence[Part]) -> bool:
    """Whether the parts pair up one to one (a bipartite matching: order-free, each part used once)."""
    owner: dict[int, int] = {}  # answer part -> the gold part it is matched to

    def place(g: int, seen: set[int]) -> bool:
        for a in range(len(answer)):
            if a not in seen and _same_part(answer[a], gold[g]):
                seen.add(a)
                if a not in owner or place(owner[a], seen):
                    owner[a] = g
                    return True
        return False

    return all(place(g, set()) for g in range(len(gold)))


def _distinctly_named(parts: Sequence[Part]) -> bool:
    names = [p.name and _name_key(p.name) for p in parts]
    return len(parts) > 1 and all(names) and len(set(names)) == len(names)


def _unpacked(single: Part, others: Sequence[Part]) -> list[Part] | None:
    """A tuple's components as parts, when `others` name as many different things ("x = 1, y = 2")."""
    components = _tuple_components(single.value.clean)
    if components is None or len(components) != len(others) or not _distinctly_named(others):
        return None
    names = _tuple_components(single.name or "") or [None] * len(components)
    if len(names) != len(components):
        names = [None] * len(components)
    return [Part(n, read_answer(c)) for n, c in zip(names, components)]


def _in_order(answer: Sequence[Part], gold: Sequence[Part]) -> bool:
    return len(answer) == len(gold) and all(_same_part(a, g) for a, g in zip(answer, gold))


def _union_pieces(clean: str) -> list[str] | None:
    """The intervals of a union, "(2, 12) \\cup (12, 102)" -> ["(2, 12)", "(12, 102)"]; None for anything else."""
    flat = _top_level(clean)
    cuts = [m.span() for m in _UNION.finditer(flat)]
    if not cuts:
        return None
    edges = [0] + [edge for cut in cuts for edge in cut] + [len(clean)]
    return [clean[edges[i] : edges[i + 1]].strip() for i in range(0, len(edges), 2)]


def _elements(parts: Sequence[Part]) -> Sequence[Part]:
    """A lone set ("\\{1, 3\\}") or union of intervals as its members, each named as the whole was;
    other parts as they are. Only against a gold or answer of several parts."""
    clean = parts[0].value.clean if len(parts) == 1 else ""
    members = _set_elements(clean) or _union_pieces(clean)
    if not members:
        return parts
    return [Part(parts[0].name, read_answer(one)) for m in members for one in _with_plus_minus(m)]


def same_parts(answer: Sequence[Part], gold: Sequence[Part]) -> bool:
    """Whether a multi-part answer gives every part of the gold and no other (see the module docstring)."""
    answer, gold = _elements(answer), _elements(gold)
    if len(gold) == 1 and len(answer) > 1 and (components := _unpacked(gold[0], answer)):
        return _matched(answer, components) if components[0].name else _in_order(answer, components)
    if len(answer) == 1 and len(gold) > 1 and (components := _unpacked(answer[0], gold)):
        return _matched(components, gold) if components[0].name else _in_order(components, gold)
    if len(answer) != len(gold):
        return False
    if _distinctly_named(gold) and not any(p.name for p in answer):
        return _in_order(answer, gold)  # "45 and 2" for "k = 45, n = 2"
    return _matched(answer, gold)
