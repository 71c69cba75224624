"""CDE, the Causal Discrepancy Estimator: D(x) = acc_image - acc_text (docs/method.md, "CDE").

Rollouts verified by the grader (`verify_rollouts`), and the rules over their counts, which live
below both scoring and selection in `rap_hf.rules` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..rules import accuracy, causal_discrepancy, difficulty, discrepancy
from ..verify import is_correct, is_formatted

__all__ = ["accuracy", "causal_discrepancy", "difficulty", "discrepancy", "verify_rollouts"]


def verify_rollouts(responses: Sequence[str], answer: str, choices: Sequence[str] | None = None
                    ) -> tuple[list[bool], list[bool]]:
    """Per response: (answer correct, think + boxed format present)."""
    correct = [is_correct(r, answer, choices) for r in responses]
    formatted = [is_formatted(r) for r in responses]
    return correct, formatted
