"""What a selection did, accounted for every input row: `SelectionReport` (counts by reason, settings,
means, score histograms), written as `report.json`, `report.md` and plots, and why nothing was kept
when nothing was."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.columns import float_column
from ..rules import difficulty, discrepancy
from .outcomes import Outcomes


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
        if isinstance(self.thresholds.get("ace"), str):  # paper mode without ACE scores
            lines += ["", f"**ACE was {self.thresholds['ace']}.**"]
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


def score_histograms(o: Outcomes, scored) -> dict[str, dict[str, list]]:
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
