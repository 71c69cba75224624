"""A port of the answer checker the released RAP code trains and scores with.

Where it comes from: the released code (Mrshenshen/RAP, an EasyR1 fork) grades every rollout with
`math_compute_score(response, ground_truth)` of `verl/utils/reward_score/math.py`
(`reward.score_function: math` in `examples/config.yaml`; `verl/workers/reward/custom.py` passes the
decoded response and the row's `answer` column as it is stored). That function:

1. removes whitespace around `<`, `>` and `/` in the whole response;
2. takes the content of the last `\\boxed{...}` (None without one);
3. reduces the ground truth with `re.search(r"(\\$([^\\$]+)\\$|(\\d+))", ...)`: the first `$...$`
   content, else the first run of digits, else None ("" from then on). Hence the defects
   docs/method.md lists: a gold without `$` and digits ("A", "yes") parses to nothing, and an
   unparsable gold gives reward 1.0 to every response, the empty one included; "3.5" becomes "3"
   and "-5" becomes "5";
4. calls `mathruler.grader.grade_answer(boxed, reduced_gold)` (MathRuler 0.1.0, itself the PRM800K
   grader: the Hendrycks MATH string normalisation, then sympy on both sides);
5. when that fails, `accuracy_reward_func(boxed or "", reduced_gold or "")`: math-verify's `parse`
   and `verify` (note the argument order: the response is passed as the gold), then a letter rule
   for golds that parse to a/b/c/d.

The released code never sees a row's options, so `released_is_correct` ignores `choices`.

This port keeps those functions' logic line for line; the differences, none of which changes a
verdict on `tests/data/grading_cases.jsonl`:
- math-verify is the version installed here (the released code pins none); its timeouts are
  switched off outside the main thread, as in `rap_hf.verify`;
- MathRuler's `_parse_latex` calls `pylatexenc`'s `LatexNodes2Text().latex_to_text`. pylatexenc is
  not a dependency of rap-hf, so when it is not installed a small converter stands in for it
  (`_latex_to_text`): it reproduces what pylatexenc 2.11 writes for the macros these answers use
  (`\\frac`, `\\sqrt`, Greek letters, `\\cdot`, `\\times`, `\\circ`, text macros, groups). With
  pylatexenc installed, pylatexenc is used (`LATEX_TO_TEXT` says which);
- the "Failed to parse gold solution" print is left out.

`math_compute_score` returns the released dict (overall = 0.9 accuracy + 0.1 format).
"""

from __future__ import annotations

import re
import threading

import sympy
from sympy.parsing import sympy_parser

try:  # the released requirements install pylatexenc
    from pylatexenc import latex2text as _pylatexenc

    LATEX_TO_TEXT = "pylatexenc"
except ImportError:  # pragma: no cover - depends on the environment
    _pylatexenc = None
    LATEX_TO_TEXT = "built-in stand-in for pylatexenc"


def _timeout(seconds: int = 5) -> int | None:
    return seconds if threading.current_thread() is threading.main_thread() else None


# --- pylatexenc's latex_to_text, for the macros answers use (the stand-in) -----------------------

_SYMBOL_TEXT = {
    "pi": "π", "theta": "θ", "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ",
    "phi": "φ", "lambda": "λ", "mu": "μ", "sigma": "σ", "omega": "ω", "infty": "∞", "cdot": "·",
    "times": "×", "div": "÷", "circ": "∘", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠",
    "neq": "≠", "pm": "±", "angle": "∠", "approx": "≈", "%": "%", "$": "$", "{": "{", "}": "}",
    "&": "&", "#": "#", "_": "_", ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "\\": "\n",
    "quad": " ", "qquad": " ", "perp": "⊥", "parallel": "∥", "cup": "∪", "cap": "∩", "in": "∈",
}
# Macros whose argument(s) pylatexenc prints as plain text.
_ONE_ARGUMENT = {"text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mathit", "mathsf", "mbox",
                 "operatorname", "overline", "underline", "hat", "bar", "vec", "widehat", "boxed",
                 "emph", "mathbb", "mathcal", "tilde", "dot"}


def _read_group(text: str, i: int) -> tuple[str, int]:
    """The next argument at text[i:]: a {group} (contents), a macro, or one character."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        return "", i
    if text[i] == "{":
        depth, j = 1, i + 1
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        return text[i + 1 : j - 1], j
    if text[i] == "\\":
        match = re.match(r"\\([A-Za-z]+|.)", text[i:])
        return match.group(0), i + match.end()
    return text[i], i + 1


def _latex_to_text(text: str) -> str:
    if _pylatexenc is not None:
        return _pylatexenc.LatexNodes2Text().latex_to_text(text)
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            match = re.match(r"\\([A-Za-z]+)\s*|\\(.)", text[i:])
            name = match.group(1) or match.group(2)
            i += match.end()
            if name == "frac":
                numerator, i = _read_group(text, i)
                denominator, i = _read_group(text, i)
                out.append(f"{_latex_to_text(numerator)}/{_latex_to_text(denominator)}")
            elif name == "sqrt":
                if i < len(text) and text[i] == "[":
                    i = text.index("]", i) + 1
                body, i = _read_group(text, i)
                out.append(f"√({_latex_to_text(body)})")
            elif name in _ONE_ARGUMENT:
                body, i = _read_group(text, i)
                out.append(_latex_to_text(body))
            elif name in ("left", "right", "(", ")", "[", "]"):
                continue  # sizing and math-mode delimiters print nothing
            elif name in _SYMBOL_TEXT:
                out.append(_SYMBOL_TEXT[name])
            # unknown macros without arguments print nothing
        elif char in "{}$":
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


# --- mathruler.math_normalize (the Hendrycks MATH normalisation, via PRM800K) --------------------


def normalize_answer(answer: str | None) -> str | None:
    if answer is None:
        return None
    answer = answer.strip()
    try:
        m = re.search(r"^\\text\{(?P<text>.+?)\}$", answer)
        if m is not None:
            answer = m.group("text").strip()
        return _strip_string(answer)
    except Exception:
        return answer


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if substr[0] == "{":
            new_str += substr
        else:
            if len(substr) < 2:
                return string
            a, b = substr[0], substr[1]
            if b != "{":
                new_str += "{" + a + "}{" + b + "}" + substr[2:]
            else:
                new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    try:
        a, b = int(a), int(b)
        assert string == f"{a}/{b}"
        return "\\frac{" + str(a) + "}{" + str(b) + "}"
    except Exception:
        return string


def _remove_right_units(string: str) -> str:
    if "\\text{ " in string:
        splits = string.split("\\text{ ")
        assert len(splits) == 2
        return splits[0]
    return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def _strip_string(string: str) -> str:
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "").replace("%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


# --- mathruler.grader ------------------------------------------------------------------------------

_BAD_SUBSTRINGS = ["^{", "^("]
_BAD_REGEXES = [r"\^[0-9]+\^", r"\^[0-9][0-9]+"]
_TUPLE_CHARS = "()[]"
_UNITS = ["degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
          "month", "year", "foot", "feet", "inch", "yard"]


def _sympy_parse(expr: str):
    return sympy_parser.parse_expr(
        expr.replace("^", "**"),
        transformations=(sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)),
    )


def _parse_latex(expr: str) -> str:
    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    expr = _latex_to_text(expr)
    for old, new in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        expr = expr.replace(old, new)
    return expr.strip()


def _is_float(num: str) -> bool:
    try:
        float(num)
        return True
    except ValueError:
        return False


def _is_int(x: float) -> bool:
    try:
        return abs(x - int(round(x))) <= 1e-7
    except Exception:
        return False


def _is_frac(expr: str) -> bool:
    return bool(re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", expr))


def _str_is_int(x: str) -> bool:
    try:
        x = float(_strip_properly_formatted_commas(x))
        return abs(x - int(round(x))) <= 1e-7
    except Exception:
        return False


def _str_to_int(x: str) -> int:
    return int(float(x.replace(",", "")))


def _inject_implicit_mixed_number(step: str) -> str:
    return re.sub("([0-9]) +([0-9])", "\\1+\\2", step)


def _strip_properly_formatted_commas(expr: str) -> str:
    pattern = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
    while True:
        next_expr = pattern.sub("\\1\\3\\4", expr)
        if next_expr == expr:
            return next_expr
        expr = next_expr


def _normalize(expr: str | None) -> str | None:
    if expr is None:
        return None
    m = re.search(r"^\\text\{(?P<text>.+?)\}$", expr)
    if m is not None:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for unit in _UNITS:
        expr = re.sub(rf"{unit}(es)?(s)? *(\^[0-9]+)?", "", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if len(expr) > 0 and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(",\\\\! *", "", expr)
    if _is_float(expr) and _is_int(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        try:
            expr = _parse_latex(expr)
        except Exception:
            pass
    expr = re.sub("- *", "-", expr)
    expr = _inject_implicit_mixed_number(expr)
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _str_is_int(expr):
        expr = str(_str_to_int(expr))
    return expr


def _count_unknown_letters_in_expr(expr: str) -> int:
    expr = expr.replace("sqrt", "").replace("frac", "")
    return len({x for x in expr if x.isalpha()})


def _should_allow_eval(expr: str) -> bool:
    if _count_unknown_letters_in_expr(expr) > 2:
        return False
    if any(bad in expr for bad in _BAD_SUBSTRINGS):
        return False
    return not any(re.search(bad, expr) is not None for bad in _BAD_REGEXES)


def _are_equal_under_sympy(ground_truth_normalized: str, given_normalized: str) -> bool:
    try:
        expr = f"({ground_truth_normalized})-({given_normalized})"
        if _should_allow_eval(expr):
            if sympy.simplify(_sympy_parse(expr)) == 0:
                return True
    except Exception:
        pass
    return False


def _split_tuple(expr: str) -> list[str]:
    expr = _strip_properly_formatted_commas(expr)
    if len(expr) == 0:
        return []
    if (len(expr) > 2 and expr[0] in _TUPLE_CHARS and expr[-1] in _TUPLE_CHARS
            and all(ch not in expr[1:-1] for ch in _TUPLE_CHARS)):
        return [elem.strip() for elem in expr[1:-1].split(",")]
    return [expr]


def grade_answer(given_answer: str | None, ground_truth: str | None) -> bool:
    """mathruler.grader.grade_answer."""
    if given_answer is None:
        return False
    if normalize_answer(ground_truth) == normalize_answer(given_answer):
        return True
    ground_truth_normalized, given_normalized = _normalize(ground_truth), _normalize(given_answer)
    if ground_truth_normalized is None:
        return False
    if ground_truth_normalized == given_normalized:
        return True
    if len(given_normalized) == 0:
        return False
    ground_truth_elems, given_elems = _split_tuple(ground_truth_normalized), _split_tuple(given_normalized)
    if len(ground_truth_elems) > 1 and (ground_truth_normalized[0] != given_normalized[0]
                                        or ground_truth_normalized[-1] != given_normalized[-1]):
        return False
    if len(ground_truth_elems) != len(given_elems):
        return False
    is_correct = False
    for ground_truth_elem, given_elem in zip(ground_truth_elems, given_elems):
        if _is_frac(ground_truth_elem) and _is_frac(given_elem):
            is_correct = ground_truth_elem == given_elem
        elif _str_is_int(ground_truth_elem) != _str_is_int(given_elem):
            is_correct = False
        else:
            is_correct = _are_equal_under_sympy(ground_truth_elem, given_elem)
        if not is_correct:
            break
    return is_correct


# --- verl/utils/reward_score/math.py ---------------------------------------------------------------


def _extract_answer_with_tags(text: str) -> str | None:
    match = re.search(r"(<answer>.*?</answer>)", text)
    return match.group(1) if match else None


def accuracy_reward_func(completion: str, answer: str) -> float:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify

    choices = ["a", "b", "c", "d"]
    reward = 0.0
    response = _extract_answer_with_tags(completion)
    if response is None:
        response = completion.split("<answer>")[-1]
    content, sol = response, f"${answer}$"
    gold_parsed = parse(sol, parsing_timeout=_timeout())
    if len(gold_parsed) == 0:
        return 1.0  # "Failed to parse gold solution": every response is rewarded
    answer_parsed = parse(content, extraction_config=[StringExtractionConfig(), LatexExtractionConfig(),
                                                      ExprExtractionConfig()], parsing_timeout=_timeout())
    try:
        reward = float(verify(answer_parsed, gold_parsed, timeout_seconds=_timeout()))
    except Exception:
        pass
    if reward == 0.0:
        try:
            content_match = re.search(r"<answer>(.*?)</answer>", completion)
            student_answer = content_match.group(1).strip() if content_match else content.strip()
            student_answer = student_answer.replace("</answer>", "").replace("<answer>", "").strip()
            for gold in gold_parsed:
                if str(gold).lower() in choices and str(gold).lower() in student_answer.lower():
                    others = [choice for choice in choices if choice != str(gold).lower()]
                    if all(choice not in student_answer.lower() for choice in others):
                        reward = 1.0
        except Exception:
            pass
    return reward


def math_format_reward(predict_str: str) -> float:
    return 1.0 if re.fullmatch(r"<think>.*</think>.*\\boxed\{.*\}.*", predict_str, re.DOTALL) else 0.0


def _extract_outer_boxed(text: str) -> str | None:
    start = text.find(r"\boxed{")
    if start == -1:
        return None
    start += len(r"\boxed{")
    balance, i = 1, start
    while i < len(text) and balance > 0:
        if text[i] == "{":
            balance += 1
        elif text[i] == "}":
            balance -= 1
        i += 1
    return text[start : i - 1] if balance == 0 else None


def extract_prompt(answer: str) -> str | None:
    """The content of the last `\\boxed{`, braces balanced (None without one)."""
    starts = [m.start() for m in re.finditer(r"\\boxed\{", answer)]
    return _extract_outer_boxed(answer[starts[-1] :]) if starts else None


def extract_ground_truth(answer: str) -> str | None:
    """The released `extract_answer`: the first `$...$` content, else the first run of digits."""
    match = re.search(r"(\$([^\$]+)\$|(\d+))", answer, re.DOTALL)
    if not match:
        return None
    return match.group(2) if match.group(2) else match.group(3)


def math_acc_reward(predict_str: str, ground_truth: str) -> float:
    answer = extract_prompt(predict_str)
    truth_answer = extract_ground_truth(ground_truth)
    if grade_answer(answer, truth_answer):
        return 1.0
    return accuracy_reward_func("" if answer is None else str(answer),
                                "" if truth_answer is None else str(truth_answer))


def math_compute_score(predict_str: str, ground_truth: str) -> dict[str, float]:
    predict_str = re.sub(r"\s*(<|>|/)\s*", r"\1", predict_str)
    format_score = math_format_reward(predict_str)
    accuracy = math_acc_reward(predict_str, ground_truth)
    return {"overall": 0.9 * accuracy + 0.1 * format_score, "format": format_score, "accuracy": accuracy}


def released_is_correct(response: str | None, answer: str, choices=None) -> bool:
    """The released checker's verdict (accuracy 1.0), with `rap_hf.verify.is_correct`'s signature.
    `choices` is ignored: the released code never sees a row's options."""
    return math_compute_score(response or "", str(answer))["accuracy"] == 1.0
