"""Numbers and units: an answer read as a plain number with an optional unit, and two such compared.

"6cm", "145°", "\\frac{17}{2}", "2\\frac{1}{2}", "1,000", "25%", "6 \\times 10^4", "three", "4 objects"
and the value of "x = 5" compare exactly as numbers (to 6 decimals, as math-verify rounds), and by
unit where both sides give one ("6 m" is not "6 cm"; units are compared, never converted).
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNIT_ALIASES = {
    "°": ("°", "degrees", "degree", "deg"),
    "°c": ("°c", "degrees celsius", "celsius"),
    "°f": ("°f", "degrees fahrenheit", "fahrenheit"),
    "%": ("%", "percent", "per cent", "percentage", "pct"),
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
_SPACED_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_FRACTION = re.compile(rf"^([-+]?)\\frac\{{\s*({_NUMBER})\s*\}}\{{\s*({_NUMBER})\s*\}}$")
_SLASH = re.compile(rf"^({_NUMBER})\s*/\s*({_NUMBER})$")
_MIXED = re.compile(r"^([-+]?)(\d+)\s*(\+?)\s*\\frac\{(\d+)\}\{(\d+)\}$")  # 2\frac{1}{2}, 1+\frac{1}{2}: mixed
_SCIENTIFIC = re.compile(rf"^({_NUMBER})\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{{?\s*([-+]?\d+)\s*\}}?$")
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
# "x = 5", "\angle ABC = 145°", "m\angle 1 = 97", "AB = 6 cm"; not "2x = 10" (an equation, not a value).
ASSIGNMENT = re.compile(r"^(?![\d\s.+-])(?=[^=]*[A-Za-z])[^=<>,]{1,24}=([^=<>]+)$")
# Names of mathematics, never words of a sentence or the noun of a count.
MATH_NAMES = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "sqrt", "frac", "arcsin", "arccos",
              "arctan", "lim", "max", "min", "mod", "gcd", "lcm", "det", "and", "times"}
_COUNT_NOUN = re.compile(r"^(.+?)\s+([a-z]{3,}(?: [a-z]{2,}){0,2})$")  # "4 objects", "3 red cubes"


def _number(text: str) -> Fraction | None:
    text = text.strip()
    if _SPACED_THOUSANDS.match(text):  # "1 000", "32 349"
        text = text.replace(" ", "")
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


def split_unit(text: str) -> tuple[str, str | None]:
    """(the value, its unit) when `text` ends with a known unit after a number or expression."""
    match = _UNIT_TAIL.search(text)
    if not match:
        return text, None
    unit = _UNIT_OF[match.group(2).lower()]
    value = text[: match.start()].strip()
    if not value or (unit in _SPACED_ONLY and not match.group(1) and not text[match.start() - 1].isspace()):
        return text, None
    return value, unit


def quantity(clean: str, key: str) -> tuple[Fraction, str | None] | None:
    """A plain number with an optional unit: "6cm", "x = 5", "\\frac{17}{2}", "1,000", "three"."""
    if key in NUMBER_WORDS:
        return Fraction(NUMBER_WORDS[key]), None
    assignment = ASSIGNMENT.match(clean)
    value, unit = split_unit(assignment.group(1).strip() if assignment else clean)
    number = _number(value)
    if number is None and unit is None:  # a count: "4 objects"
        noun = _COUNT_NOUN.match(value.lower())
        if noun and noun.group(2).split()[0] not in MATH_NAMES:
            number, unit = _number(noun.group(1)), noun.group(2)
    return None if number is None else (number, unit)


def same_quantity(a: tuple[Fraction, str | None], b: tuple[Fraction, str | None]) -> bool:
    """Whether two quantities are equal: the same number (to 6 decimals) and no two different units."""
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
