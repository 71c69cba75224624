"""How well a score ranks one group of rows above another.

The quickstart asks whether rollout CDE and logit-CDE rank the planted visual rows above the
language-prior ones, and `benchmarks/logit_cde_study.py` asks the same over many worlds; both use
`auroc`, so their figures are the same statistic.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["auroc"]


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney U statistic).

    NaN scores (rows that could not be scored) are left out of both groups; None when either group
    is then empty. Compares every pair, so memory grows as len(positive) * len(negative): meant for
    the thousands of rows of a study, not a million.
    """
    import numpy as np  # here, not at the top: the CLI imports the quickstart (and so this) to build its parser

    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    pos, neg = pos[~np.isnan(pos)], neg[~np.isnan(neg)]
    if len(pos) == 0 or len(neg) == 0:
        return None
    above = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((above + 0.5 * ties) / (len(pos) * len(neg)))
