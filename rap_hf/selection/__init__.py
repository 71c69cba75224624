"""Selection: CDE -> ACE -> DRM over score columns (docs/method.md, "Order"), in paper and reference modes.

Pure and fast: it reads the score columns as Arrow/NumPy arrays, never a model, in time and
memory linear in the number of rows, so thresholds can be changed and re-applied in seconds.
Every input row leaves with exactly one decision (`rap_keep`) and one reason (`rap_reason`).

Every selection rule ends the same way: a reason per row goes through `selection_from_reasons`,
which writes the decisions, the kept rows and a report whose counts add up to the input. `select`'s
two modes do, the baselines of `rap_hf.baselines` do, and so can a rule of your own, without any
change to the library:

    >>> import numpy as np
    >>> from rap_hf.selection import read_outcomes, selection_from_reasons
    >>> def solved_once(scored):  # doctest: +SKIP
    ...     outcomes = read_outcomes(scored)  # counts of correct rollouts, as NumPy arrays
    ...     reasons = np.where(outcomes.image_correct == 1, "kept", "not_selected")
    ...     reasons[~outcomes.valid] = "error"
    ...     return selection_from_reasons(scored, reasons, mode="solved_once", outcomes=outcomes)

The result is a `Selection` like any other: `save_to_disk`, `rap_hf.push_subset` and
`RAPGRPOTrainer` take it as they take `select`'s.

A saved selection is a folder in one layout, named once (`DATASET_FOLDER`, `DECISIONS_FOLDER`,
`REPORT_JSON`, ...) and recognised by `is_selection_folder`; the CLI, the Space and `rap-hf train`
read it through these names.

One job per module:

- `reasons`: the reason labels, their meanings and integer codes;
- `outcomes`: the score columns read as per-row counts (`read_outcomes`);
- `modes`: `select` and its paper and reference modes, as rule objects;
- `from_reasons`: `selection_from_reasons`, where every rule ends;
- `result`: `Selection` and `replacement_pool_rows`;
- `report`: `SelectionReport` (counts, settings, histograms, Markdown, plots, why nothing was kept);
- `layout`: the saved folder's names, `is_selection_folder`, and its writing and reading.
"""

from __future__ import annotations

from ..data.saved import (
    CONFIG_FILE,
    DATASET_FOLDER,
    DECISIONS_FOLDER,
    PLOTS_FOLDER,
    REPORT_JSON,
    REPORT_MARKDOWN,
    is_selection_folder,
)
from .from_reasons import selection_from_reasons
from .modes import limr_band, select
from .outcomes import Outcomes, read_outcomes
from .reasons import BASELINE_REASONS, KEPT_REASONS, REASON_CODES, REASON_MEANINGS, REASONS
from .report import SelectionReport
from .result import Selection, replacement_pool_rows

__all__ = [
    "BASELINE_REASONS", "CONFIG_FILE", "DATASET_FOLDER", "DECISIONS_FOLDER", "KEPT_REASONS", "PLOTS_FOLDER",
    "REASONS", "REASON_CODES", "REASON_MEANINGS", "REPORT_JSON", "REPORT_MARKDOWN", "Outcomes", "Selection",
    "SelectionReport", "is_selection_folder", "limr_band", "read_outcomes", "replacement_pool_rows", "select",
    "selection_from_reasons",
]
