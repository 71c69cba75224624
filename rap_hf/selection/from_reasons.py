"""`selection_from_reasons`: where every selection rule ends. Given one reason per row, it writes the
decisions, the kept rows and a report whose counts add up to the input; `select`'s modes, the
baselines of `rap_hf.baselines` and a rule of your own all hand their reasons to it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..config import SelectionConfig
from .outcomes import Outcomes
from .reasons import BASELINE_REASONS, KEPT_REASONS, REASON_CODES, REASONS, reason_codes
from .report import SelectionReport, score_histograms
from .result import Selection


def _fingerprint(scored, *parts) -> str:
    """Cache fingerprint of a selection: the input's fingerprint and what decided it.

    Passed to `datasets` so it does not hash a million decisions to make one up.
    """
    payload = json.dumps([getattr(scored, "_fingerprint", None), *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def selection_from_reasons(
    rows,
    reasons: Sequence[str] | Sequence[int] | np.ndarray,
    *,
    mode: str,
    counted: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    means: Mapping[str, Any] | None = None,
    outcomes: Outcomes | None = None,
    config: SelectionConfig | None = None,
    fingerprint_parts: Sequence[Any] | None = None,
) -> Selection:
    """The `Selection` of `rows` given each row's reason: where every selection rule ends.

    `select`'s modes and the baselines of `rap_hf.baselines` decide a reason per row and call this;
    a rule of your own does the same (see this module's docstring for an example). A row is kept
    when its reason is one of `KEPT_REASONS` ("kept", "kept_replacement").

    Args:
        rows: The dataset the reasons are about; every row stays in `decisions`, in order.
        reasons: One per row, in row order: labels from `REASON_MEANINGS` ("kept", "not_selected",
            "error", ...), or their `REASON_CODES` as integers (fastest for millions of rows).
        mode: The rule's name, as the report, the saved folder and the dataset card show it.
        counted: The reasons the report counts, in this order. Every row's reason must be among
            them, so the counts add up to the number of rows. Default: `REASONS`, followed by
            "not_selected" when some row has it.
        thresholds: The rule's settings, for the report (JSON-ready values).
        means: Figures the rule computed on the way (e.g. mean accuracies), for the report.
        outcomes: The rows' `read_outcomes`, when the rule read them: the report then records M and
            histograms of the scores. None (rows need not be scored): no histograms, M = 0.
        config: The `SelectionConfig` behind the rule, if any (`Selection.replacement_pool` follows
            its ACE setting).
        fingerprint_parts: JSON-ready values that, with the input's own fingerprint, determine the
            decisions; they name the new columns in `datasets`' cache. Default: the mode, the
            thresholds and a digest of the reasons.

    Returns:
        A `Selection`: the kept rows, every row with `rap_keep` and `rap_reason`, and the report.

    Raises:
        ValueError: a reason per row is missing, a label or code is unknown, or a row's reason is not
            counted.
        TypeError: the reasons are neither labels nor integer codes (e.g. keep flags).
    """
    from datasets import Value

    size = len(rows)
    codes = reason_codes(reasons, size)
    if counted is None:
        counted = REASONS + (("not_selected",) if (codes == REASON_CODES["not_selected"]).any() else ())
    unknown = [name for name in counted if name not in REASON_CODES]
    if unknown:
        raise ValueError(f"counted names unknown reasons {unknown}; reasons are {', '.join(REASON_CODES)}")
    counts = {name: int((codes == REASON_CODES[name]).sum()) for name in counted}
    if sum(counts.values()) != size:  # every row has exactly one reason, and the report accounts for it
        left_out = sorted({name for name, code in REASON_CODES.items() if name not in counts and (codes == code).any()})
        raise ValueError(f"some rows have reasons the report does not count ({', '.join(left_out)}); add them to "
                         "`counted`")
    if fingerprint_parts is None:
        # int8 whatever the caller's integer type, so labels and codes of the same reasons agree.
        fingerprint_parts = (mode, dict(thresholds or {}),
                             hashlib.sha256(codes.astype(np.int8).tobytes()).hexdigest())
    fingerprint = _fingerprint(rows, *fingerprint_parts)

    labels = np.asarray(REASONS + BASELINE_REASONS, dtype=object)[codes]
    keep = np.isin(codes, [REASON_CODES[r] for r in KEPT_REASONS])
    # A selection of a selection's decisions replaces their columns rather than adding a second pair.
    decisions = rows.remove_columns([c for c in ("rap_keep", "rap_reason") if c in rows.column_names])
    decisions = decisions.add_column("rap_keep", keep.tolist(), feature=Value("bool"),
                                     new_fingerprint=fingerprint + "-keep")
    decisions = decisions.add_column("rap_reason", labels.tolist(), feature=Value("string"),
                                     new_fingerprint=fingerprint + "-reason")
    kept = decisions.select(np.flatnonzero(keep), new_fingerprint=fingerprint + "-kept")
    report = SelectionReport(
        mode=mode, total=size, kept=len(kept), counts=counts, thresholds=dict(thresholds or {}),
        means=dict(means or {}), num_rollouts=outcomes.num_rollouts if outcomes is not None else 0,
        histograms=score_histograms(outcomes, rows) if outcomes is not None else {},
    )
    return Selection(dataset=kept, decisions=decisions, report=report, config=config)
