"""CDE, the Causal Discrepancy Estimator (METHOD.md, "CDE"): D(x) = acc_image - acc_text.

Pure functions over verified rollouts; the rollouts themselves come from `rap_hf.rollouts`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..verify import is_correct, is_formatted


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


def causal_discrepancy(image_correct: Sequence[bool], text_correct: Sequence[bool]) -> float:
    """D = acc_image - acc_text: how much the image raises the chance of a correct answer."""
    return accuracy(image_correct) - accuracy(text_correct)


def difficulty(image_correct: Sequence[bool]) -> float:
    """DRM's difficulty: the fraction of wrong image rollouts (1 - acc_image)."""
    return 1.0 - accuracy(image_correct)
