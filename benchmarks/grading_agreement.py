"""Grading agreement: `rap_hf.verify.is_correct` and the released RAP checker against read truths.

    python -m benchmarks.grading_agreement [--cases FILE] [--limit N] [--repeats 3] [--out FILE.json]

Reads the real-format table `tests/data/grading_cases.jsonl` (each case: a gold as a public dataset
writes it, the options if any, a response as VLMs write them, the truth decided by reading, its
source) and grades every case with both checkers: ours with the row's options, the released one
(`benchmarks/released_checker.py`, a port of Mrshenshen/RAP's `math_compute_score`) as the released
code calls it, without options. Reports, for each: agreement with the truth, false positives (graded
right, truly wrong), false negatives, and false positives on "another option's value" cases
(category `mc_other_option`) and on multi-part answers (category `multi_part`: several boxed parts,
a wrong, missing or extra part, a hedge), overall and per category; and the time per call: the first
pass over the table (every answer new to the process; mean and median), and again (the same strings
once more, as when the M rollouts of a row repeat an answer: rap_hf.verify caches per distinct string).
Goals: >= 98 % agreement, no false positive on another option's value, none on a multi-part answer.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import write_results

CASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "grading_cases.jsonl"
OTHER_OPTION = "mc_other_option"
MULTI_PART = "multi_part"
GOALS = {"min_agreement_percent": 98.0, "max_false_positives_on_other_option": 0,
         "max_false_positives_on_multi_part": 0}


def load_cases(path: str | Path = CASES) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def grade(checker, cases: list[dict]) -> list[bool]:
    return [bool(checker(c["response"], c["gold"], c["choices"])) for c in cases]


def summarise(cases: list[dict], verdicts: list[bool]) -> dict:
    """Agreement, false positives and negatives (overall, on another option's value, per category)."""
    total = len(cases)
    agree = sum(v == c["truth"] for c, v in zip(cases, verdicts))
    false_pos = [c["id"] for c, v in zip(cases, verdicts) if v and not c["truth"]]
    false_neg = [c["id"] for c, v in zip(cases, verdicts) if not v and c["truth"]]
    other = [(c, v) for c, v in zip(cases, verdicts) if c["category"] == OTHER_OPTION]
    multi = [(c, v) for c, v in zip(cases, verdicts) if c["category"] == MULTI_PART]
    by_category: dict[str, dict] = {}
    for category in sorted({c["category"] for c in cases}):
        pairs = [(c, v) for c, v in zip(cases, verdicts) if c["category"] == category]
        by_category[category] = {
            "cases": len(pairs),
            "agree": sum(v == c["truth"] for c, v in pairs),
            "false_positives": sum(v and not c["truth"] for c, v in pairs),
            "false_negatives": sum(not v and c["truth"] for c, v in pairs),
        }
    return {
        "cases": total,
        "agree": agree,
        "agreement_percent": 100.0 * agree / total if total else 0.0,
        "false_positives": len(false_pos),
        "false_negatives": len(false_neg),
        "other_option_cases": len(other),
        "false_positives_on_other_option": sum(v for _, v in other),
        "multi_part_cases": len(multi),
        "false_positives_on_multi_part": sum(v and not c["truth"] for c, v in multi),
        "false_positive_ids": false_pos,
        "false_negative_ids": false_neg,
        "by_category": by_category,
    }


def _time_per_call(checker, cases: list[dict], repeats: int) -> dict:
    checker("<think>x</think> \\boxed{\\sqrt{2}}", "\\sqrt{3}")  # imports math-verify's parsers, caches nothing here
    first = []
    for c in cases:
        start = time.perf_counter()
        checker(c["response"], c["gold"], c["choices"])
        first.append(time.perf_counter() - start)
    again = []
    for _ in range(repeats):
        start = time.perf_counter()
        grade(checker, cases)
        again.append((time.perf_counter() - start) / len(cases))
    return {"first_pass_ms_per_call": 1000 * statistics.fmean(first),
            "first_pass_median_ms_per_call": 1000 * statistics.median(first),
            "repeat_ms_per_call": 1000 * statistics.median(again)}


# The formats of issue #29 (several boxed parts, thousands separators, matrices, intervals and sets,
# percent words), printed per category.
NEW_FORMATS = ("multi_part", "thousands", "matrix", "interval_set", "percent_word")


def _print_categories(checkers: dict, categories: tuple[str, ...]) -> None:
    print(f"\n{'category':<14} " + " ".join(f"{name + ': agree (FP, FN)':>26}" for name in checkers))
    for category in categories:
        cells = []
        for summary in checkers.values():
            row = summary["by_category"].get(category)
            if row is None:
                break
            cells.append(f"{row['agree']}/{row['cases']} ({row['false_positives']}, {row['false_negatives']})")
        if len(cells) == len(checkers):
            print(f"{category:<14} " + " ".join(f"{cell:>26}" for cell in cells))


def main(argv=None) -> dict:
    from importlib import metadata

    import sympy

    from benchmarks import released_checker
    from rap_hf import __version__
    from rap_hf.verify import is_correct

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=str(CASES))
    parser.add_argument("--limit", type=int, default=None, help="grade only the first N cases (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/grading_agreement.json")
    args = parser.parse_args(argv)

    cases = load_cases(args.cases)[: args.limit]
    checkers = {"rap_hf": is_correct, "released": released_checker.released_is_correct}
    results = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "versions": {"rap_hf": __version__, "math_verify": metadata.version("math-verify"), "sympy": sympy.__version__,
                     "released_latex_to_text": released_checker.LATEX_TO_TEXT},
        "settings": {"cases_file": Path(args.cases).name, "cases": len(cases), "repeats": args.repeats},
        "goals": GOALS,
        "table": {"sources": dict(Counter(c["id"].rsplit("-", 1)[0] for c in cases)),
                  "categories": dict(Counter(c["category"] for c in cases)),
                  "truly_right": sum(c["truth"] for c in cases),
                  "known_disagreements": [c["id"] for c in cases if c.get("known_disagreement")]},
        "checkers": {},
    }
    for name, checker in checkers.items():
        timing = _time_per_call(checker, cases, args.repeats)  # the first pass also warms imports
        summary = summarise(cases, grade(checker, cases))
        summary.update(timing)
        results["checkers"][name] = summary
    ours = results["checkers"]["rap_hf"]
    results["goals_met"] = {
        "agreement": ours["agreement_percent"] >= GOALS["min_agreement_percent"],
        "no_false_positive_on_other_option":
            ours["false_positives_on_other_option"] <= GOALS["max_false_positives_on_other_option"],
    }
    # Kept apart from `goals_met`, whose keys callers pin: the multi-part goal came later.
    results["multi_part_goal_met"] = (
        ours["false_positives_on_multi_part"] <= GOALS["max_false_positives_on_multi_part"])

    print(f"{len(cases)} cases from {Path(args.cases).name}\n")
    print(f"{'checker':<10} {'agreement':>10} {'false pos.':>11} {'false neg.':>11} {'FP other option':>16} "
          f"{'FP multi-part':>14} {'ms/call: mean, median, again':>29}")
    for name, s in results["checkers"].items():
        other = f"{s['false_positives_on_other_option']} / {s['other_option_cases']}"
        multi = f"{s['false_positives_on_multi_part']} / {s['multi_part_cases']}"
        speed = (f"{s['first_pass_ms_per_call']:.2f}, {s['first_pass_median_ms_per_call']:.2f}, "
                 f"{s['repeat_ms_per_call']:.2f}")
        print(f"{name:<10} {s['agreement_percent']:>9.1f}% {s['false_positives']:>11} {s['false_negatives']:>11} "
              f"{other:>16} {multi:>14} {speed:>29}")
    _print_categories(results["checkers"], NEW_FORMATS)
    met = {**results["goals_met"], "no_false_positive_on_multi_part": results["multi_part_goal_met"]}
    met = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in met.items())
    print(f"\ngoals ({GOALS['min_agreement_percent']:g} % agreement, no false positive on another option's "
          f"value or on a multi-part answer): {met}")
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
