"""Which warm-up recipe teaches the embedded tiny scorer the visual world, and how soon.

    python -m benchmarks.gpu.warmup_recipes [--out FILE.json] [--budget-s 420]

The embedded scorer of the quickstart and the Space must learn, from random weights, to read colours
(and some counts) off the picture and to guess without it. On 2 CPU cores one warm-up example costs
about 11 ms, so a recipe's CPU time is its examples x 11 ms. This script tries recipes on a GPU
(fast enough for a sweep) and scores each warmed model on held-out world rows with `RAPScorer`
(M = 5, temperature 1): accuracy with and without the picture, per planted task. Results are
written after every recipe, so a run cut short keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MODEL = dict(text_hidden=128, text_intermediate=256, vision_hidden=64, vision_intermediate=128)
# (steps, batch size, learning rate, grid, extra model sizes)
RECIPES = [
    (250, 64, 3e-3, 3, {}),
    (500, 64, 3e-3, 3, {}),
    (1000, 64, 3e-3, 3, {}),
    (250, 64, 1e-2, 3, {}),
    (500, 64, 1e-2, 3, {}),
    (1000, 16, 1e-2, 3, {}),
    (500, 32, 1e-2, 3, {}),
    (1000, 64, 3e-3, 2, {}),
    (500, 64, 1e-2, 3, {"text_layers": 3}),
    (500, 64, 1e-2, 3, {"text_hidden": 64, "text_intermediate": 128}),
]


def _parse_recipe(text: str) -> tuple:
    steps, batch, lr, grid, *sizes = text.split(",")
    extra = {key: int(value) for key, value in (size.split("=") for size in sizes)}
    return int(steps), int(batch), float(lr), int(grid), extra


def main(argv=None) -> list[dict]:
    import datasets
    import numpy as np
    import torch

    from rap_hf import RAPConfig, RAPScorer
    from rap_hf.data.synthetic import make_visual_world
    from rap_hf.testing import build_tiny_vlm
    from rap_hf.warmup import warm_up

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/warmup_recipes_gpu.json")
    parser.add_argument("--budget-s", type=float, default=420, help="stop starting new recipes after this long")
    parser.add_argument("--eval-rows", type=int, default=150)
    parser.add_argument("--recipe", action="append", default=[],
                        help="STEPS,BATCH,LR,GRID[,size=value...] instead of the built-in list (repeatable)")
    args = parser.parse_args(argv)
    recipes = [_parse_recipe(text) for text in args.recipe] or RECIPES
    datasets.disable_progress_bars()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results, began = [], time.perf_counter()
    for steps, batch, lr, grid, extra in recipes:
        if time.perf_counter() - began > args.budget_s:
            break
        world = make_visual_world(1000 + args.eval_rows, seed=0, test_fraction=args.eval_rows / (1000 + args.eval_rows),
                                  image_size=84, grid=grid)
        work = Path(tempfile.mkdtemp())
        base = build_tiny_vlm("qwen2_5_vl", work / "base", seed=0, image_size=84, **{**MODEL, **extra})
        start = time.perf_counter()
        warm = warm_up(base, work / "warm", world["train"], steps=steps, batch_size=batch, learning_rate=lr,
                       device=device, show_progress=False)
        seconds = time.perf_counter() - start
        rows = world["test"]
        scored = RAPScorer(str(warm), RAPConfig(num_rollouts=5, max_new_tokens=40, batch_size=64, device=device,
                                                dtype="float32", compute_ace=False, compute_logit_cde=False,
                                                min_pixels=None, max_pixels=None)
                           ).map(rows, load_from_cache_file=False)
        tasks = np.asarray(rows["rap_task"])
        acc_image = np.asarray(scored["rap_acc_image"], dtype=float)
        acc_text = np.asarray(scored["rap_acc_text"], dtype=float)
        result = {"steps": steps, "batch_size": batch, "learning_rate": lr, "grid": grid, "model": {**MODEL, **extra},
                  "examples": steps * batch, "cpu_minutes_at_11ms": round(steps * batch * 0.011 / 60, 1),
                  "gpu_seconds": round(seconds, 1),
                  "by_task": {t: {"image": round(float(acc_image[tasks == t].mean()), 3),
                                  "text": round(float(acc_text[tasks == t].mean()), 3)} for t in sorted(set(tasks))}}
        results.append(result)
        print(json.dumps(result), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                                              "recipes": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
