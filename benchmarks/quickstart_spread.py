"""How much the default quickstart's figures depend on the machine.

    python -m benchmarks.quickstart_spread [--conditions two_threads,one_thread,cached,scorer_seed_1]

Runs `rap-hf quickstart` (the default study) once per condition, each from an empty cache as a new user
would (`cached` reuses the first run's cache, for its time), and writes the key figures of every run and
their spread to `benchmarks/results/quickstart_spread.json`:

- `two_threads`: the default run, with torch's threads as the machine sets them (2 on 2 cores).
- `one_thread`: `OMP_NUM_THREADS=1`: every matrix product sums in another order, so float results differ
  from the first rollout on.
- `cached`: the default run again on the first run's cache (scores reused): its time only.
- `scorer_seed_1`: `--warm-up --scorer-seed 1`: a scorer warmed up here from other initial weights
  instead of the one shipped with the package.
- `gpu`: `--device cuda`, when torch sees a GPU.

The float conditions (threads, GPU) run the shipped scorer, so the figures README.md and
docs/quickstart.md quote should hold on them within `TOLERANCE`; the run checks that and says which
figure, if any, moved further. The other scorer seed is reported beside them: its figures are another
scorer's, held to the scorer-skill and AUROC goals only. Each run takes 4 to 9 minutes on 2 CPU cores; run it alone (no other torch process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "quickstart_spread.json"
CONDITIONS = {
    "two_threads": {"env": {}, "args": []},
    "one_thread": {"env": {"OMP_NUM_THREADS": "1"}, "args": []},
    "cached": {"env": {}, "args": [], "cache_of": "two_threads"},
    "scorer_seed_1": {"env": {}, "args": ["--warm-up", "--scorer-seed", "1"]},
    "gpu": {"env": {}, "args": ["--device", "cuda"]},
}
FLOAT_CONDITIONS = ("two_threads", "one_thread", "gpu")
# How far a fresh default run may land from another on the shipped scorer (README.md and docs/quickstart.md
# state these).
# Skills and detection come from rollouts of fixed weights: float noise flips a sampled token now and
# then. Selection and training compound such flips (GRPO samples from the model it updates), so the
# held-out accuracies of the trained arms move more than the base model's.
TOLERANCE = {"skills": 0.05, "auroc": 0.03, "kept": 8, "base_accuracy": 0.02, "arm_accuracy": 0.05,
             "signal_share": 0.1}
# The goals for every scorer, shipped or warmed up here.
# RAP's effect (the quickstart's verdict): RAP beats random beyond the run's resolution, the learnable
# type gains `learnable_gain` over the base model, RAP matches the full pool (less the resolution) at
# most `rap_compute_share` of its completions.
GOALS = {"sees": 0.9, "guesses": 0.35, "cde_auroc": 0.95, "logit_cde_auroc": 0.9, "fresh_seconds": 300,
         "cached_seconds": 180, "learnable_gain": 0.10, "rap_compute_share": 1 / 3}


def key_figures(report: dict) -> dict:
    """The figures README.md and docs/quickstart.md quote, from one report.json."""
    skills = report["scorer"]["skills"]
    acc, det, training = report["heldout_accuracy"], report["detection"], report["training"]
    return {
        "skills": {task: {"image": v["image"], "text": v["text"]} for task, v in skills.items()},
        "cde_auroc": det["cde_auroc_language_prior"],
        "logit_cde_auroc": det["logit_cde_auroc_language_prior"],
        "kept": report["selection"]["kept"],
        "counts": report["selection"]["counts"],
        "accuracy": {arm: acc.get(arm) for arm in ("base", "rap", "random", "full")},
        "per_seed": acc["per_seed"],
        "resolution": acc.get("resolution"),
        "signal_share": {arm: training[arm].get("signal_share_mean") for arm in ("rap", "random", "full")},
        "steps": {arm: training[arm]["steps"] for arm in ("rap", "random", "full")},
        "completions": {arm: training[arm].get("completions") for arm in ("rap", "random", "full")},
        "effect": report.get("effect"),
        "timings": report["timings"],
        "scorer_source": report["scorer"].get("source"),
    }


def run_condition(name: str, root: Path, python: str = sys.executable) -> dict:
    condition = CONDITIONS[name]
    cache = root / (condition.get("cache_of") or name) / "cache"
    out = root / name / "out"
    env = {**os.environ, **condition["env"], "RAP_HF_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    command = [python, "-m", "rap_hf", "quickstart", "--out", str(out), *condition["args"]]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{name}: {' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    # The command as a user types it: the run's own folders are temporary.
    return {"command": " ".join(["rap-hf", "quickstart", *condition["args"]]), "env": condition["env"],
            "wall_seconds": round(seconds, 1),
            **key_figures(report)}


def _flat(figures: dict) -> dict[str, tuple[str, float]]:
    """(tolerance kind, value) of every figure held to a tolerance."""
    flat = {f"skills.{task}.{side}": ("skills", v[side]) for task, v in figures["skills"].items()
            for side in ("image", "text")}
    flat["cde_auroc"] = ("auroc", figures["cde_auroc"])
    flat["logit_cde_auroc"] = ("auroc", figures["logit_cde_auroc"])
    flat["kept"] = ("kept", figures["kept"])
    flat["accuracy.base"] = ("base_accuracy", figures["accuracy"]["base"])
    for arm in ("rap", "random", "full"):
        flat[f"accuracy.{arm}"] = ("arm_accuracy", figures["accuracy"][arm])
        flat[f"signal_share.{arm}"] = ("signal_share", figures["signal_share"][arm])
    return flat


def spread(runs: dict[str, dict]) -> dict:
    """Per figure, its range over the float conditions that ran, and whether it is within tolerance."""
    names = [name for name in FLOAT_CONDITIONS if name in runs]
    flats = {name: _flat(runs[name]) for name in names}
    out = {}
    for figure, (kind, _) in flats[names[0]].items():
        values = [flats[name][figure][1] for name in names if flats[name].get(figure, (None, None))[1] is not None]
        if len(values) < 2:
            continue
        width = round(max(values) - min(values), 4)
        out[figure] = {"values": dict(zip(names, values)), "range": width, "tolerance": TOLERANCE[kind],
                       "within": width <= TOLERANCE[kind] + 1e-9}
    return out


def goals(figures: dict, wall_seconds: float, *, cached: bool = False, warm_up: bool = False) -> dict[str, bool]:
    """The issue's goals, for one run (a run that warms its scorer up first is not held to the time goals)."""
    skills = figures["skills"]
    met = {
        "sees_colour_and_count": all(skills[t]["image"] >= GOALS["sees"] for t in ("colour", "count")),
        "guesses_without_the_picture": all(skills[t]["text"] <= GOALS["guesses"] for t in ("colour", "count")),
        "leaked_right_both_ways": all(min(skills[t].values()) >= GOALS["sees"] for t in ("leaked_colour",
                                                                                         "leaked_count")),
        "cde_auroc": figures["cde_auroc"] >= GOALS["cde_auroc"],
        "logit_cde_auroc": figures["logit_cde_auroc"] >= GOALS["logit_cde_auroc"],
    }
    effect = figures.get("effect") or {}
    if effect:
        spent = effect.get("completions") or {}
        learnable = (effect.get("per_type") or {}).get("learnable") or {}
        met["rap_beats_random"] = bool(effect.get("rap_beats_random"))
        met["learnable_gain"] = (learnable.get("rap_gain_over_base") or 0.0) >= GOALS["learnable_gain"]
        met["learnable_rap_beats_random"] = (learnable.get("rap_minus_random") or 0.0) > (effect.get("resolution") or 0)
        met["rap_matches_full"] = bool(effect.get("rap_matches_full"))
        met["rap_compute_share"] = bool(spent.get("rap")) and spent["rap"] <= GOALS["rap_compute_share"] * spent["full"]
    if warm_up:
        return met
    met["cached_seconds" if cached else "fresh_seconds"] = wall_seconds <= GOALS[
        "cached_seconds" if cached else "fresh_seconds"]
    return met


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conditions", default="two_threads,one_thread,cached,scorer_seed_1,gpu",
                        help="Comma-separated conditions to run (gpu is skipped without a GPU)")
    parser.add_argument("--out", default=str(RESULTS), help="JSON file to write")
    parser.add_argument("--work-dir", help="Where the runs write, kept (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    import torch

    names = [name.strip() for name in args.conditions.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CONDITIONS))
    if unknown:
        parser.error(f"unknown condition(s) {unknown}; choose from {sorted(CONDITIONS)}")
    if "gpu" in names and not torch.cuda.is_available():
        names.remove("gpu")
    for name in names:  # a cached run needs the run whose cache it reuses, first
        source = CONDITIONS[name].get("cache_of")
        if source and (source not in names or names.index(source) > names.index(name)):
            parser.error(f"{name} reuses the cache of {source}: list {source} before it")
    with contextlib.nullcontext(args.work_dir) if args.work_dir else tempfile.TemporaryDirectory() as work:
        runs = {}
        for name in names:
            print(f"[{name}] rap-hf quickstart ...", flush=True)
            runs[name] = run_condition(name, Path(work))
            runs[name]["goals"] = goals(runs[name], runs[name]["wall_seconds"], cached="cache_of" in CONDITIONS[name],
                                        warm_up="--warm-up" in CONDITIONS[name]["args"])
            figures = runs[name]
            print(f"[{name}] {figures['wall_seconds']:.0f} s; colour {figures['skills']['colour']['image']:.0%} / "
                  f"{figures['skills']['colour']['text']:.0%}, count {figures['skills']['count']['image']:.0%} / "
                  f"{figures['skills']['count']['text']:.0%}; AUROC {figures['cde_auroc']} (logit "
                  f"{figures['logit_cde_auroc']}); kept {figures['kept']}; accuracy {figures['accuracy']}; goals "
                  f"{figures['goals']}", flush=True)
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "tolerance": TOLERANCE,
        "goals": GOALS,
        "runs": runs,
        "spread": spread(runs) if sum(name in runs for name in FLOAT_CONDITIONS) >= 2 else {},
    }
    result["all_within_tolerance"] = all(entry["within"] for entry in result["spread"].values())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for figure, entry in result["spread"].items():
        flag = "" if entry["within"] else "   <-- beyond the tolerance"
        print(f"{figure:32s} range {entry['range']:<8} (tolerance {entry['tolerance']}){flag}")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
