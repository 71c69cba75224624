"""The end-to-end RAP study that `rap-hf quickstart` runs: `run_quickstart` composes its stages.

world -> scorer (warm-up) -> scoring -> selection (RAP, random, pass-rate band) -> GRPO per arm and
seed -> held-out evaluation -> Hub trees -> report. Each stage is a function of what the earlier ones
returned, in a module of its own (`world`, `scorer`, `scoring`, `subsets`, `runs`, `heldout`,
`publishing`); `run_quickstart` times them (`clock`), prints a line per stage, gathers each stage's
facts into the report and writes it (`report.py`). Nothing reaches the Hub: the repositories are
written as the folders `push_subset` and `push_checkpoint` would upload. The stages' names are
importable from here as well.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from ..embedded import scorer_skills
from ..metrics.ranking import auroc
from .clock import STAGES, StageClock
from .config import QuickstartConfig
from .heldout import (evaluate_arm, evaluate_models, heldout_accuracy, models_to_evaluate, rap_effect, resolution,
                      rounded_mean, summarise_accuracy)
from .publishing import write_hub_trees
from .runs import (ARMS, RUN_FILE, TrainingPlan, completions, plan_training, prompts_per_step, train_arm, train_arms,
                   training_settings, training_signal, training_steps)
from .scorer import count_parameters, prepare_scorer
from .scoring import image_resolution, score_pool, scoring_facts
from .subsets import Subsets, ace_coverage, build_subsets, composition, detection, selection_summary
from .world import DEFAULT_HELDOUT, StudyData, load_study_data

__all__ = ["ARMS", "DEFAULT_HELDOUT", "RUN_FILE", "STAGES", "StageClock", "StudyData", "Subsets", "ace_coverage",
           "auroc", "build_subsets", "completions", "composition", "count_parameters", "detection", "evaluate_arm",
           "image_resolution", "load_study_data", "prepare_scorer", "prompts_per_step", "rap_effect", "resolution",
           "run_quickstart", "score_pool", "scorer_skills", "summarise_accuracy", "train_arm", "training_settings",
           "training_signal", "training_steps"]


def _versions() -> dict[str, str]:
    import importlib.metadata as metadata

    found = {}
    for name in ("torch", "transformers", "trl", "datasets", "huggingface_hub", "accelerate"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """One line per stage is the quickstart's output; transformers' notices and its bars over
    weight loading and saving (many times over) would drown it. Restored afterwards."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()


def training_summary(config: QuickstartConfig, plan: TrainingPlan, training: dict[str, list[dict[str, Any]]],
                     pool_rows: int) -> dict[str, Any]:
    """The report's `training` section: the GRPO settings, and per arm its rows, steps, seconds and
    training signal, per seed and their mean."""

    def mean_of(runs: list[dict[str, Any]], key: str) -> float | None:
        return rounded_mean([run[key] for run in runs if run.get(key) is not None])

    return {
        "settings": {**training_settings(config, pool_rows), "prompts_per_step": config.prompts_per_step},
        **{arm: {"rows": plan.sizes[arm], "steps": plan.steps[arm],
                 # Completions generated per run (the same for every seed of an arm: same steps and batch).
                 "completions": completions(plan.sizes[arm], plan.steps[arm], config),
                 "seconds": [run["seconds"] for run in training[arm]],
                 "seconds_mean": rounded_mean([run["seconds"] for run in training[arm]]),
                 # Per seed, then the mean: the share of groups with reward variance and the
                 # informative completions per step (`training_signal`).
                 "signal_share": [run.get("signal_share") for run in training[arm]],
                 "signal_share_mean": mean_of(training[arm], "signal_share"),
                 "informative_completions_per_step": [run.get("informative_completions_per_step")
                                                      for run in training[arm]],
                 "informative_completions_per_step_mean": mean_of(training[arm], "informative_completions_per_step"),
                 "runs": training[arm]} for arm in ARMS},
    }


def machine(config: QuickstartConfig) -> dict[str, Any]:
    """The report's `machine` section: where the study ran, and the versions of the libraries."""
    from ..modeling import pick_device

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "device": pick_device(config.device).type, "versions": _versions()}


def run_quickstart(config: QuickstartConfig | None = None, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study and write `config.output_dir`; returns the report (also `report.json`).

    `echo` receives the line printed as each stage starts and ends."""
    config = config or QuickstartConfig()
    with _quiet_libraries():
        return _run(config, echo)


def _run(config: QuickstartConfig, echo: Callable[[str], None]) -> dict[str, Any]:
    from .report import write_report

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock(echo)
    seeds = list(range(config.num_seeds))

    with clock.stage("world", "Building the world"):
        data = load_study_data(config)
    with clock.stage("warm-up", "Warming up the scorer"):
        model, scorer_info = prepare_scorer(config, clock)
    with clock.stage("scoring", f"Scoring {len(data.pool)} pool rows (rollouts, ACE, logit-CDE)"):
        scored, rap_config, cached = score_pool(config, data, model, clock)
        scorer_info.update(scoring_facts(scored, rap_config, cached))
    with clock.stage("selection", "Selecting (RAP, random, pass-rate band)"):
        subsets = build_subsets(scored, seeds, config.cde_threshold)
        subsets.rap.save_to_disk(out / "selection")
        clock.notes["selection"] = f"RAP kept {subsets.rap.report.kept} of {len(scored)}"
    plan = plan_training(subsets, seeds, config)
    with clock.stage("training", f"Training GRPO: {len(plan.runs)} runs ({', '.join(ARMS)} x {len(seeds)} seed(s))"):
        training, checkpoints = train_arms(model, plan, config=config, out=out, clock=clock)
    models = models_to_evaluate(model, seeds, checkpoints)
    with clock.stage("evaluation", f"Evaluating {len(models)} models on {len(data.heldout)} held-out rows"):
        evaluations = evaluate_models(models, data.heldout, config=config, out=out)
    with clock.stage("publishing", "Writing the Hub trees (nothing is uploaded)"):
        hub = write_hub_trees(config, subsets, rap_config, checkpoints, out)

    report = {
        "rap_hf_version": __version__,
        "config": config.to_dict(),
        "fast": config.fast,
        "world": data.info,
        "scorer": scorer_info,
        "selection": selection_summary(subsets, seeds),
        "detection": detection(scored),
        "heldout_accuracy": heldout_accuracy(evaluations, len(data.heldout)),
        "training": training_summary(config, plan, training, len(scored)),
        "hub": hub,
        "machine": machine(config),
    }
    report["effect"] = rap_effect(report["heldout_accuracy"], report["training"])
    report["timings"] = {**clock.seconds, "total": clock.total()}
    write_report(report, subsets.rap, out)
    echo(f"Done in {report['timings']['total']:.0f} s. Report: {out / 'report.md'}")
    return report
