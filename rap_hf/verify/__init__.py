"""Rule-based answer checking: the final `\\boxed{}` answer, or group of boxes, against the ground truth.

Both sides are first brought to one plain form, cheaply (cached per distinct string): delimiters
(`$ $`, `$$ $$`, `\\( \\)`, a whole `\\boxed{}`) and decoration (`\\text{}`, `\\mathrm`, `\\left`,
thin spaces, a final full stop) removed, unicode maths written as LaTeX (√, π, °, ×, ÷, −,
superscripts, ½, full-width forms), every degree mark written as °. Then, cheapest first:

- equal texts (lower-cased, with and without spaces) match;
- plain numbers with an optional unit ("6cm", "145°", "\\frac{17}{2}", "2\\frac{1}{2}", "1,000",
  "32,\\! 349", "14{,}916", "25%", "28 pct", "28 percent", "6 \\times 10^4", "three", "4 objects",
  the value of "x = 5") compare exactly as numbers
  (to 6 decimals, as math-verify rounds), and by unit where both sides give one ("6 m" is not
  "6 cm"; units are compared, never converted);
- words and sentences (colours, yes/no, "quarter past") only ever compare as text, because
  math-verify parses text as symbol products ("red" becomes e*d*r);
- anything else goes through math-verify (parses and verdicts cached), after a trailing unit is set
  aside.

Several boxes: the last box and the boxes a connector joins to it ("\\boxed{(1, 2)}, \\boxed{(2, 1)}",
"\\boxed{k = 45} and \\boxed{n = 2}") are one multi-part answer, compared part by part with the gold's:
every part and no other, order-free for a set of solutions, by name or in order for named parts, a
tuple in order (`rap_hf.verify.parts`). Against a one-value gold a repeated box is that value and
different values are wrong: a hedge never wins. A box behind reasoning or `</think>` is a draft.

Multiple choice (`choices` given; the gold is the option letter, or the option's text): the
response is right when it names the right letter ("C", "(C)", "C.", "Option C"), or the right
letter with that option's value ("C. 145°"), or a value that matches the right option and no other
(`rap_hf.verify.choices` gives the whole rule).

This fixes the failures of the released RAP checker (docs/method.md, "Known defects of the released
code"): an empty response never matches "A" or "yes", "3" does not match "3.5", and "-5" keeps its
sign. `python -m benchmarks.grading_agreement` compares both on `tests/data/grading_cases.jsonl`.

All functions are safe off the main thread: math-verify's timeouts use `signal.alarm`, which only
works there, so elsewhere they run without a timeout.

One job per module:

- `response`: what is read from a response: the last boxed answer (`extract_answer`), the final
  group of boxes (`final_boxes`), the format check (`is_formatted`);
- `unicode_math` and `normalize`: one plain form for any answer (`plain_form`, `normalize_text`);
- `quantities`: numbers and units read and compared;
- `symbolic`: math-verify (`math_equal`);
- `answers`: an answer read once (`read_answer`) and two answers compared (`same`);
- `parts`: an answer read as its parts (`read_parts`) and two multi-part answers compared (`same_parts`);
- `choices`: option letters and multiple-choice grading;
- `grading`: `is_correct`, composing them.
"""

from __future__ import annotations

from .grading import is_correct
from .normalize import normalize_text
from .response import extract_answer, is_formatted
from .symbolic import math_equal

__all__ = ["extract_answer", "is_correct", "is_formatted", "math_equal", "normalize_text"]
