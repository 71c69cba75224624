"""The method's pure rules, below every stage: D from counts of correct rollouts, and DRM's difficulty
(docs/method.md, "CDE" and "DRM").

Scoring (the rollout CDE step, the adaptive stop rule) and selection (its modes, the report, the
replacement pool) both call down into these; this module imports neither a model nor the grader.
Pure functions over counts, or NumPy arrays of counts (selection works on whole columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Count = TypeVar("Count")  # an int, or a NumPy array of counts


def accuracy(flags: Sequence[bool]) -> float:
    """Fraction of True flags (of the M rollouts)."""
    if not flags:
        raise ValueError("accuracy of zero rollouts is undefined")
    return sum(bool(f) for f in flags) / len(flags)


def discrepancy(image_right: Count, text_right: Count, num_rollouts: int | Count) -> Count:
    """D from counts: (correct with the image - correct without) / M, divided once.

    Subtracting the two accuracies instead is not the same number in floating point: 0.8 - 0.2 is
    0.6000000000000001, which would pass lambda_c = 0.6, while (4 - 1) / 5 is the float nearest
    0.6 and does not. Reference mode alone keeps the released script's subtraction, on purpose.
    """
    return (image_right - text_right) / num_rollouts


def difficulty(image_right: Count, num_rollouts: int | Count) -> Count:
    """DRM's difficulty: the fraction of wrong image rollouts, 1 - acc_image."""
    return 1.0 - image_right / num_rollouts


def causal_discrepancy(image_correct: Sequence[bool], text_correct: Sequence[bool]) -> float:
    """D of one row from its per-rollout flags (`discrepancy` of their counts)."""
    if len(image_correct) != len(text_correct):
        raise ValueError(f"D needs as many rollouts with the image as without ({len(image_correct)} and "
                         f"{len(text_correct)})")
    return discrepancy(sum(map(bool, image_correct)), sum(map(bool, text_correct)), len(image_correct))
