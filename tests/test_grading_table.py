"""`rap_hf.verify.is_correct` against a table of real-format cases (tests/data/grading_cases.jsonl).

Each case: a gold as a public dataset writes it (with the row id where the format was taken from a
real row, or the regression suite the pair comes from), the options if any, a response as VLMs write
them, the truth decided by reading, and a note. Every case must agree with the truth, except the cases marked `known_disagreement` (each says
why in its note); those are counted separately and must stay under 2 % of the table.
`python -m benchmarks.grading_agreement` grades the same table with the released RAP checker too.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rap_hf.verify.answers as answers_module
import rap_hf.verify.choices as choices_module
import rap_hf.verify.grading as grading_module
import rap_hf.verify.parts as parts_module
import rap_hf.verify.symbolic as symbolic_module
from rap_hf.verify import is_correct

TABLE = Path(__file__).parent / "data" / "grading_cases.jsonl"
CASES = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]
KNOWN = [c for c in CASES if c.get("known_disagreement")]


@pytest.mark.parametrize("case", [c for c in CASES if not c.get("known_disagreement")], ids=lambda c: c["id"])
def test_grader_agrees_with_the_read_truth(case):
    verdict = is_correct(case["response"], case["gold"], case["choices"])
    assert verdict is case["truth"], f"{case['source']}: {case['note']}"


@pytest.mark.parametrize("case", KNOWN, ids=lambda c: c["id"])
def test_known_disagreements_are_still_disagreements(case):
    """A known disagreement that starts agreeing should lose its mark (and count as a plain case)."""
    assert is_correct(case["response"], case["gold"], case["choices"]) is not case["truth"]
    assert "known disagreement" in case["note"]


def test_known_disagreements_stay_under_two_percent():
    assert len(KNOWN) / len(CASES) < 0.02


def test_the_table_covers_the_formats_it_claims():
    assert len(CASES) >= 200
    assert len({c["id"] for c in CASES}) == len(CASES)
    for case in CASES:
        assert {"id", "source", "gold", "choices", "response", "truth", "category", "note"} <= set(case), case["id"]
        assert isinstance(case["truth"], bool) and case["source"] and case["note"]
    sources = " ".join(c["source"] for c in CASES)
    for dataset in ("MathVista", "MMMU", "ScienceQA", "MM-Eureka", "Geometry3K", "MathVerse", "WeMath"):
        assert dataset in sources, dataset
    categories = Counter(c["category"] for c in CASES)
    for category in ("mc_other_option", "mc_two_options", "mc_letter_wrong_value", "mc_wrong_letter_right_value",
                     "mc_value", "mc_letter", "mc_gold_text", "mc_letter_options", "no_box", "several_boxes", "empty",
                     "unicode", "words", "gold_wrapped", "free_units"):
        assert categories[category] > 0, category
    # Another option's value is never right.
    assert all(not c["truth"] for c in CASES if c["category"] in ("mc_other_option", "mc_two_options"))


MULTI_PART_FORMATS = ("multi_part", "thousands", "matrix", "interval_set", "percent_word")


def test_the_table_covers_answers_as_the_field_writes_them():
    """Several boxed parts, thousands separators, matrices, intervals and sets, percent words: each with
    right and wrong answers (a wrong, missing or extra part; a wrong separator reading, entry, endpoint)."""
    new = [c for c in CASES if c["category"] in MULTI_PART_FORMATS]
    assert len(new) >= 60
    for category in MULTI_PART_FORMATS:
        truths = {c["truth"] for c in new if c["category"] == category}
        assert truths == {True, False}, category
    sources = " ".join(c["source"] for c in new)
    assert "Math-Verify" in sources and "Qwen2.5-Math" in sources
    notes = " ".join(c["note"] for c in new if c["category"] == "multi_part" and not c["truth"])
    for negative in ("a wrong part", "a missing part", "an extra part", "hedge"):
        assert negative in notes, negative


def test_no_false_positive_on_a_multi_part_answer():
    wrong = [c for c in CASES if c["category"] == "multi_part" and not c["truth"]]
    assert wrong and not any(is_correct(c["response"], c["gold"], c["choices"]) for c in wrong)


def test_the_table_grades_the_same_off_the_main_thread():
    """Worker threads run math-verify without its signal-based timeout; the verdicts do not change."""
    for cached in (answers_module.read_answer, choices_module.read_options, parts_module.read_parts,
                   grading_module._read_gold, symbolic_module._parse, symbolic_module._verify):
        cached.cache_clear()  # grade from scratch in the workers
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda c: is_correct(c["response"], c["gold"], c["choices"]), CASES))
    assert verdicts == [is_correct(c["response"], c["gold"], c["choices"]) for c in CASES]
