"""Rule-based answer checking: the final `\\boxed{}` answer against the ground truth.

Both sides are first brought to one plain form, cheaply (cached per distinct string): delimiters
(`$ $`, `$$ $$`, `\\( \\)`, a whole `\\boxed{}`) and decoration (`\\text{}`, `\\mathrm`, `\\left`,
thin spaces, a final full stop) removed, unicode maths written as LaTeX (√, π, °, ×, ÷, −,
superscripts, ½, full-width forms), every degree mark written as °. Then, cheapest first:

- equal texts (lower-cased, with and without spaces) match;
- plain numbers with an optional unit ("6cm", "145°", "\\frac{17}{2}", "2\\frac{1}{2}", "1,000",
  "25%", "6 \\times 10^4", "three", "4 objects", the value of "x = 5") compare exactly as numbers
  (to 6 decimals, as math-verify rounds), and by unit where both sides give one ("6 m" is not
  "6 cm"; units are compared, never converted);
- words and sentences (colours, yes/no, "quarter past") only ever compare as text, because
  math-verify parses text as symbol products ("red" becomes e*d*r);
- anything else goes through math-verify (parses and verdicts cached), after a trailing unit is set
  aside.

Multiple choice (`choices` given; the gold is the option letter, or the option's text): the
response is right when it names the right letter ("C", "(C)", "C.", "Option C"), or the right
letter with that option's value ("C. 145°"), or a value that matches the right option and no other.
Another option's value, a value equal to two options, and a letter whose value names another option
are wrong. A bare letter is read as a letter first (the prompt asks for the letter), even when an
option's text is itself a letter; a letter beyond the options ("Q" of four) is read as a value.
Options that start with their own label ("A. 6 cm") are read without it.

This fixes the failures of the released RAP checker (docs/method.md, "Known defects of the released
code"): an empty response never matches "A" or "yes", "3" does not match "3.5", and "-5" keeps its
sign. `python -m benchmarks.grading_agreement` compares both on `tests/data/grading_cases.jsonl`.

All functions are safe off the main thread: math-verify's timeouts use `signal.alarm`, which only
works there, so elsewhere they run without a timeout.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from .data.schema import OPTION_LETTERS, parse_choices

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# The released format reward (EasyR1's `math_format_reward`), applied after the same whitespace
# normalisation around `<`, `>` and `/` that it does.
_FORMAT = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")


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


# --- Unicode maths as LaTeX --------------------------------------------------------------------

_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_VULGAR = {"½": "1}{2", "⅓": "1}{3", "⅔": "2}{3", "¼": "1}{4", "¾": "3}{4", "⅕": "1}{5", "⅖": "2}{5",
           "⅗": "3}{5", "⅘": "4}{5", "⅙": "1}{6", "⅚": "5}{6", "⅛": "1}{8", "⅜": "3}{8", "⅝": "5}{8",
           "⅞": "7}{8"}
_VULGAR_RUN = re.compile(r"(\d*)\s*([" + "".join(_VULGAR) + "])")
_ROOT = re.compile(r"([√∛∜])\s*(\{[^{}]*\}|\([^()]*\)|\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+)?")
_SYMBOLS = {
    "π": r"\pi ", "°": "°", "×": r"\times ", "·": r"\cdot ", "⋅": r"\cdot ", "÷": r"\div ", "−": "-",
    "∞": r"\infty ", "≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "±": r"\pm ", "∠": r"\angle ",
    "△": r"\triangle ", "θ": r"\theta ", "α": r"\alpha ", "β": r"\beta ", "γ": r"\gamma ",
    "φ": r"\phi ", "λ": r"\lambda ", "μ": r"\mu ", "σ": r"\sigma ", "ω": r"\omega ", "Δ": r"\Delta ",
    "∘": "°", "º": "°", "ℼ": r"\pi ",
}
_SYMBOL_RUN = re.compile("[" + "".join(_SYMBOLS) + "]")


def _root(match: re.Match) -> str:
    index = {"√": "", "∛": "[3]", "∜": "[4]"}[match.group(1)]
    body = match.group(2)
    if body is None:
        return "\\sqrt" + index
    if body[0] in "{(":
        body = body[1:-1]
    return "\\sqrt" + index + "{" + body + "}"


def _vulgar(match: re.Match) -> str:
    whole, fraction = match.group(1), "\\frac{" + _VULGAR[match.group(2)] + "}"
    return f"({whole}+{fraction})" if whole else fraction


def _from_unicode(text: str) -> str:
    """Unicode maths as LaTeX: x² -> x^{2}, 1½ -> (1+\\frac{1}{2}), 3√2 -> 3\\sqrt{2}, 108π -> 108\\pi."""
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT_DIGITS) + "}", text)
    text = _VULGAR_RUN.sub(_vulgar, text)
    text = unicodedata.normalize("NFKC", text)  # full-width forms (Chinese datasets), ℃ -> °C
    text = _ROOT.sub(_root, text)
    return _SYMBOL_RUN.sub(lambda m: _SYMBOLS[m.group(0)], text)


# --- One plain form ----------------------------------------------------------------------------

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WHOLE_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_MACROS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textup|mathrm|mathbf|mathit|mathsf|mathnormal|mbox"
    r"|operatorname|boldsymbol)\s*\{([^{}]*)\}")
_BARE_TEXT_MACROS = re.compile(r"\\(?:mathrm|mathbf|mathit|text|textbf)\s*(\\[A-Za-z]+|[A-Za-z0-9])")
_RM_GROUP = re.compile(r"\{\\(?:rm|bf|it)\s+([^{}]*)\}")
_DEGREES = re.compile(r"(?:\{\s*\})?\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ)|\\degree(?![A-Za-z])|\s*°")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\displaystyle(?![A-Za-z])")
_SPACES = re.compile(r"\\[,;:> ]|\\q?quad(?![A-Za-z])|~")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d)|\\sqrt\s+([A-Za-z])")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_PLAIN_PI = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")  # "2 pi", "2pi" -> 2\pi
_PLAIN_SQRT = re.compile(r"(?<![A-Za-z\\])sqrt\s*\(([^()]*)\)")  # "sqrt(2)" -> \sqrt{2}
_BRACED_POWER = re.compile(r"\^\{\s*(\w)\s*\}")  # x^{2} -> x^2
_WORDS = re.compile(r"^[a-z]+(?:['-][a-z]+)*(?: [a-z]+(?:['-][a-z]+)*)*$")  # "x - y" is mathematics


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


def _clean(text: str) -> str:
    """The answer as plain LaTeX, case kept: no delimiters, no decoration, degrees as °."""
    text = text.strip()
    if not text.isascii():
        text = _from_unicode(text)
    text = _unwrap(text)
    previous = None
    while previous != text:  # nested \text{\textbf{...}}
        previous, text = text, _TEXT_MACROS.sub(r" \1", text)
    text = _RM_GROUP.sub(r" \1", text)
    text = _BARE_TEXT_MACROS.sub(r"\1", text)
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
    return _unwrap(text.rstrip(".,;").rstrip())


# --- Numbers and units -------------------------------------------------------------------------

_UNIT_ALIASES = {
    "°": ("°", "degrees", "degree", "deg"),
    "°c": ("°c", "degrees celsius", "celsius"),
    "°f": ("°f", "degrees fahrenheit", "fahrenheit"),
    "%": ("%", "percent", "per cent"),
    "mm": ("mm", "millimeters", "millimetres", "millimeter", "millimetre"),
    "cm": ("cm", "centimeters", "centimetres", "centimeter", "centimetre"),
    "km": ("km", "kilometers", "kilometres", "kilometer", "kilometre"),
    "m": ("m", "meters", "metres", "meter", "metre"),
    "in": ("in", "inches", "inch"),
    "ft": ("ft", "feet", "foot"),
    "yd": ("yd", "yards", "yard"),
    "mi": ("miles", "mile"),
    "mm^2": ("mm^2", "mm^{2}", "square millimeters", "square millimetres"),
    "cm^2": ("cm^2", "cm^{2}", "square centimeters", "square centimetres", "sq cm"),
    "m^2": ("m^2", "m^{2}", "square meters", "square metres"),
    "km^2": ("km^2", "km^{2}", "square kilometers", "square kilometres"),
    "in^2": ("in^2", "in^{2}", "square inches", "sq in"),
    "ft^2": ("ft^2", "ft^{2}", "square feet", "sq ft"),
    "cm^3": ("cm^3", "cm^{3}", "cubic centimeters", "cubic centimetres"),
    "m^3": ("m^3", "m^{3}", "cubic meters", "cubic metres"),
    "units^2": ("units^2", "units^{2}", "square units", "sq units", "sq. units"),
    "units": ("units", "unit"),
    "mg": ("mg", "milligrams"), "g": ("g", "grams", "gram"), "kg": ("kg", "kilograms", "kilogram"),
    "lb": ("lb", "lbs", "pounds", "pound"), "oz": ("oz", "ounces", "ounce"),
    "ml": ("ml", "milliliters", "millilitres"), "l": ("l", "liters", "litres", "liter", "litre"),
    "s": ("s", "sec", "secs", "seconds", "second"), "min": ("min", "mins", "minutes", "minute"),
    "h": ("h", "hr", "hrs", "hours", "hour"), "day": ("days", "day"), "week": ("weeks", "week"),
    "month": ("months", "month"), "year": ("years", "year", "yrs", "yr"),
    "dollar": ("dollars", "dollar", "usd"), "cent": ("cents", "cent"), "yuan": ("yuan",),
    "n": ("n", "newtons", "newton"), "j": ("j", "joules", "joule"), "w": ("w", "watts", "watt"),
    "v": ("v", "volts", "volt"), "hz": ("hz",), "kw": ("kw",), "km/h": ("km/h", "kmh", "kph"),
    "m/s": ("m/s",), "mph": ("mph",),
}
_UNIT_OF = {alias: unit for unit, aliases in _UNIT_ALIASES.items() for alias in aliases}
# One-letter (and "in") units are only units after a space ("5 m"): "5m" may be 5 times m.
_SPACED_ONLY = {"m", "g", "l", "s", "h", "n", "j", "w", "v", "in"}
_UNIT_PATTERN = "|".join(re.escape(a) for a in sorted(_UNIT_OF, key=len, reverse=True))
_UNIT_TAIL = re.compile(r"(?<=[\d}).\s°])(\s*)(" + _UNIT_PATTERN + r")$", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_PLAIN = re.compile(rf"^(?:{_NUMBER})$")
_FRACTION = re.compile(rf"^([-+]?)\\frac\{{\s*({_NUMBER})\s*\}}\{{\s*({_NUMBER})\s*\}}$")
_SLASH = re.compile(rf"^({_NUMBER})\s*/\s*({_NUMBER})$")
_MIXED = re.compile(r"^([-+]?)(\d+)\s*(\+?)\s*\\frac\{(\d+)\}\{(\d+)\}$")  # 2\frac{1}{2}, 1+\frac{1}{2}: mixed
_SCIENTIFIC = re.compile(rf"^({_NUMBER})\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{{?\s*([-+]?\d+)\s*\}}?$")
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
# "x = 5", "\angle ABC = 145°", "m\angle 1 = 97", "AB = 6 cm"; not "2x = 10" (an equation, not a value).
_ASSIGNMENT = re.compile(r"^(?![\d\s.+-])(?=[^=]*[A-Za-z])[^=<>,]{1,24}=([^=<>]+)$")


def _number(text: str) -> Fraction | None:
    text = text.strip()
    if text.startswith("(") and text.endswith(")") and "," not in text:
        text = text[1:-1].strip()
    if _PLAIN.match(text):
        return Fraction(text.replace(",", ""))
    match = _FRACTION.match(text) or _SLASH.match(text)
    if match:
        sign, numerator, denominator = match.groups() if len(match.groups()) == 3 else ("", *match.groups())
        denominator = Fraction(denominator.replace(",", ""))
        if denominator == 0:
            return None
        value = Fraction(numerator.replace(",", "")) / denominator
        return -value if sign == "-" else value
    match = _MIXED.match(text)
    if match and 0 < int(match.group(4)) < int(match.group(5)):
        sign, whole, plus, numerator, denominator = match.groups()
        whole = -int(whole) if sign == "-" else int(whole)
        part = Fraction(int(numerator), int(denominator))
        # "-2\frac{1}{2}" is minus two and a half; "-2+\frac{1}{2}" is a sum.
        return whole + part if plus or sign != "-" else whole - part
    match = _SCIENTIFIC.match(text)
    if match:
        return Fraction(match.group(1).replace(",", "")) * Fraction(10) ** int(match.group(2))
    return None


def _split_unit(text: str) -> tuple[str, str | None]:
    """(the value, its unit) when `text` ends with a known unit after a number or expression."""
    match = _UNIT_TAIL.search(text)
    if not match:
        return text, None
    unit = _UNIT_OF[match.group(2).lower()]
    value = text[: match.start()].strip()
    if not value or (unit in _SPACED_ONLY and not match.group(1) and not text[match.start() - 1].isspace()):
        return text, None
    return value, unit


class _Answer(NamedTuple):
    clean: str  # plain LaTeX, case kept
    key: str  # lower-case, single spaces
    compact: str  # key without spaces
    prose: bool  # words or sentences: compared as text, never symbolically
    quantity: tuple[Fraction, str | None] | None  # a plain number and its unit
    core: str  # `clean` without its trailing unit, for math-verify
    unit: str | None
    name: str | None  # what an assignment names: "x" of "x = 5"


_MATH_NAMES = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "sqrt", "frac", "arcsin", "arccos",
               "arctan", "lim", "max", "min", "mod", "gcd", "lcm", "det", "and", "times"}
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}(?![A-Za-z])")
_COUNT_NOUN = re.compile(r"^(.+?)\s+([a-z]{3,}(?: [a-z]{2,}){0,2})$")  # "4 objects", "3 red cubes"
_SPELLINGS = {"grey": "gray", "colour": "color", "centre": "center"}


def _is_prose(text: str) -> bool:
    """Words only ("red", "quarter past"), or two or more words of three letters or more."""
    if _WORDS.match(text.lower()):
        return True
    return sum(w.lower() not in _MATH_NAMES for w in _PROSE_WORD.findall(text)) >= 2


def _quantity(clean: str, key: str) -> tuple[Fraction, str | None] | None:
    """A plain number with an optional unit: "6cm", "x = 5", "\\frac{17}{2}", "1,000", "three"."""
    if key in _NUMBER_WORDS:
        return Fraction(_NUMBER_WORDS[key]), None
    assignment = _ASSIGNMENT.match(clean)
    value, unit = _split_unit(assignment.group(1).strip() if assignment else clean)
    number = _number(value)
    if number is None and unit is None:  # a count: "4 objects"
        noun = _COUNT_NOUN.match(value.lower())
        if noun and noun.group(2).split()[0] not in _MATH_NAMES:
            number, unit = _number(noun.group(1)), noun.group(2)
    return None if number is None else (number, unit)


@lru_cache(maxsize=1 << 16)
def _answer(text: str) -> _Answer:
    clean = _clean(text)
    key = clean.lower()
    core, unit = _split_unit(clean)
    prose = _is_prose(core)
    if prose:
        key = " ".join(_SPELLINGS.get(word, word) for word in key.split())
    quantity = _quantity(clean, key) if not _WORDS.match(key) or key in _NUMBER_WORDS else None
    assignment = _ASSIGNMENT.match(clean)
    name = assignment.group(0).split("=")[0].replace(" ", "") if assignment else None
    return _Answer(clean, key, key.replace(" ", ""), prose, quantity, core, unit, name)


def _same_quantity(a: tuple[Fraction, str | None], b: tuple[Fraction, str | None]) -> bool:
    (x, unit_x), (y, unit_y) = a, b
    if unit_x and unit_y and unit_x != unit_y:
        return False
    if round(x, 6) == round(y, 6):
        return True
    # 25% and 0.25 (math-verify accepts both readings of a percentage too).
    if (unit_x == "%") != (unit_y == "%"):
        x, y = (x / 100, y) if unit_x == "%" else (x, y / 100)
        return round(x, 6) == round(y, 6)
    return False


def _same(a: _Answer, b: _Answer) -> bool:
    """Whether two answers are the same: as text, as numbers, or through math-verify."""
    if a.key == b.key or a.compact == b.compact:
        return True
    if a.name and b.name and a.name != b.name:
        return False  # "y = 3" does not answer "x = 3"
    if a.quantity is not None and b.quantity is not None:
        return _same_quantity(a.quantity, b.quantity)
    if a.prose or b.prose or not a.core or not b.core:
        return False
    if a.unit and b.unit and a.unit != b.unit:
        return False
    if a.core.replace(" ", "") == b.core.replace(" ", ""):
        return True
    return _verify(b.core, a.core)


# --- math-verify ---------------------------------------------------------------------------------


def _timeout() -> int | None:
    # math-verify times out through signal.alarm, which raises outside the main thread.
    return 5 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=1 << 14)
def _parse(text: str) -> tuple:
    from math_verify import parse

    try:
        return tuple(parse(f"${text}$", parsing_timeout=_timeout()))
    except Exception:  # a parser failure is "does not parse", never an error of the grader
        return ()


@lru_cache(maxsize=1 << 16)
def _verify(gold: str, prediction: str) -> bool:
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(prediction)
    if not gold_parsed or not pred_parsed:
        return False
    try:
        return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=_timeout()))
    except Exception:
        return False


def math_equal(prediction: str, gold: str) -> bool:
    """Symbolic/numeric equality of two answers through math-verify (False when either fails to parse)."""
    return _verify(gold.strip().strip("$"), prediction.strip().strip("$"))


# --- Letters and options -------------------------------------------------------------------------

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


def _gold_letter(clean: str) -> str | None:
    """The option letter a gold names: "A", "(A)", "$$A$$" (capitals only: "a" may be a variable)."""
    letter = _bare_letter(clean)
    return letter if letter and letter.isupper() else None


def _named_letter(clean: str) -> str | None:
    """The letter a response names, alone ("c", "(C)") or before a text ("C. 145°"), upper-cased."""
    letter = _bare_letter(clean)
    if letter is None:
        pair = _letter_and_text(clean)
        letter = pair[0] if pair else None
    return letter.upper() if letter else None


@lru_cache(maxsize=1 << 14)
def _options(choices: tuple[str, ...]) -> tuple[_Answer, ...]:
    """The options as answers, each without a label of its own letter ("A. 6 cm" -> "6 cm")."""
    answers = []
    for letter, choice in zip(OPTION_LETTERS, choices):
        clean = _clean(choice)
        pair = _letter_and_text(clean)
        if pair and pair[0] == letter:
            clean = pair[1]
        answers.append(_answer(clean))
    return tuple(answers)


def _agrees(text: _Answer, option: _Answer) -> bool:
    """Whether the text after a letter ("C. 145°") agrees with that letter's option."""
    if _same(text, option):
        return True
    return option.prose and re.search(rf"\b{re.escape(option.key)}\b", text.key) is not None


def _gold_index(gold: str, options: tuple[_Answer, ...]) -> int | None:
    """Which option the gold names: its letter, or else the one option its text matches."""
    clean = _clean(gold)
    letter = _gold_letter(clean)
    if letter is None:  # "B. 6cm", "(B) 6cm"
        pair = _letter_and_text(clean)
        letter = pair[0] if pair and pair[0].isupper() and pair[0] in OPTION_LETTERS[: len(options)] else None
    if letter is not None:
        index = OPTION_LETTERS.find(letter)
        return index if index < len(options) else None
    answer = _answer(gold)
    exact = [i for i, o in enumerate(options) if o.key == answer.key or o.compact == answer.compact]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None
    same = [i for i, o in enumerate(options) if _same(answer, o)]
    return same[0] if len(same) == 1 else None


def _grade_choice(prediction: str, gold_index: int, options: tuple[_Answer, ...]) -> bool:
    clean = _clean(prediction)
    letter = _bare_letter(clean)
    if letter is not None and letter.upper() in OPTION_LETTERS[: len(options)]:
        return OPTION_LETTERS.find(letter.upper()) == gold_index
    pair = _letter_and_text(clean)
    if pair is not None and pair[0].upper() in OPTION_LETTERS[: len(options)]:
        index, text = OPTION_LETTERS.find(pair[0].upper()), _answer(pair[1])
        if any(_same(text, o) for i, o in enumerate(options) if i != index):
            return False  # "C. 140°" where 140° is B: the response contradicts itself
        return index == gold_index and _agrees(text, options[index])
    # A value: it must match the right option and no other.
    answer = _answer(prediction)
    if not _same(answer, options[gold_index]):
        return False
    return not any(_same(answer, o) for i, o in enumerate(options) if i != gold_index)


def _grade_free(prediction: str, gold: str, options: tuple[_Answer, ...] | None) -> bool:
    gold_letter = _gold_letter(_clean(gold))
    if gold_letter is not None:  # an option letter without options to read (or out of their range)
        return _named_letter(_clean(prediction)) == gold_letter
    if options:
        letter = _named_letter(_clean(prediction))
        if letter is not None and letter in OPTION_LETTERS[: len(options)]:
            return _same(options[OPTION_LETTERS.find(letter)], _answer(gold))
    return _same(_answer(prediction), _answer(gold))


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
    options = _options(tuple(str(c) for c in choices)) if choices else None
    if options:
        gold_index = _gold_index(gold, options)
        if gold_index is not None:
            return _grade_choice(prediction, gold_index, options)
    return _grade_free(prediction, gold, options)
