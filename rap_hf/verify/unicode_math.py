"""Unicode maths written as LaTeX (√, π, °, ×, ÷, −, superscripts, ½, full-width forms), so that
answers typed either way reach the same plain form (`rap_hf.verify.normalize`)."""

from __future__ import annotations

import re
import unicodedata

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


def from_unicode(text: str) -> str:
    """Unicode maths as LaTeX: x² -> x^{2}, 1½ -> (1+\\frac{1}{2}), 3√2 -> 3\\sqrt{2}, 108π -> 108\\pi."""
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT_DIGITS) + "}", text)
    text = _VULGAR_RUN.sub(_vulgar, text)
    text = unicodedata.normalize("NFKC", text)  # full-width forms (Chinese datasets), ℃ -> °C
    text = _ROOT.sub(_root, text)
    return _SYMBOL_RUN.sub(lambda m: _SYMBOLS[m.group(0)], text)
