"""The stages of the end-to-end RAP study that `rap-hf quickstart` runs, and `run_quickstart`.

world -> scorer (warm-up) -> scoring -> selection (RAP, random, pass-rate band) -> GRPO per arm and
seed -> held-out evaluation -> Hub trees -> report. Each stage is a function of what the earlier ones
returned; `run_quickstart` times them, prints a line per stage and writes the report (`report.py`).
Nothing reaches the Hub: the repositories are written as the folders `push_subset` and
`push_checkpoint` would upload.
"""

from __future__ import annotations

import collections
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..embedded import scorer_skills
from ..metrics.ranking import auroc
from .config import QuickstartConfig

STAGES = ("world", "warm-up", "scoring", "selection", "training", "evaluation", "publishing")
ARMS = ("rap", "random", "full")
# Held-out rows of a dataset without a held-out split, when heldout_rows is not given.
DEFAULT_HELDOUT = 200


class StageClock:
    """Times the stages and prints a line as each starts and ends."""

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.echo = echo
        self.seconds: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        number = f"[{STAGES.index(name) + 1}/{len(STAGES)}]"
        self.echo(f"{number} {what} ...")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        note = f" ({self.notes[name]})" if name in self.notes else ""
        self.echo(f"{number} {what}: done in {self.seconds[name]:.1f} s{note}")

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 2)


# --------------------------------------------------------------------------- 1. world
@dataclass
class StudyData:
    """The rows of the study: the training pool and the held-out rows, canonical."""

    pool: Any  # datasets.Dataset
    heldout: Any
    source: str
    info: dict[str, Any] = field(default_factory=dict)


def _counts(ds, column: str) -> dict[str, int] | None:
    if column not in ds.column_names:
        return None
    return dict(sorted(collections.Counter(ds[column]).items()))


def load_study_data(config: QuickstartConfig) -> StudyData:
    """The embedded world (pool = the first `score_rows` train rows, held out = its test split), or
    `config.dataset` converted with `to_rap_format`."""
    if config.dataset is None:
        from ..embedded import embedded_world

        recipe = config.recipe()
        world = embedded_world(recipe)
        pool = world["train"].select(range(min(recipe.score_rows, len(world["train"]))))
        heldout = world["test"]
        source = f"embedded visual world ({recipe.world_rows} rows, seed {recipe.world_seed})"
    else:
        pool, heldout = _dataset_splits(config)
        source = config.dataset
    if config.heldout_rows is not None:
        heldout = heldout.select(range(min(config.heldout_rows, len(heldout))))
    if len(pool) == 0 or len(heldout) == 0:
        raise ValueError(f"The study needs rows to select from and to evaluate on; got {len(pool)} pool rows and "
                         f"{len(heldout)} held-out rows from {source}")
    info = {
        "source": source,
        "rows": {"pool": len(pool), "heldout": len(heldout)},
        "planted": {"pool": _counts(pool, "rap_planted"), "heldout": _counts(heldout, "rap_planted")},
        "tasks": {"pool": _counts(pool, "rap_task"), "heldout": _counts(heldout, "rap_task")},
    }
    return StudyData(pool=pool, heldout=heldout, source=source, info=info)


def _dataset_splits(config: QuickstartConfig):
    from datasets import DatasetDict

    from ..data.io import load_rows
    from ..data.schema import to_rap_format

    loaded = load_rows(config.dataset)
    splits = loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    if config.train_split not in splits:
        raise ValueError(f"{config.dataset!r} has no split {config.train_split!r} (splits: {', '.join(splits)}); "
                         "choose the pool with --train-split")
    mapping = config.rap_format_kwargs()  # --preset --question --answer --images --id --choices --image-root
    pool = to_rap_format(splits[config.train_split], **mapping)
    if config.heldout_split in splits and config.heldout_split != config.train_split:
        heldout = to_rap_format(splits[config.heldout_split], **mapping)
    else:
        # No held-out split: hold out rows of the pool (seeded), so training never sees them.
        size = config.heldout_rows or min(DEFAULT_HELDOUT, len(pool) // 5)
        if not 0 < size < len(pool):
            raise ValueError(f"{config.dataset!r} has no split {config.heldout_split!r} and too few rows "
                             f"({len(pool)}) to hold {size} out")
        parts = pool.train_test_split(test_size=size, seed=0, shuffle=True)
        pool, heldout = parts["train"], parts["test"]
    if config.pool_rows is not None:
        pool = pool.select(range(min(config.pool_rows, len(pool))))
    return pool, heldout


# --------------------------------------------------------------------------- 2. scorer
def count_parameters(model_ref: str | os.PathLike) -> int | None:
    """Parameters of a model folder or Hub id, from its config on the meta device (nothing loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    try:
        config = AutoConfig.from_pretrained(str(model_ref))
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
    except (OSError, ValueError):
        return None
    return sum(p.numel() for p in model.parameters())


def prepare_scorer(config: QuickstartConfig, clock: StageClock) -> tuple[str, dict[str, Any]]:
    """The scorer and base model of the study: `config.model`, or the embedded scorer (the one shipped
    with the package; with `--warm-up`, or a recipe it was not built from, warmed up here on first use
    and then loaded from the cache)."""
    if config.model is not None:
        clock.notes["warm-up"] = "skipped: --model given"
        return config.model, {"model": config.model, "parameters": count_parameters(config.model), "warm_up": None,
                              "source": "given (--model)"}
    from ..embedded import INFO_FILE, embedded_scorer, scorer_dir, shipped_scorer

    recipe = config.recipe()
    shipped = None if config.warm_up else shipped_scorer(recipe)
    cached = shipped is None and scorer_dir(recipe).exists()
    path = shipped or embedded_scorer(recipe, device=config.device, warm_up=True)  # built here (or cached)
    recorded = json.loads((path / INFO_FILE).read_text())
    if shipped is not None:
        source = "shipped with the package"
        clock.notes["warm-up"] = f"skipped: the scorer shipped with the package ({path}); --warm-up builds it here"
    else:
        source = "warmed up here" + (" earlier (cached)" if cached else "")
        clock.notes["warm-up"] = (f"loaded from the cache, {scorer_dir(recipe)}" if cached
                                  else f"cached in {scorer_dir(recipe)}")
    info = {
        "model": str(path),
        "architecture": "Qwen2.5-VL (build_tiny_vlm)",
        "parameters": count_parameters(path),
        "source": source,
        "warm_up": {
            "steps": recipe.warm_up_steps,
            "vision_steps": recipe.vision_steps,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "seconds": recorded.get("warm_up_seconds"),
            "cached": shipped is not None or cached,
        },
        # Measured on held-out rows when it was built (`python -m rap_hf.embedded`), if it was.
        "skills_heldout": recorded.get("skills"),
    }
    return str(path), info


# --------------------------------------------------------------------------- 3. scoring
def image_resolution(config: QuickstartConfig) -> dict[str, int | None]:
    """Pixel bounds for scoring, training and evaluation alike (rows train and are evaluated at the
    resolution they were scored at): the embedded scorer's processor keeps its own small fixed size
    (what its warm-up saw); another model gets the paper's (RAPConfig's defaults)."""
    return {"min_pixels": None, "max_pixels": None} if config.embedded else {}


def score_pool(config: QuickstartConfig, data: StudyData, model: str, clock: StageClock):
    """The pool scored with `RAPScorer` (rollout CDE, ACE, difficulty, logit-CDE), the `RAPConfig`
    it was scored with, and whether the scores came from the cache."""
    if config.embedded:
        from ..embedded import embedded_scored, scored_dir

        recipe = config.recipe()
        cached = scored_dir(recipe).exists()
        scored = embedded_scored(recipe, device=config.device)
        clock.notes["scoring"] = "loaded from the cache" if cached else f"cached in {scored_dir(recipe)}"
        return scored, recipe.rap_config(device=config.device), cached
    from ..config import RAPConfig
    from ..scoring import RAPScorer

    rap_config = RAPConfig(max_new_tokens=config.max_new_tokens_or_default(), device=config.device,
                           **image_resolution(config))
    scorer = RAPScorer(model, rap_config)
    scored = scorer.map(data.pool, batch_size=rap_config.batch_size, desc="Scoring the pool")
    return scored, rap_config, False


# --------------------------------------------------------------------------- 4. selection
@dataclass
class Subsets:
    """What each arm trains on: the RAP selection, one random subset per seed (of RAP's size), and
    the pass-rate band (built for comparison, not trained)."""

    rap: Any  # Selection
    random: list  # one Selection per seed
    band: Any
    full: Any  # the scored pool


def build_subsets(scored, seeds: Sequence[int], cde_threshold: float = 0.5) -> Subsets:
    from ..baselines import pass_rate_band, random_subset
    from ..config import SelectionConfig
    from ..selection import select

    rap = select(scored, SelectionConfig(cde_threshold=cde_threshold))
    randoms = [random_subset(scored, n=rap.report.kept, seed=seed) for seed in seeds]
    return Subsets(rap=rap, random=randoms, band=pass_rate_band(scored), full=scored)


def detection(scored) -> dict[str, Any]:
    """How well rollout CDE and logit-CDE rank the planted visual rows above the language-prior ones
    (AUROC; 0.5 is chance). None without planted labels."""
    from ..data.columns import float_column

    if "rap_planted" not in scored.column_names:
        return {"cde_auroc_language_prior": None, "logit_cde_auroc_language_prior": None,
                "note": "the dataset has no planted labels (rap_planted)"}
    planted = scored["rap_planted"]
    out: dict[str, Any] = {"rows": {"visual": planted.count("visual"), "language_prior": planted.count("language_prior")}}
    for key, column in (("cde_auroc_language_prior", "rap_cde"), ("logit_cde_auroc_language_prior", "rap_logit_cde")):
        if column not in scored.column_names:
            out[key] = None
            continue
        values = float_column(scored, column)
        visual = [v for v, p in zip(values, planted) if p == "visual"]
        prior = [v for v, p in zip(values, planted) if p == "language_prior"]
        value = auroc(visual, prior)
        out[key] = round(value, 4) if value is not None else None
    return out


def ace_coverage(scored) -> dict[str, int]:
    """Rows ACE could score (a finite log psi: some column of the window has `ace_min_rows` rows
    below it) and rows it flags."""
    import numpy as np

    from ..data.columns import float_column

    if "rap_ace" not in scored.column_names:
        return {"scored": 0, "flagged": 0}
    values = float_column(scored, "rap_ace")
    flags = scored["rap_ace_flag"] if "rap_ace_flag" in scored.column_names else [False] * len(scored)
    return {"scored": int(np.isfinite(values).sum()), "flagged": int(sum(bool(f) for f in flags))}


def composition(ds) -> dict[str, int] | None:
    """Rows per planted type of a subset (None without planted labels)."""
    return _counts(ds, "rap_planted")


# --------------------------------------------------------------------------- 5. training
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
    facts = {"rows": len(trainer.train_dataset), "steps": trainer.state.global_step, "seconds": round(seconds, 2),
             "mean_reward_first": round(rewards[0], 4) if rewards else None,
             "mean_reward_last": round(rewards[-1], 4) if rewards else None,
             **training_signal(trainer.state.log_history, config.num_generations * prompts_per_step(len(rows), config))}
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


# --------------------------------------------------------------------------- 6. evaluation
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


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _std(values: Sequence[float]) -> float | None:
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
        out[arm] = _mean(accuracies)
        per_seed[arm] = accuracies
        spread[arm] = _std(accuracies)
        for key, target in (("per_type", per_type), ("per_task", per_task)):
            labels = sorted({label for run in runs for label in run.get(key, {})})
            if labels:
                target[arm] = {label: _mean([run[key][label] for run in runs if label in run.get(key, {})])
                               for label in labels}
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


# --------------------------------------------------------------------------- the study
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


def run_quickstart(config: QuickstartConfig | None = None, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study and write `config.output_dir`; returns the report (also `report.json`).

    `echo` receives the line printed as each stage starts and ends."""
    config = config or QuickstartConfig()
    with _quiet_libraries():
        return _run(config, echo)


def _run(config: QuickstartConfig, echo: Callable[[str], None]) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from ..hub import push_checkpoint, push_subset
    from ..modeling import pick_device
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
        # The scorer's skills: the accuracy of its rollouts per task, with the picture and without.
        scorer_info["skills"] = scorer_skills(scored)
        scorer_info["scoring"] = {"num_rollouts": rap_config.num_rollouts, "max_new_tokens": rap_config.max_new_tokens,
                                  "ace_min_rows": rap_config.ace_min_rows, "cached": cached}
    with clock.stage("selection", "Selecting (RAP, random, pass-rate band)"):
        subsets = build_subsets(scored, seeds, config.cde_threshold)
        subsets.rap.save_to_disk(out / "selection")
        clock.notes["selection"] = f"RAP kept {subsets.rap.report.kept} of {len(scored)}"

    arms = {"rap": lambda seed: subsets.rap.dataset, "random": lambda seed: subsets.random[seed].dataset,
            "full": lambda seed: subsets.full}
    sizes = {"rap": subsets.rap.report.kept, "random": subsets.rap.report.kept, "full": len(scored)}
    # The subsets train the same number of steps (they are the same size); the full pool the same passes.
    steps = {arm: training_steps(rows, config) for arm, rows in sizes.items()}
    training: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    checkpoints: dict[str, list[Path]] = {arm: [] for arm in ARMS}
    runs = [(arm, seed) for seed in seeds for arm in ARMS if sizes[arm] > 0]
    with clock.stage("training", f"Training GRPO: {len(runs)} runs ({', '.join(ARMS)} x {len(seeds)} seed(s))"):
        for arm, seed in tqdm(runs, desc="GRPO runs", unit="run"):
            folder = out / "checkpoints" / f"{arm}-seed{seed}"
            training[arm].append({"seed": seed, **train_arm(model, arms[arm](seed), steps=steps[arm], seed=seed,
                                                             config=config, output_dir=folder)})
            checkpoints[arm].append(folder)
        reused = sum(run["reused"] for arm_runs in training.values() for run in arm_runs)
        if reused:
            clock.notes["training"] = f"{reused} finished run(s) of an earlier, interrupted quickstart reused"

    evaluations: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ("base", *ARMS)}
    models = [("base", None, Path(model))] + [(arm, seed, folder) for arm in ARMS
                                              for seed, folder in zip(seeds, checkpoints[arm])]
    with clock.stage("evaluation", f"Evaluating {len(models)} models on {len(data.heldout)} held-out rows"):
        for arm, seed, folder in tqdm(models, desc="Evaluations", unit="model"):
            name = "base" if seed is None else f"{arm}-seed{seed}"
            result = evaluate_arm(folder, data.heldout, config=config, output_dir=out / "eval" / name)
            evaluations[arm].append({"seed": seed, **result})

    with clock.stage("publishing", "Writing the Hub trees (nothing is uploaded)"):
        hub = {}
        subset_id, model_id = f"{config.hub_prefix}-subset", f"{config.hub_prefix}-model"
        for tree in ("subset", "model"):  # an earlier run's trees: rewritten, never mixed with this one's
            shutil.rmtree(out / "hub" / tree, ignore_errors=True)
        if subsets.rap.report.kept:  # an empty subset is not published (push_subset refuses it)
            hub["subset"] = str(push_subset(subsets.rap, subset_id, local_dir=out / "hub" / "subset",
                                            source_dataset=config.dataset, scorer=rap_config,
                                            scorer_model=config.model))
        else:
            hub["subset"] = None
        if checkpoints["rap"]:
            summary = json.loads((out / "eval" / "rap-seed0" / "summary.json").read_text())
            hub["model"] = str(push_checkpoint(checkpoints["rap"][0], model_id, local_dir=out / "hub" / "model",
                                               eval_results=summary, base_model=config.model,
                                               training_dataset=subset_id))

    heldout_accuracy = {**summarise_accuracy(evaluations), "rows": len(data.heldout)}
    heldout_accuracy["resolution"] = resolution(evaluations)
    report = {
        "rap_hf_version": __version__,
        "config": config.to_dict(),
        "fast": config.fast,
        "world": data.info,
        "scorer": scorer_info,
        "selection": {
            "mode": subsets.rap.report.mode,
            "kept": subsets.rap.report.kept,
            "fraction": round(subsets.rap.report.fraction, 4),
            "counts": subsets.rap.report.counts,
            "thresholds": subsets.rap.report.thresholds,
            "planted_kept": composition(subsets.rap.dataset),
            "ace": ace_coverage(scored),
            "random": {"kept": sizes["random"], "seeds": seeds,
                       "planted_kept": [composition(r.dataset) for r in subsets.random]},
            "pass_rate_band": {"kept": subsets.band.report.kept, "counts": subsets.band.report.counts,
                               "planted_kept": composition(subsets.band.dataset)},
        },
        "detection": detection(scored),
        "heldout_accuracy": heldout_accuracy,
        "training": {
            "settings": {**training_settings(config, len(scored)), "prompts_per_step": config.prompts_per_step},
            **{arm: {"rows": sizes[arm], "steps": steps[arm],
                     "seconds": [run["seconds"] for run in training[arm]],
                     "seconds_mean": _mean([run["seconds"] for run in training[arm]]),
                     # Per seed, then the mean: the share of groups with reward variance and the
                     # informative completions per step (`training_signal`).
                     "signal_share": [run.get("signal_share") for run in training[arm]],
                     "signal_share_mean": _mean([run["signal_share"] for run in training[arm]
                                                 if run.get("signal_share") is not None]),
                     "informative_completions_per_step": [run.get("informative_completions_per_step")
                                                          for run in training[arm]],
                     "informative_completions_per_step_mean": _mean(
                         [run["informative_completions_per_step"] for run in training[arm]
                          if run.get("informative_completions_per_step") is not None]),
                     "runs": training[arm]} for arm in ARMS},
        },
        "hub": hub,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "device": pick_device(config.device).type,
                    "versions": _versions()},
    }
    report["timings"] = {**clock.seconds, "total": clock.total()}
    write_report(report, subsets.rap, out)
    echo(f"Done in {report['timings']['total']:.0f} s. Report: {out / 'report.md'}")
    return report
