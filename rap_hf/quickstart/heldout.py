"""Stage 6 of the study: each model graded on the held-out rows, and what the grades say per arm
(means over seeds, their spread, and the smallest RAP - random difference this run can resolve).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import QuickstartConfig
from .runs import ARMS
from .scoring import image_resolution


def evaluate_arm(model, heldout, *, config: QuickstartConfig, output_dir: Path) -> dict[str, Any]:
    """Greedy held-out accuracy of `model` (the `answer_accuracy` metric), overall and per planted
    type and task; the per-row results are saved to `output_dir`."""
    from ..evaluation import evaluate_model

    result = evaluate_model(str(model), heldout, max_new_tokens=config.max_new_tokens_or_default(), batch_size=50,
                            device=config.device, show_progress=False, dataset_name="held-out",
                            **image_resolution(config))
    result.save(output_dir)
    correct = result.rows["correct"]
    out: dict[str, Any] = {"accuracy": round(result.summary["accuracy"], 4), "correct": list(correct),
                           "format_rate": round(result.summary["format_rate"], 4),
                           "errors": result.summary["errors"], "seconds": round(result.summary["seconds"], 2)}
    for key, column in (("per_type", "rap_planted"), ("per_task", "rap_task")):
        if column in heldout.column_names:
            groups = collections.defaultdict(list)
            for label, ok in zip(heldout[column], correct):
                groups[label].append(ok)
            out[key] = {label: round(sum(v) / len(v), 4) for label, v in sorted(groups.items())}
    return out


def models_to_evaluate(model: str, seeds: Sequence[int],
                       checkpoints: dict[str, list[Path]]) -> list[tuple[str, int | None, Path]]:
    """(arm, seed, folder) of every model to grade: the base model (seed None), then each arm's
    checkpoints, seed by seed."""
    return [("base", None, Path(model))] + [(arm, seed, folder) for arm in ARMS
                                            for seed, folder in zip(seeds, checkpoints[arm])]


def evaluate_models(models: Sequence[tuple[str, int | None, Path]], heldout, *, config: QuickstartConfig,
                    out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every model of `models` graded on `heldout` (`evaluate_arm`, per-row results in `out/eval/NAME`):
    per arm, one result per seed."""
    from tqdm.auto import tqdm

    evaluations: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ("base", *ARMS)}
    for arm, seed, folder in tqdm(models, desc="Evaluations", unit="model"):
        name = "base" if seed is None else f"{arm}-seed{seed}"
        result = evaluate_arm(folder, heldout, config=config, output_dir=out / "eval" / name)
        evaluations[arm].append({"seed": seed, **result})
    return evaluations


def rounded_mean(values: Sequence[float]) -> float | None:
    """The mean to 4 places, as the report gives it (None without values)."""
    return round(sum(values) / len(values), 4) if values else None


def rounded_std(values: Sequence[float]) -> float | None:
    """The sample standard deviation to 4 places (0 for one value, None without values)."""
    if len(values) < 2:
        return 0.0 if values else None
    mean = sum(values) / len(values)
    return round(math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)), 4)


def summarise_accuracy(evaluations: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`heldout_accuracy` of the report: per arm the mean over seeds, plus per-seed lists, the
    spread and per-type means."""
    out: dict[str, Any] = {}
    per_seed, spread, per_type, per_task = {}, {}, {}, {}
    for arm, runs in evaluations.items():
        accuracies = [run["accuracy"] for run in runs]
        out[arm] = rounded_mean(accuracies)
        per_seed[arm] = accuracies
        spread[arm] = rounded_std(accuracies)
        for key, target in (("per_type", per_type), ("per_task", per_task)):
            labels = sorted({label for run in runs for label in run.get(key, {})})
            if labels:
                target[arm] = {label: rounded_mean([run[key][label] for run in runs
                                                    if label in run.get(key, {})]) for label in labels}
    out.update(per_seed=per_seed, std=spread, per_type=per_type, per_task=per_task)
    return out


def resolution(evaluations: dict[str, list[dict[str, Any]]]) -> float | None:
    """The smallest RAP - random difference in held-out accuracy this run can tell from noise: twice
    the standard error (about 95 %) of the mean paired difference. Paired: both arms of a seed are
    graded on the same held-out rows, so rows that every model gets right or wrong add no noise. Two
    sources count: the seeds (the variance of the per-seed differences over the seeds) and which rows
    were held out (the variance over rows of the per-row difference, averaged over seeds). None with
    fewer than two seeds, whose spread is unknown."""
    import numpy as np

    rap = {run["seed"]: run["correct"] for run in evaluations.get("rap", [])}
    rand = {run["seed"]: run["correct"] for run in evaluations.get("random", [])}
    seeds = sorted(set(rap) & set(rand))
    if len(seeds) < 2:
        return None
    differences = np.asarray([np.asarray(rap[s], float) - np.asarray(rand[s], float) for s in seeds])  # seed x row
    over_seeds = differences.mean(axis=1).var(ddof=1) / len(seeds)
    over_rows = differences.mean(axis=0).var(ddof=1) / differences.shape[1]
    return round(2 * math.sqrt(over_seeds + over_rows), 4)



def heldout_accuracy(evaluations: dict[str, list[dict[str, Any]]], rows: int) -> dict[str, Any]:
    """The report's `heldout_accuracy` section: `summarise_accuracy`, the held-out rows and the
    `resolution`."""
    return {**summarise_accuracy(evaluations), "rows": rows, "resolution": resolution(evaluations)}


def rap_effect(accuracy: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The report's `effect` section: what the study sets out to show, as numbers. RAP against the
    random subset of its size (beyond the run's `resolution`?), against the full pool (at least as
    good, less the resolution?) and the compute each arm spent (completions generated per run), and
    per planted type RAP's gain over the base model and over random. None where an arm is missing."""

    def diff(a: float | None, b: float | None) -> float | None:
        return round(a - b, 4) if a is not None and b is not None else None

    rap, rand, full = (accuracy.get(arm) for arm in ("rap", "random", "full"))
    smallest = accuracy.get("resolution")
    spent = {arm: training[arm].get("completions") for arm in ARMS}
    over_random, over_full = diff(rap, rand), diff(rap, full)
    per_type = accuracy.get("per_type", {})
    types = sorted({t for per in per_type.values() for t in per})
    return {
        "rap_minus_random": over_random,
        "rap_minus_full": over_full,
        "resolution": smallest,
        "rap_beats_random": None if over_random is None or smallest is None else over_random > smallest,
        "rap_matches_full": None if over_full is None or smallest is None else over_full >= -smallest,
        "completions": spent,
        "full_to_rap_completions": round(spent["full"] / spent["rap"], 2) if spent["rap"] and spent["full"] else None,
        "per_type": {t: {"rap_gain_over_base": diff(per_type.get("rap", {}).get(t), per_type.get("base", {}).get(t)),
                         "rap_minus_random": diff(per_type.get("rap", {}).get(t), per_type.get("random", {}).get(t))}
                     for t in types},
    }
