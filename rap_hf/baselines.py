"""Baselines to compare RAP against honestly; they return the same `Selection` type.

- `random_subset`: a uniformly random subset (the paper notes a random 20 % loses only ~0.8 points,
  so random subsets are the bar to clear).
- `pass_rate_band`: keep rows whose pass rate with the image lies in [low, high] (open-r1's filter,
  DAPO-style difficulty filtering): too easy and unsolvable rows give GRPO no signal.

Both are selection rules like any other: they label each row and hand the labels to
`rap_hf.selection.selection_from_reasons`, the public hook a rule of your own uses too.
"""

from __future__ import annotations

import numpy as np

from .selection import REASON_CODES, REASONS, Selection, read_outcomes, selection_from_reasons


def random_subset(ds, n: int | None = None, *, fraction: float | None = None, seed: int = 0) -> Selection:
    """A uniformly random subset of `n` rows (or `fraction` of them), reproducible for a seed.

    Rows left out get the reason `not_selected`. Works on any dataset, scored or not.
    """
    total = len(ds)
    if (n is None) == (fraction is None):
        raise ValueError(f"random_subset takes exactly one of n= (a number of rows) or fraction= (a share of the "
                         f"{total} rows), got n={n}, fraction={fraction}")
    if fraction is not None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"random_subset: fraction must be in [0, 1] (a share of the {total} rows), got {fraction}")
        n = round(total * fraction)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"random_subset: n must be a whole number of rows, got {n!r}")
    if not 0 <= n <= total:
        raise ValueError(f"random_subset: n must be in [0, {total}] (the dataset has {total} rows), got {n}")
    chosen = np.random.default_rng(seed).choice(total, size=n, replace=False)
    codes = np.full(total, REASON_CODES["not_selected"], dtype=np.int8)
    codes[chosen] = REASON_CODES["kept"]
    # Unscored rows are fine here: no outcomes, so the report has no score histograms.
    return selection_from_reasons(ds, codes, mode="random", counted=("kept", "not_selected"),
                                  thresholds={"n": n, "seed": seed}, fingerprint_parts=("random", n, seed))


def pass_rate_band(scored, low: float = 0.2, high: float = 0.8) -> Selection:
    """Keep scored rows with low <= acc_image <= high (answer-only correctness of the image rollouts).

    Reasons: `kept`; `trivial` above the band; `unsolvable` below it; `error` for unscored rows.
    """
    for name, value in (("low", low), ("high", high)):
        if not 0 <= value <= 1:
            raise ValueError(f"pass_rate_band: {name} must be in [0, 1] (a pass rate with the image), got {value}")
    if low > high:
        raise ValueError(f"pass_rate_band: low ({low}) must not exceed high ({high}), or no row can be kept")
    outcomes = read_outcomes(scored)
    if outcomes.partial:
        raise ValueError("pass_rate_band needs every rollout; these scores come from adaptive rollouts")
    m = outcomes.num_rollouts
    codes = np.full(outcomes.size, REASON_CODES["error"], dtype=np.int8)
    if m:
        acc = outcomes.image_correct / m
        valid = outcomes.valid
        codes[valid] = REASON_CODES["kept"]
        codes[valid & (acc > high)] = REASON_CODES["trivial"]
        codes[valid & (acc < low)] = REASON_CODES["unsolvable"]
    means = {"mean_acc_image": float((outcomes.image_correct / m)[outcomes.valid].mean())
             if m and outcomes.valid.any() else None}
    return selection_from_reasons(scored, codes, mode="pass_rate_band", counted=REASONS,
                                  thresholds={"low": low, "high": high}, means=means, outcomes=outcomes,
                                  fingerprint_parts=("pass_rate_band", low, high))
