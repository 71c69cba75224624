"""Stage 5 of the study: the GRPO runs, one per arm and seed, from the scorer (the base model).

Each arm trains `training_steps` optimiser steps; a checkpoint whose recorded facts match the run
(same model, rows and settings) is reused, so a rerun of an interrupted quickstart trains only what
is missing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import StageClock
from .config import QuickstartConfig
from .scoring import image_resolution
from .subsets import Subsets

# The arms: RAP's subset, a random subset of its size (one per seed), the whole scored pool.
ARMS = ("rap", "random", "full")


def prompts_per_step(rows: int, config: QuickstartConfig) -> int:
    """Prompts per optimiser step on a training set of `rows`: a batch cannot hold more rows than
    the set has (TRL would find no full batch and stop before the first step)."""
    return max(1, min(config.prompts_per_step, rows))


def training_steps(rows: int, config: QuickstartConfig) -> int:
    """Optimiser steps for `config.epochs` passes over `rows` prompts, and at least `min_steps` (none
    without rows: the arm is not trained)."""
    if rows == 0:
        return 0
    return max(config.min_steps_or_default(), math.ceil(config.epochs * rows / prompts_per_step(rows, config)))


def completions(rows: int, steps: int, config: QuickstartConfig) -> int:
    """Completions GRPO generates in `steps` steps on a set of `rows` prompts: the arm's compute, as
    the paper's main table counts it (one generation batch per optimiser step here)."""
    return steps * prompts_per_step(rows, config) * config.num_generations if rows else 0


RUN_FILE = "rap_quickstart_run.json"


def train_arm(model: str, rows, *, steps: int, seed: int, config: QuickstartConfig, output_dir: Path) -> dict[str, Any]:
    """GRPO (`RAPGRPOTrainer`) from `model` on `rows` for `steps` optimiser steps; saves the
    checkpoint to `output_dir` and returns the run's facts.

    The facts are written last, beside the weights (`rap_quickstart_run.json`): a rerun of an
    interrupted quickstart reuses a checkpoint whose facts say it was trained from the same model on
    the same rows with the same settings, and trains the others again."""
    from transformers import PrinterCallback

    from ..modeling import pick_device, pick_dtype
    from ..training import RAPGRPOConfig, RAPGRPOTrainer
    from ..training.data import rows_digest

    key = {"model": str(model), "rows_digest": rows_digest(rows), "steps": steps, "seed": seed,
           "settings": training_settings(config, len(rows))}
    record = output_dir / RUN_FILE
    if record.exists():
        previous = json.loads(record.read_text())
        if previous.get("key") == key:
            return {**previous["facts"], "reused": True}
    device = pick_device(config.device)
    gpu = device.type == "cuda"
    args = RAPGRPOConfig(
        output_dir=str(output_dir),
        use_cpu=not gpu,
        bf16=gpu,
        activation_checkpointing=False,
        model_init_kwargs={"dtype": pick_dtype("auto", device)},
        num_generations=config.num_generations,
        per_device_train_batch_size=config.num_generations * prompts_per_step(len(rows), config),
        steps_per_generation=1,
        max_completion_length=config.max_new_tokens_or_default(),
        temperature=1.0,
        beta=0.0,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        **image_resolution(config),
        max_steps=steps,
        seed=seed,
        logging_steps=1,  # every step's reward statistics: the report's training signal per step
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    start = time.perf_counter()
    trainer = RAPGRPOTrainer(model=model, args=args, train_dataset=rows)
    trainer.remove_callback(PrinterCallback)  # its log dicts would bury the stage lines; the report has them
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.save_model(str(output_dir))
    trainer.processing_class.save_pretrained(str(output_dir))
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    per_step = completions(len(rows), 1, config)
    facts = {"rows": len(trainer.train_dataset), "steps": trainer.state.global_step,
             "completions": completions(len(rows), trainer.state.global_step, config), "seconds": round(seconds, 2),
             "mean_reward_first": round(rewards[0], 4) if rewards else None,
             "mean_reward_last": round(rewards[-1], 4) if rewards else None,
             **training_signal(trainer.state.log_history, per_step)}
    record.write_text(json.dumps({"key": key, "facts": facts}, indent=2))
    return {**facts, "reused": False}


def training_signal(log_history: Sequence[dict[str, Any]], completions_per_step: int) -> dict[str, Any]:
    """What GRPO could learn from at each step: a group (a prompt's rollouts) whose rewards all agree
    has zero advantage, so it moves nothing. From TRL's `frac_reward_zero_std`, logged every step:
    the share of groups with reward variance, per step and on average, and the completions in those
    groups per step (the informative ones). This is where RAP's subsets should differ from random."""
    zero = [h["frac_reward_zero_std"] for h in log_history if "frac_reward_zero_std" in h]
    shares = [round(1.0 - value, 4) for value in zero]
    mean = sum(shares) / len(shares) if shares else None
    return {"signal_share_per_step": shares,
            "signal_share": round(mean, 4) if mean is not None else None,
            "informative_completions_per_step": round(mean * completions_per_step, 2) if mean is not None else None}


def training_settings(config: QuickstartConfig, rows: int) -> dict[str, Any]:
    """The GRPO settings of a training set of `rows` (the report's `training.settings`, plus the
    prompts per step that this set allows)."""
    return {"epochs": config.epochs, "min_steps": config.min_steps_or_default(), "learning_rate": config.learning_rate,
            "num_generations": config.num_generations,
            "prompts_per_step": prompts_per_step(rows, config), "max_completion_length": config.max_new_tokens_or_default(),
            "beta": 0.0, "lr_scheduler_type": "constant"}



@dataclass
class TrainingPlan:
    """What each arm trains on (a function of the seed), its rows and optimiser steps, and the runs to
    train: (arm, seed), seed by seed, for every arm with rows."""

    rows: dict[str, Callable[[int], Any]]
    sizes: dict[str, int]
    steps: dict[str, int]
    runs: list[tuple[str, int]]


def plan_training(subsets: Subsets, seeds: Sequence[int], config: QuickstartConfig) -> TrainingPlan:
    """The runs of the study: every arm with rows, once per seed."""
    rows = {"rap": lambda seed: subsets.rap.dataset, "random": lambda seed: subsets.random[seed].dataset,
            "full": lambda seed: subsets.full}
    sizes = {"rap": subsets.rap.report.kept, "random": subsets.rap.report.kept, "full": len(subsets.full)}
    # The subsets train the same number of steps (they are the same size); the full pool the same passes.
    steps = {arm: training_steps(size, config) for arm, size in sizes.items()}
    runs = [(arm, seed) for seed in seeds for arm in ARMS if sizes[arm] > 0]
    return TrainingPlan(rows=rows, sizes=sizes, steps=steps, runs=runs)


def train_arms(model: str, plan: TrainingPlan, *, config: QuickstartConfig, out: Path,
               clock: StageClock) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[Path]]]:
    """Every run of `plan`, from `model`, saved to `out/checkpoints/ARM-seedN`: per arm, the facts of
    its runs and their checkpoints, seed by seed."""
    from tqdm.auto import tqdm

    training: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    checkpoints: dict[str, list[Path]] = {arm: [] for arm in ARMS}
    for arm, seed in tqdm(plan.runs, desc="GRPO runs", unit="run"):
        folder = out / "checkpoints" / f"{arm}-seed{seed}"
        training[arm].append({"seed": seed, **train_arm(model, plan.rows[arm](seed), steps=plan.steps[arm], seed=seed,
                                                         config=config, output_dir=folder)})
        checkpoints[arm].append(folder)
    reused = sum(run["reused"] for arm_runs in training.values() for run in arm_runs)
    if reused:
        clock.notes["training"] = f"{reused} finished run(s) of an earlier, interrupted quickstart reused"
    return training, checkpoints
