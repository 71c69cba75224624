"""CDE, the Causal Discrepancy Estimator: D(x) = acc_image - acc_text (docs/method.md, "CDE").

The one home of the rules every stage shares: D from counts of correct rollouts, and DRM's
difficulty. The scorer, the adaptive stop rule, selection and its report all call these. Pure
functions over verified rollouts (or NumPy arrays of counts); the rollouts themselves come from
`rap_hf.rollouts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ..verify import is_correct, is_formatted

Count = TypeVar("Count")  # an int, or a NumPy array of counts (selection works on whole columns)


def verify_rollouts(responses: Sequence[str], answer: str, choices: Sequence[str] | None = None
                    ) -> tuple[list[bool], list[bool]]:
    """Per response: (answer correct, think + boxed format present)."""
    correct = [is_correct(r, answer, choices) for r in responses]
    formatted = [is_formatted(r) for r in responses]
    return correct, formatted


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
