"""What selection reads from scored rows: per-row counts of correct rollouts, with and without the
image, as NumPy arrays (`read_outcomes`), vectorised over Arrow columns, never row by row in Python."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.columns import float_values


@dataclass
class Outcomes:
    """Per-row rollout outcomes read from the score columns (NumPy arrays of length n)."""

    rap_id: np.ndarray
    valid: np.ndarray  # scored without error
    num_rollouts: int  # M
    image_correct: np.ndarray  # answer-only correct image rollouts (count; None flags count as wrong)
    image_strict: np.ndarray  # answer and format correct (the released script's reward == 1)
    text_correct: np.ndarray
    text_strict: np.ndarray
    ace: np.ndarray  # log psi, NaN where missing
    partial: bool = False  # adaptive scoring left some rollouts undrawn (None in the flag lists)

    @property
    def size(self) -> int:
        return len(self.valid)


def _list_counts(column, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true count, list length, flattened values) of a list<bool> Arrow column; null lists count 0."""
    import pyarrow.compute as pc

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.fill_null(pc.list_flatten(column), False).to_numpy(zero_copy_only=False).astype(bool)
    parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    counts = np.bincount(parents, weights=flat, minlength=n).astype(np.int64)
    return counts, lengths, flat


def read_outcomes(scored) -> Outcomes:
    """Read what selection needs from a scored dataset, vectorised (no per-row Python).

    Raises ValueError when score columns are missing, or when rows were scored with different
    numbers of rollouts (D and difficulty compare fractions of the same M)."""
    import pyarrow.compute as pc

    needed = ["rap_id", "rap_image_correct", "rap_text_correct", "rap_image_formatted", "rap_text_formatted"]
    missing = [c for c in needed if c not in scored.column_names]
    if missing:
        raise ValueError(
            f"select needs scored rows; missing columns {', '.join(missing)}. Score the rows first: `rap-hf score "
            "--model MODEL --dataset ROWS --output SCORED` (or rap_hf.RAPScorer; docs/scoring.md)."
        )
    columns = needed + [c for c in ("rap_error", "rap_ace") if c in scored.column_names]
    table = scored.select_columns(columns).with_format("arrow")[:]
    n = table.num_rows
    image_correct, image_len, image_flat = _list_counts(table.column("rap_image_correct"), n)
    text_correct, text_len, text_flat = _list_counts(table.column("rap_text_correct"), n)
    _, image_fmt_len, image_fmt = _list_counts(table.column("rap_image_formatted"), n)
    _, text_fmt_len, text_fmt = _list_counts(table.column("rap_text_formatted"), n)
    valid = image_len > 0
    if "rap_error" in table.column_names:
        valid &= pc.is_null(table.column("rap_error")).to_numpy(zero_copy_only=False)
    rap_id = np.asarray(table.column("rap_id").to_pylist(), dtype=object)
    if not (np.array_equal(image_len, image_fmt_len) and np.array_equal(text_len, text_fmt_len)):
        raise ValueError("rap_*_correct and rap_*_formatted lists differ in length; the scores are inconsistent")
    sizes = set(np.unique(image_len[valid]).tolist()) | set(np.unique(text_len[valid]).tolist())
    if len(sizes) > 1:
        first = image_len[valid][0]
        mismatched = np.flatnonzero(valid & ((image_len != first) | (text_len != first)))
        odd = int(mismatched[0]) if len(mismatched) else 0
        raise ValueError(
            f"rows were scored with different numbers of rollouts ({sorted(sizes)}), e.g. row {rap_id[odd]!r}; "
            "select needs the same M for every row. Score them again in one run (`rap-hf score` with one "
            "--num-rollouts, or one RAPConfig)."
        )
    num_rollouts = sizes.pop() if sizes else 0

    def strict(flat_correct, flat_format, lengths):
        parents = np.repeat(np.arange(n), lengths)
        return np.bincount(parents, weights=flat_correct & flat_format, minlength=n).astype(np.int64)

    partial = any(
        pc.sum(pc.is_null(pc.list_flatten(table.column(name)))).as_py() or 0
        for name in ("rap_image_correct", "rap_text_correct")
    )
    if "rap_ace" in table.column_names:
        ace = float_values(table.column("rap_ace"))
    else:
        ace = np.full(n, math.nan)
    return Outcomes(
        rap_id=rap_id, valid=valid, num_rollouts=num_rollouts,
        image_correct=image_correct, image_strict=strict(image_flat, image_fmt, image_len),
        text_correct=text_correct, text_strict=strict(text_flat, text_fmt, text_len), ace=ace, partial=partial,
    )
