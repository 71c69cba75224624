"""Logit-CDE against rollout CDE, and adaptive rollouts, on the embedded visual world.

    python -m benchmarks.logit_cde_study [--rows 300] [--steps 400] [--out FILE.json]

Warms up a tiny Qwen2.5-VL on the world's train split (`rap_hf.warmup`), then scores held-out world
rows three ways with the same model: rollout CDE (M = 5, `RAPScorer`), logit-CDE alone
(`LogitCDEScorer`, no sampling), and adaptive rollouts. Reports:

- how logit-CDE ranks rows against rollout CDE (Spearman), and how well each separates the planted
  language-prior rows from the visual ones (AUROC: a visual row scoring above a language-prior one);
- the cost of each (seconds, and rollouts drawn);
- whether adaptive rollouts give the same paper-mode selection as the full draw, and what they save.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranked[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None) -> dict:
    import datasets

    from rap_hf import LogitCDEScorer, RAPConfig, RAPScorer, __version__, select
    from rap_hf.data.synthetic import make_visual_world
    from rap_hf.metrics.ranking import auroc
    from rap_hf.testing import build_tiny_vlm
    from rap_hf.warmup import warm_up

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300, help="held-out world rows to score")
    parser.add_argument("--steps", type=int, default=400, help="warm-up steps (batch 64)")
    parser.add_argument("--model", help="an already warmed-up model folder (skips the warm-up)")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=168,
                        help="world picture side; 168 px = 36 image tokens (at 84 px = 9 the prompt drowns them)")
    parser.add_argument("--out", default="benchmarks/results/logit_cde_study.json")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()

    world = make_visual_world(1000 + args.rows, seed=0, test_fraction=args.rows / (1000 + args.rows),
                              image_size=args.image_size)
    results = {"machine": {"platform": platform.platform(), "cores": os.cpu_count()},
               "versions": {"rap_hf": __version__}, "rows": len(world["test"]),
               "image_size": args.image_size, "warm_up_steps": None if args.model else args.steps}
    if args.model:
        model = Path(args.model)
    else:
        work = Path(tempfile.mkdtemp())
        base = build_tiny_vlm("qwen2_5_vl", work / "base", seed=0, text_hidden=128, text_intermediate=256,
                              vision_hidden=64, vision_intermediate=128, image_size=args.image_size)
        start = time.perf_counter()
        model = warm_up(base, work / "warm", world["train"], steps=args.steps, batch_size=64)
        results["warm_up_seconds"] = time.perf_counter() - start
    rows = world["test"]

    # The tiny scorer keeps its own small resolution (what its warm-up saw).
    config = dict(num_rollouts=5, max_new_tokens=args.max_new_tokens, batch_size=16, min_pixels=None, max_pixels=None)
    start = time.perf_counter()
    full = RAPScorer(str(model), RAPConfig(**config, compute_logit_cde=False)).map(rows, load_from_cache_file=False)
    rollout_seconds = time.perf_counter() - start
    start = time.perf_counter()
    logit = LogitCDEScorer(str(model), RAPConfig(**config)).map(rows, load_from_cache_file=False)
    logit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    adaptive = RAPScorer(str(model), RAPConfig(**config, compute_logit_cde=False, adaptive=True)).map(
        rows, load_from_cache_file=False)
    adaptive_seconds = time.perf_counter() - start

    cde = np.asarray(full["rap_cde"], dtype=float)
    logit_cde = np.asarray(logit["rap_logit_cde"], dtype=float)
    planted = np.asarray(rows["rap_planted"])
    tasks = np.asarray(rows["rap_task"])
    valid = np.isfinite(cde) & np.isfinite(logit_cde)
    # A low CDE flags a language prior: P(a visual row scores above a language-prior row).
    visual, prior = valid & (planted == "visual"), valid & (planted == "language_prior")
    results["agreement"] = {
        "spearman_logit_vs_rollout_cde": spearman(cde[valid], logit_cde[valid]),
        "auroc_language_prior_rollout_cde": auroc(cde[visual], cde[prior]),
        "auroc_language_prior_logit_cde": auroc(logit_cde[visual], logit_cde[prior]),
    }
    acc_image = np.asarray(full["rap_acc_image"], dtype=float)
    acc_text = np.asarray(full["rap_acc_text"], dtype=float)
    results["by_task"] = {
        task: {"rows": int((tasks == task).sum()), "acc_image": float(acc_image[tasks == task].mean()),
               "acc_text": float(acc_text[tasks == task].mean()), "rollout_cde": float(cde[tasks == task].mean()),
               "logit_cde": float(logit_cde[tasks == task].mean())}
        for task in sorted(set(tasks))
    }
    drawn = sum(x is not None for column in ("rap_image_correct", "rap_text_correct")
                for flags in adaptive[column] for x in flags)
    planned = 2 * config["num_rollouts"] * len(rows)
    same = (list(select(adaptive).decisions["rap_reason"]) == list(select(full).decisions["rap_reason"]))
    results["cost"] = {"rollout_scoring_seconds": rollout_seconds, "logit_cde_seconds": logit_seconds,
                       "logit_cde_speedup": rollout_seconds / logit_seconds,
                       "adaptive_seconds": adaptive_seconds}
    results["adaptive"] = {"rollouts_drawn": drawn, "rollouts_full": planned, "saved": 1 - drawn / planned,
                           "same_paper_mode_decisions": same}
    results["selection"] = select(full).report.counts
    print(json.dumps(results, indent=2))
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
