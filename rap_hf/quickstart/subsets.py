"""Stage 4 of the study: what each arm trains on (the RAP selection, random subsets of its size, the
pass-rate band for comparison), and how well the scores find the planted rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics.ranking import auroc
from .world import value_counts


@dataclass
class Subsets:
    """What each arm trains on: the RAP selection, one random subset per seed (of RAP's size), and
    the pass-rate band (built for comparison, not trained)."""

    rap: Any  # Selection
    random: list  # one Selection per seed
    band: Any
    full: Any  # the scored pool


def build_subsets(scored, seeds: Sequence[int], cde_threshold: float = 0.5) -> Subsets:
    """RAP at `cde_threshold` (the paper's other settings), a random subset of its size per seed, and the
    pass-rate band."""
    from ..baselines import pass_rate_band, random_subset
    from ..config import SelectionConfig
    from ..selection import select

    rap = select(scored, SelectionConfig(cde_threshold=cde_threshold))
    randoms = [random_subset(scored, n=rap.report.kept, seed=seed) for seed in seeds]
    return Subsets(rap=rap, random=randoms, band=pass_rate_band(scored), full=scored)


def detection(scored) -> dict[str, Any]:
    """How well rollout CDE and logit-CDE rank the planted visual rows above the language-prior ones
    (AUROC; 0.5 is chance). None without planted labels."""
    from ..data.columns import float_column

    if "rap_planted" not in scored.column_names:
        return {"cde_auroc_language_prior": None, "logit_cde_auroc_language_prior": None,
                "note": "the dataset has no planted labels (rap_planted)"}
    planted = scored["rap_planted"]
    out: dict[str, Any] = {"rows": {"visual": planted.count("visual"), "language_prior": planted.count("language_prior")}}
    for key, column in (("cde_auroc_language_prior", "rap_cde"), ("logit_cde_auroc_language_prior", "rap_logit_cde")):
        if column not in scored.column_names:
            out[key] = None
            continue
        values = float_column(scored, column)
        visual = [v for v, p in zip(values, planted) if p == "visual"]
        prior = [v for v, p in zip(values, planted) if p == "language_prior"]
        value = auroc(visual, prior)
        out[key] = round(value, 4) if value is not None else None
    return out


def ace_coverage(scored) -> dict[str, int]:
    """Rows ACE could score (a finite log psi: some column of the window has `ace_min_rows` rows
    below it) and rows it flags."""
    import numpy as np

    from ..data.columns import float_column

    if "rap_ace" not in scored.column_names:
        return {"scored": 0, "flagged": 0}
    values = float_column(scored, "rap_ace")
    flags = scored["rap_ace_flag"] if "rap_ace_flag" in scored.column_names else [False] * len(scored)
    return {"scored": int(np.isfinite(values).sum()), "flagged": int(sum(bool(f) for f in flags))}


def composition(ds) -> dict[str, int] | None:
    """Rows per planted type of a subset (None without planted labels)."""
    return value_counts(ds, "rap_planted")



def selection_summary(subsets: Subsets, seeds: Sequence[int]) -> dict[str, Any]:
    """The report's `selection` section: RAP's decisions and the planted types it kept, the rows ACE
    could score, and the random subsets and the pass-rate band beside them."""
    rap = subsets.rap.report
    return {
        "mode": rap.mode,
        "kept": rap.kept,
        "fraction": round(rap.fraction, 4),
        "counts": rap.counts,
        "thresholds": rap.thresholds,
        "planted_kept": composition(subsets.rap.dataset),
        "ace": ace_coverage(subsets.full),
        "random": {"kept": rap.kept, "seeds": list(seeds),
                   "planted_kept": [composition(r.dataset) for r in subsets.random]},
        "pass_rate_band": {"kept": subsets.band.report.kept, "counts": subsets.band.report.counts,
                           "planted_kept": composition(subsets.band.dataset)},
    }
