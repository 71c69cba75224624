"""One plain form for an answer, gold or predicted, before anything compares it.

Delimiters (`$ $`, `$$ $$`, `\\( \\)`, `\\[ \\]`, a whole `\\boxed{}`) and decoration (`\\text{}`,
`\\mathrm`, `\\left`, thin spaces, a final full stop) are removed, unicode maths is written as LaTeX
(`rap_hf.verify.unicode_math`), every degree mark is written as °, and digits grouped in threes with
LaTeX marks (`32,\\! 349`, `12{,}000`, `32\\,349`) as `32,349`.
"""

from __future__ import annotations

import re

from .unicode_math import from_unicode

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WHOLE_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_MACROS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textup|mathrm|mathbf|mathit|mathsf|mathnormal|mbox"
    r"|operatorname|boldsymbol|number|num)\s*\{([^{}]*)\}")  # \number{24}, siunitx's \num{24}: the number
_BARE_TEXT_MACROS = re.compile(r"\\(?:mathrm|mathbf|mathit|text|textbf)\s*(\\[A-Za-z]+|[A-Za-z0-9])")
_RM_GROUP = re.compile(r"\{\\(?:rm|bf|it)\s+([^{}]*)\}")
_DEGREES = re.compile(r"(?:\{\s*\})?\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ)|\\degree(?![A-Za-z])|\s*°")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\displaystyle(?![A-Za-z])")
# "\\ " and "\\," are spaces, "\\\\ " is a matrix row break; "\\quadx" is "\\quad x" (no such macro).
_SPACES = re.compile(r"(?<!\\)\\[,;:> ]|\\q?quad|~")
# 32,\! 349 and 12{,}000 and 32\,349: digits grouped in threes, written as 32,349.
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:,\\!|\{,\}|\\[,!])\s*\d{3}(?!\d))+")
_GROUP_MARK = re.compile(r"(?:,\\!|\{,\}|\\[,!])\s*")
_TRAILING_STOP = re.compile(r"(?:(?<!\.)\.(?!\.)|[,;])+\s*$")  # a full stop or comma, not an ellipsis "..."
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d)|\\sqrt\s+([A-Za-z])")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_PLAIN_PI = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")  # "2 pi", "2pi" -> 2\pi
_PLAIN_SQRT = re.compile(r"(?<![A-Za-z\\])sqrt\s*\(([^()]*)\)")  # "sqrt(2)" -> \sqrt{2}
_BRACED_POWER = re.compile(r"\^\{\s*(\w)\s*\}")  # x^{2} -> x^2


def normalize_text(text: str) -> str:
    """Lower-case, unwrap `\\text{}`-like macros, drop `$`, trailing dots and extra spaces."""
    previous = None
    while previous != text:
        previous, text = text, _WRAPPERS.sub(r"\1", text)
    text = text.replace("$", "").replace("\\,", " ").replace("\\ ", " ").replace("~", " ")
    text = re.sub(r"\s+", " ", text).strip().strip(".").strip()
    return text.lower()


def _wraps_whole(text: str, open_end: int) -> bool:
    """Whether the brace opened just before `open_end` closes at the very end of `text`."""
    depth = 1
    for i in range(open_end, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i == len(text) - 1
    return False


def _unwrap(text: str) -> str:
    """Remove delimiters around the whole answer: `$ $`, `$$ $$`, `\\( \\)`, `\\[ \\]`, `\\boxed{}`, `{}`."""
    while True:
        previous = text = text.strip()
        for opening, closing in _DELIMITERS:
            if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
                text = text[len(opening) : -len(closing)].strip()
                break
        box = _WHOLE_BOX.match(text)
        if box and _wraps_whole(text, box.end()):
            text = text[box.end() : -1]
        elif text.startswith("{") and _wraps_whole(text, 1):
            text = text[1:-1]
        if text == previous:
            return text


def plain_form(text: str) -> str:
    """The answer as plain LaTeX, case kept: no delimiters, no decoration, degrees as °."""
    text = text.strip()
    if not text.isascii():
        text = from_unicode(text)
    text = _unwrap(text)
    previous = None
    while previous != text:  # nested \text{\textbf{...}}
        previous, text = text, _TEXT_MACROS.sub(r" \1", text)
    text = _RM_GROUP.sub(r" \1", text)
    text = _BARE_TEXT_MACROS.sub(r"\1", text)
    text = _THOUSANDS.sub(lambda m: _GROUP_MARK.sub(",", m.group(0)), text)
    text = text.replace("\\$", "").replace("$", "").replace("\\%", "%").replace("{,}", ",")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\!", "")
    text = _LEFT_RIGHT.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _DEGREES.sub("°", text)
    text = _SQRT_SHORT.sub(lambda m: "\\sqrt{" + (m.group(1) or m.group(2)) + "}", text)
    text = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", text)
    text = _BRACED_POWER.sub(r"^\1", text)
    if "pi" in text or "sqrt" in text:
        text = _PLAIN_SQRT.sub(r"\\sqrt{\1}", _PLAIN_PI.sub(r"\\pi ", text))
    text = " ".join(text.split())
    return _unwrap(_TRAILING_STOP.sub("", text))
