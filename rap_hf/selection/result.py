"""What every selection rule returns: `Selection` (the kept rows, every row's decision, the report),
and the rows it leaves out that DRM may still draw from during training (`replacement_pool_rows`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SelectionConfig
from ..data.columns import float_column
from ..rules import difficulty
from .layout import read_selection, write_selection
from .outcomes import read_outcomes
from .report import SelectionReport


@dataclass
class Selection:
    """The result of `select` (or of a baseline).

    Attributes:
        dataset: The kept rows (all their columns, plus `rap_keep` and `rap_reason`).
        decisions: Every input row, in input order, with `rap_keep` (bool) and `rap_reason`.
        report: Counts by reason (adding up to the input size), thresholds, means, histograms.
        config: The `SelectionConfig` used (None for baselines and other rules).
    """

    dataset: Any
    decisions: Any
    report: SelectionReport
    config: SelectionConfig | None = None

    def __repr__(self) -> str:
        return (f"Selection(mode={self.report.mode!r}, kept={self.report.kept}, total={self.report.total}, "
                f"counts={self.report.counts})")

    def replacement_pool(self):
        """The rows left out that still give GRPO a signal (see `replacement_pool_rows`); with ACE
        on, rows it flags stay out, as DRM leaves them out."""
        uses_ace = self.config is not None and self.config.use_ace
        return replacement_pool_rows(self.decisions, ace_threshold=self.config.ace_threshold if uses_ace else None)

    def save_to_disk(self, folder: str | Path) -> Path:
        """Write `dataset/` (kept rows), `decisions/` (every row), `report.json`, `report.md`,
        `selection_config.json` and `plots/`; `Selection.load_from_disk` reads it back."""
        return write_selection(self, folder)

    @classmethod
    def load_from_disk(cls, folder: str | Path) -> Selection:
        """A selection written by `save_to_disk` (or `rap-hf select --output`)."""
        dataset, decisions, report, config = read_selection(folder)
        return cls(dataset=dataset, decisions=decisions, report=report, config=config)


def replacement_pool_rows(decisions, ace_threshold: float | None = None):
    """Rows of `decisions` left out that still give GRPO a signal: not kept, scored without error,
    not attention-biased, and answered right by some but not all image rollouts (0 < difficulty < 1).
    With `ace_threshold` (lambda_a), rows whose psi exceeds it stay out too, whatever their reason:
    DRM never adds a row that ACE flags.

    Pass them as `RAPGRPOTrainer(..., replacement_pool=...)` (or pass the `Selection` itself), which
    draws from them hardest first when a training row stops teaching.
    """
    missing = [c for c in ("rap_keep", "rap_reason") if c not in decisions.column_names]
    if missing:
        raise ValueError(f"replacement_pool_rows needs a selection's decisions; missing columns {missing}")
    table = decisions.select_columns(["rap_keep", "rap_reason"]).with_format("arrow")[:]
    if "rap_difficulty" in decisions.column_names:
        row_difficulty = float_column(decisions, "rap_difficulty")
    else:
        # Scores from before the scorer wrote it: derive it from the image rollouts, as the scorer
        # does, and keep it on the rows (the trainer draws the pool hardest first).
        outcomes = read_outcomes(decisions)
        row_difficulty = np.where(outcomes.valid, difficulty(outcomes.image_correct, max(outcomes.num_rollouts, 1)),
                                  np.nan)
        decisions = decisions.add_column("rap_difficulty", [None if np.isnan(d) else float(d) for d in row_difficulty])
    with np.errstate(invalid="ignore"):
        signal = (row_difficulty > 0) & (row_difficulty < 1)
    usable = ~np.isin(np.asarray(table.column("rap_reason").to_pylist(), dtype=object), ["error", "attention_biased"])
    if ace_threshold is not None and "rap_ace" in decisions.column_names:
        with np.errstate(invalid="ignore"):  # NaN (not scored): not flagged, as in select
            usable &= ~(float_column(decisions, "rap_ace") > math.log(ace_threshold))
    kept = np.asarray(table.column("rap_keep").to_pylist(), dtype=bool)
    return decisions.select(np.flatnonzero(~kept & usable & signal))
