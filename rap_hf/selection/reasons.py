"""Why a row is kept or left out: the reason labels every selection rule gives, what each means, and
the integer codes rules label many rows with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REASONS = ("kept", "kept_replacement", "language_prior", "attention_biased", "trivial", "unsolvable", "error")
KEPT_REASONS = ("kept", "kept_replacement")
# Baselines keep rows for other reasons than RAP's; a row they leave out is "not_selected".
BASELINE_REASONS = ("not_selected",)
# What each reason means, in a sentence (cards, the Space, reports).
REASON_MEANINGS = {
    "kept": "passed CDE (the image matters) and ACE",
    "kept_replacement": "added by DRM: among the hardest rows that still give GRPO a signal",
    "language_prior": "solvable without the image (CDE below the threshold), or not drawn",
    "attention_biased": "reasoning anchored on an empty token (ACE above the threshold)",
    "trivial": "every image rollout right: no GRPO signal (removed by DRM)",
    "unsolvable": "no image rollout right: no GRPO signal",
    "error": "could not be scored (see rap_error in decisions)",
    "not_selected": "left out by a baseline selection",
}
REASON_CODES: dict[str, int] = {reason: code for code, reason in enumerate(REASONS + BASELINE_REASONS)}
"""Each reason's integer code: rules label a million rows as an int8 array, then hand it to
`selection_from_reasons` (comparing codes is much faster than comparing strings)."""


def reason_codes(reasons: Sequence[str] | Sequence[int] | np.ndarray, size: int) -> np.ndarray:
    """Per-row reasons, given as labels or as `REASON_CODES` values, as an array of codes."""
    array = np.asarray(reasons)
    if array.shape != (size,):
        raise ValueError(f"a selection needs one reason per row: {size} rows, but reasons of shape {array.shape}")
    if size == 0:
        return np.zeros(0, dtype=np.int8)
    if array.dtype.kind in "iu":
        outside = (array < 0) | (array >= len(REASON_CODES))
        if outside.any():
            raise ValueError(f"reason codes are the values of REASON_CODES (0 to {len(REASON_CODES) - 1}); "
                             f"row {int(np.flatnonzero(outside)[0])} has {array[outside][0]}")
        return array
    if array.dtype.kind not in "UO":
        raise TypeError(f"reasons must be labels (str) or codes (int) of REASON_CODES, not an array of {array.dtype}")
    codes = np.full(size, -1, dtype=np.int8)
    for reason, code in REASON_CODES.items():
        codes[array == reason] = code
    unknown = codes < 0
    if unknown.any():
        names = sorted({str(label) for label in array[unknown]})
        raise ValueError(f"unknown reasons {names[:5]}: every row's reason is one of {', '.join(REASON_CODES)} "
                         "('not_selected' for a row a rule simply leaves out)")
    return codes
