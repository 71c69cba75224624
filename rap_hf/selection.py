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

A saved selection is a folder in one layout, named here once (`DATASET_FOLDER`, `DECISIONS_FOLDER`,
`REPORT_JSON`, ...) and recognised by `is_selection_folder`; the CLI, the Space and `rap-hf train`
read it through these names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import SelectionConfig
from .data.columns import float_column, float_values
from .scoring.cde import difficulty, discrepancy

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

# The layout of a saved selection (`Selection.save_to_disk`, `rap-hf select --output`).
DATASET_FOLDER = "dataset"  # the kept rows (datasets' save_to_disk)
DECISIONS_FOLDER = "decisions"  # every input row with rap_keep and rap_reason (save_to_disk)
REPORT_JSON = "report.json"  # SelectionReport.to_dict()
REPORT_MARKDOWN = "report.md"  # SelectionReport.to_markdown()
CONFIG_FILE = "selection_config.json"  # the SelectionConfig, or null for another rule
PLOTS_FOLDER = "plots"  # SelectionReport.save_plots()


def is_selection_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by `Selection.save_to_disk` (or `rap-hf select --output`): its
    `dataset/` (kept rows) and `decisions/` (every row) folders are both inside."""
    return os.path.isdir(os.path.join(path, DATASET_FOLDER)) and os.path.isdir(os.path.join(path, DECISIONS_FOLDER))


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
            "--model MODEL --dataset ROWS --output SCORED` (or rap_hf.RAPScorer; the README's scoring section)."
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


# --------------------------------------------------------------------------- the two modes
def _paper(o: Outcomes, config: SelectionConfig, has_ace: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """Paper mode (docs/method.md, "CDE", "ACE", "DRM"): keep D > lambda_c; drop psi > lambda_a
    as attention-biased; DRM swaps the trivial rows for the hardest rows left out."""

    m = o.num_rollouts
    reasons = np.full(o.size, REASON_CODES["error"], dtype=np.int8)
    if m == 0:
        return reasons, {"mean_acc_image": None, "mean_acc_text": None, "drm_k": 0}
    acc_image, acc_text = o.image_correct / m, o.text_correct / m
    # D from the counts, divided once (see `discrepancy`: subtracting the accuracies would let
    # 0.8 - 0.2 = 0.6000000000000001 pass lambda_c = 0.6). Reference mode keeps the released
    # script's subtraction on purpose.
    cde = discrepancy(o.image_correct, o.text_correct, m)
    valid = o.valid
    cde_pass = valid & (cde > config.cde_threshold)
    if o.partial and has_ace and not config.use_ace:
        raise ValueError(
            "these adaptive scores stopped rows using ACE; selecting them with use_ace=False would not match the "
            "full draw. Select with ACE on (--use-ace, use_ace=True) and the same thresholds, or score again "
            "without adaptive rollouts (`rap-hf score --no-adaptive`, adaptive=False)."
        )
    if config.use_ace:
        if not has_ace:
            raise ValueError("ACE is on (use_ace) but the rows have no rap_ace column: score with ACE "
                             "(`rap-hf score --compute-ace`, RAPScorer's compute_ace=True) or select without it "
                             "(--no-use-ace, use_ace=False)")
        flagged = valid & (o.ace > math.log(config.ace_threshold))  # NaN compares False: not flagged
    else:
        flagged = np.zeros(o.size, dtype=bool)
    subset = cde_pass & ~flagged
    trivial = subset & (o.image_correct == m)
    k = int(trivial.sum()) if config.drm_k is None else config.drm_k
    # Replacements: rows outside the subset that still give GRPO a signal (difficulty in [1/M, 1))
    # and that ACE does not flag, hardest first, then larger D, then rap_id.
    candidates = np.flatnonzero(valid & ~cde_pass & ~flagged & (o.image_correct >= 1) & (o.image_correct < m))
    order = np.lexsort((o.rap_id[candidates].astype(str), -cde[candidates], o.image_correct[candidates]))
    replacements = candidates[order[:k]]

    # Later assignments win: a row's reason follows the stages' precedence (docs/method.md, "Order").
    reasons[valid] = np.where(o.image_correct[valid] == 0, REASON_CODES["unsolvable"], REASON_CODES["language_prior"])
    reasons[cde_pass & flagged] = REASON_CODES["attention_biased"]
    reasons[subset] = REASON_CODES["kept"]
    reasons[trivial] = REASON_CODES["trivial"]
    reasons[replacements] = REASON_CODES["kept_replacement"]
    info = {
        "mean_acc_image": float(acc_image[valid].mean()) if valid.any() else None,
        "mean_acc_text": float(acc_text[valid].mean()) if valid.any() else None,
        "drm_k": k,
        "drm_candidates": int(len(candidates)),
    }
    return reasons, info


def limr_band(acc: np.ndarray, mean: float) -> np.ndarray:
    """LIMR's similarity to the dataset mean: 1 - (a - mu)^2 / (1 - mu)^2 (1 where mu == 1)."""
    if mean == 1.0:
        return np.ones_like(acc)
    return 1 - (acc - mean) ** 2 / (1 - mean) ** 2


def _reference(o: Outcomes, config: SelectionConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """The released selection script, exactly (docs/method.md, "CDE" and "DRM", reference mode)."""
    m = o.num_rollouts
    if o.partial:
        raise ValueError(
            "these scores come from adaptive rollouts (some rollouts undrawn), which keep paper-mode decisions exact; "
            "reference mode needs every rollout (its dataset means use all of them). Score again without adaptive "
            "rollouts (`rap-hf score --no-adaptive`, adaptive=False), or select in paper mode (--mode paper)."
        )
    reasons = np.full(o.size, REASON_CODES["error"], dtype=np.int8)
    valid = o.valid
    if m == 0 or not valid.any():
        return reasons, {"mean_acc_image": None, "mean_acc_text": None, "pool": 0, "sampled": 0}
    # Accuracies count reward == 1 (answer and format); computed as the script does, in float64.
    acc_image, acc_text = o.image_strict / m, o.text_strict / m
    mean_image, mean_text = float(np.mean(acc_image[valid])), float(np.mean(acc_text[valid]))
    gap = mean_image - mean_text
    band = limr_band(acc_image, mean_image)
    # The script subtracts the two accuracies (not `discrepancy`'s divided count difference): its
    # floating-point results decide ties at the thresholds, and this mode must keep what it keeps.
    cde = acc_image - acc_text
    core = valid & (band >= config.ref_core_band) & (cde > config.ref_core_gap)
    easy = valid & (o.image_correct == m)  # reward >= 0.9: the answer alone counts here
    right1 = valid & (o.image_correct == 1)
    looser = ((band >= config.ref_pool_band) & ((cde > gap) | (right1 & (cde >= config.ref_pool_gap)))) | (
        right1 & (cde >= config.ref_pool_strong_gap))
    pool = np.flatnonzero(valid & looser & right1).tolist()  # dataset positions, in dataset order
    rng = random.Random()
    rng.seed(config.drm_seed)
    sampled = np.asarray(rng.sample(pool, int(len(pool) * config.drm_ratio)), dtype=np.int64)

    kept = core & ~easy
    replacement = np.zeros(o.size, dtype=bool)
    replacement[sampled] = True
    replacement &= ~kept
    reasons[valid] = np.where(o.image_correct[valid] == 0, REASON_CODES["unsolvable"], REASON_CODES["language_prior"])
    reasons[easy] = REASON_CODES["trivial"]
    reasons[kept] = REASON_CODES["kept"]
    reasons[replacement] = REASON_CODES["kept_replacement"]
    info = {"mean_acc_image": mean_image, "mean_acc_text": mean_text, "mean_gap": gap,
            "pool": len(pool), "sampled": int(len(sampled))}
    return reasons, info


# --------------------------------------------------------------------------- report
def _settings(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list]:
    """Counts of `values` between `edges`, as JSON-ready lists."""
    counts, edges = np.histogram(values, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


@dataclass
class SelectionReport:
    """What a selection did, accounted for every input row."""

    mode: str
    total: int
    kept: int
    counts: dict[str, int]
    thresholds: dict[str, Any]
    means: dict[str, Any]
    num_rollouts: int
    histograms: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """The kept share of the input rows (0 for no rows)."""
        return self.kept / self.total if self.total else 0.0

    @property
    def why_none_kept(self) -> str | None:
        """When the selection kept no row, why, in one line: the counts by reason, the scorer's mean
        accuracy with the image and without, and what to try (derived from the counts). None when
        some row was kept."""
        if self.kept or self.total == 0:
            return None if self.kept else "Nothing was kept: the input has no rows."
        counts = {reason: count for reason, count in self.counts.items() if count}
        listed = ", ".join(f"{count:,} {reason}" for reason, count in counts.items())
        head = f"Nothing was kept (0 of {self.total:,} rows: {listed})"
        image, text = self.means.get("mean_acc_image"), self.means.get("mean_acc_text")
        accuracy = "" if image is None else f"mean acc_image {image:.2f}" + (
            "" if text is None else f", without the image {text:.2f}")
        scored = self.total - counts.get("error", 0)
        dominant = max(counts, key=lambda reason: (counts[reason], reason != "error"))
        if dominant == "error" or scored == 0:
            return (f"{head}: no row could be scored (each one's rap_error, in decisions/, says why). Fix what "
                    "rap_error names (`rap-hf score` lists the errors by reason) and score the rows again.")
        if self.mode == "pass_rate_band":
            low, high = self.thresholds.get("low"), self.thresholds.get("high")
            return (f"{head}: no row's acc_image lies in the band [{low}, {high}] ({accuracy}). Widen the band "
                    "(a lower low or a higher high), or score with a model closer to these rows' difficulty.")
        if dominant == "not_selected":
            return (f"{head}: the {self.mode} baseline was asked for no row ({_settings(self.thresholds)}). Ask "
                    "for more rows (n or fraction).")
        if dominant == "unsolvable":
            where = ("no row right with the image" if counts["unsolvable"] == scored else
                     f"{counts['unsolvable']:,} of {scored:,} rows wrong in every image rollout")
            return (f"{head}: the scorer answered {where} ({accuracy}), and a row no rollout solves gives GRPO no "
                    "signal. Score with a stronger model (RAP scores with the base model you will train, "
                    "`rap-hf score --model`), and check that the answers are what the model boxes and that "
                    "the format prompt (--format-prompt) asks for a \\boxed{} answer.")
        if dominant == "language_prior":
            if self.mode == "reference":
                return (f"{head}: no row passed the released script's band and gap tests ({accuracy}): the "
                        "scorer answers about as well without the image. Loosen --ref-core-band or --ref-core-gap, "
                        "select in paper mode (--mode paper), or score with a model that uses the image.")
            return (f"{head}: no row's D = acc_image - acc_text exceeded lambda_c = "
                    f"{self.thresholds.get('cde_threshold')} ({accuracy}): the scorer answers about as well "
                    "without the image. Lower --cde-threshold (D lies in [-1, 1]), or score with a model that "
                    "uses the image.")
        if dominant == "trivial" and self.mode == "reference":
            return (f"{head}: every core row was answered right in every image rollout ({accuracy}), which teaches "
                    "GRPO nothing, and the draw from the 1-of-M pool added none. Raise --drm-ratio, add harder "
                    "rows, or select in paper mode (--mode paper).")
        if dominant == "trivial":
            return (f"{head}: every row that passed CDE was answered right in every image rollout ({accuracy}), "
                    "which teaches GRPO nothing, and DRM found no harder row to add. Add harder rows, or lower "
                    "--cde-threshold so that DRM has rows to draw from.")
        if dominant == "attention_biased":
            return (f"{head}: ACE flagged every row that passed CDE (psi > lambda_a = "
                    f"{self.thresholds.get('ace_threshold')}). Raise --ace-threshold, or select without ACE "
                    "(--no-use-ace).")
        return f"{head}."

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what `report.json` holds), with `fraction` and `why_none_kept`
        added."""
        data = dataclasses.asdict(self)
        data["fraction"] = self.fraction
        data["why_none_kept"] = self.why_none_kept
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SelectionReport:
        """The report `to_dict()` (or `report.json`) holds; the derived entries are computed again."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in fields})

    def to_json(self, path: str | Path) -> None:
        """Write `to_dict()` as JSON to `path`."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def to_markdown(self) -> str:
        """Counts by reason and the settings, as Markdown tables (what `report.md` holds)."""
        lines = [
            f"**RAP selection ({self.mode} mode)**: kept {self.kept:,} of {self.total:,} rows "
            f"({100 * self.fraction:.1f} %), M = {self.num_rollouts} rollouts per condition.",
            "",
            "| reason | rows | share |",
            "|---|---:|---:|",
        ]
        for reason, count in self.counts.items():
            share = 100 * count / self.total if self.total else 0.0
            lines.append(f"| {reason} | {count:,} | {share:.1f} % |")
        if self.why_none_kept:
            lines += ["", f"**{self.why_none_kept}**"]
        lines += ["", "| setting | value |", "|---|---|"]
        for name, value in {**self.thresholds, **self.means}.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"| {name} | {shown} |")
        return "\n".join(lines) + "\n"

    def figure(self):
        """A matplotlib figure of the score histograms with the thresholds drawn.

        Built without pyplot, so nothing keeps it alive once the caller drops it (the Space draws
        one per slider move)."""
        from matplotlib.figure import Figure

        titles = {"rap_cde": "CDE: D = acc_image - acc_text", "rap_ace": "ACE: log psi",
                  "rap_difficulty": "difficulty = 1 - acc_image", "rap_logit_cde": "logit-CDE"}
        lines = {"rap_cde": self.thresholds.get("cde_threshold"),
                 "rap_ace": math.log(self.thresholds["ace_threshold"]) if self.thresholds.get("use_ace") else None}
        shown = [name for name in titles if name in self.histograms]
        fig = Figure(figsize=(4.2 * max(1, len(shown)), 3.2))
        axes = fig.subplots(1, max(1, len(shown)), squeeze=False)
        for ax, name in zip(axes[0], shown):
            hist = self.histograms[name]
            edges = np.asarray(hist["edges"])
            ax.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color="#4c72b0", edgecolor="white")
            if lines.get(name) is not None:
                ax.axvline(lines[name], color="#c44e52", linestyle="--", label="threshold")
                ax.legend(loc="upper left", fontsize=8)
            ax.set_title(titles[name], fontsize=10)
            ax.set_ylabel("rows")
        fig.suptitle(f"RAP scores ({self.mode} mode): kept {self.kept} of {self.total}", fontsize=11)
        fig.tight_layout()
        return fig

    def save_plots(self, directory: str | Path) -> list[Path]:
        """Histograms of the scores with the thresholds drawn, as PNG files; returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "score_distributions.png"
        self.figure().savefig(path, dpi=110)
        return [path]


def _histograms(o: Outcomes, scored) -> dict[str, dict[str, list]]:
    """The report's score histograms over the scored rows: D and difficulty (one bin per value
    they can take), ACE and logit-CDE where the rows have them."""

    m, valid = o.num_rollouts, o.valid
    if m == 0 or not valid.any():
        return {}
    half = 0.5 / m  # bins centred on the multiples of 1/M
    out = {
        "rap_cde": _histogram(discrepancy(o.image_correct[valid], o.text_correct[valid], m),
                              np.linspace(-1 - half, 1 + half, 2 * m + 2)),
        "rap_difficulty": _histogram(difficulty(o.image_correct[valid], m), np.linspace(-half, 1 + half, m + 2)),
    }
    finite = o.ace[valid & np.isfinite(o.ace)]
    if len(finite):
        out["rap_ace"] = _histogram(finite, np.linspace(finite.min(), finite.max() + 1e-9, 21))
    if "rap_logit_cde" in scored.column_names:
        values = float_column(scored, "rap_logit_cde")
        values = values[valid & np.isfinite(values)]
        if len(values):
            out["rap_logit_cde"] = _histogram(values, np.linspace(values.min(), values.max() + 1e-9, 21))
    return out


# --------------------------------------------------------------------------- public API
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
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.dataset.save_to_disk(str(folder / DATASET_FOLDER))
        self.decisions.save_to_disk(str(folder / DECISIONS_FOLDER))
        self.report.to_json(folder / REPORT_JSON)
        (folder / REPORT_MARKDOWN).write_text(self.report.to_markdown())
        config = self.config.to_dict() if self.config is not None else None
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        self.report.save_plots(folder / PLOTS_FOLDER)
        return folder

    @classmethod
    def load_from_disk(cls, folder: str | Path) -> Selection:
        """A selection written by `save_to_disk` (or `rap-hf select --output`)."""
        from datasets import load_from_disk

        from .data.io import load_saved

        folder = Path(folder)
        # The report is needed too (not only what `is_selection_folder` looks for): it is loaded back.
        missing = [name for name in (DATASET_FOLDER, DECISIONS_FOLDER, REPORT_JSON) if not (folder / name).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a saved selection (no {', '.join(missing)}); write one with "
                                    "Selection.save_to_disk or `rap-hf select --output`")
        report = SelectionReport.from_dict(json.loads((folder / REPORT_JSON).read_text()))
        config_path = folder / CONFIG_FILE
        config = json.loads(config_path.read_text()) if config_path.exists() else None
        decisions = load_saved(folder / DECISIONS_FOLDER)  # a selection of no rows too (datasets cannot)
        # datasets cannot load a saved dataset of no rows; the kept rows are then none of the decisions.
        dataset = decisions.select([]) if report.kept == 0 else load_from_disk(str(folder / DATASET_FOLDER))
        return cls(dataset=dataset, decisions=decisions, report=report,
                   config=SelectionConfig(**config) if config else None)


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


def _fingerprint(scored, *parts) -> str:
    """Cache fingerprint of a selection: the input's fingerprint and what decided it.

    Passed to `datasets` so it does not hash a million decisions to make one up.
    """
    payload = json.dumps([getattr(scored, "_fingerprint", None), *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _as_codes(reasons: Sequence[str] | Sequence[int] | np.ndarray, size: int) -> np.ndarray:
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
    codes = _as_codes(reasons, size)
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
        histograms=_histograms(outcomes, rows) if outcomes is not None else {},
    )
    return Selection(dataset=kept, decisions=decisions, report=report, config=config)


def select(scored, config: SelectionConfig | None = None, **overrides) -> Selection:
    """Select the high-value rows of a scored dataset: CDE -> ACE -> DRM (docs/method.md, "Order").

    Args:
        scored: Rows with RAP's score columns (the output of `RAPScorer`).
        config: A `SelectionConfig`; `mode="paper"` (default) or `"reference"`.
        **overrides: Fields of `SelectionConfig` to change, e.g. `select(scored, cde_threshold=0.4)`.

    Returns:
        A `Selection` with the kept rows, every row's decision and reason, and the report.
    """
    if config is not None and "mode" in overrides and "use_ace" not in overrides:
        overrides["use_ace"] = None  # re-derive the mode's default instead of keeping the old mode's
    config = dataclasses.replace(config, **overrides) if config is not None else SelectionConfig(**overrides)
    outcomes = read_outcomes(scored)
    if config.mode == "paper":
        codes, info = _paper(outcomes, config, has_ace="rap_ace" in scored.column_names)
        thresholds = {"cde_threshold": config.cde_threshold, "ace_threshold": config.ace_threshold,
                      "use_ace": config.use_ace, "drm_k": info.pop("drm_k")}
    else:
        codes, info = _reference(outcomes, config)
        thresholds = {"core_band": config.ref_core_band, "core_gap": config.ref_core_gap,
                      "pool_band": config.ref_pool_band, "pool_gap": config.ref_pool_gap,
                      "pool_strong_gap": config.ref_pool_strong_gap, "drm_ratio": config.drm_ratio,
                      "drm_seed": config.drm_seed, "use_ace": False}
    return selection_from_reasons(scored, codes, mode=config.mode, counted=REASONS, thresholds=thresholds,
                                  means=info, outcomes=outcomes, config=config,
                                  fingerprint_parts=("select", config.to_dict()))
