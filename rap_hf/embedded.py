"""The embedded default: the visual world, a tiny scorer warmed up on it, and the world it scored.

The Space and the quickstart open on these when no dataset or model is given. Nothing is downloaded:
the world is drawn with PIL, the scorer is a tiny Qwen2.5-VL built with `build_tiny_vlm` and
fine-tuned on the world's train split (`rap_hf.warmup`). The warm-up is the slow part (about 5
minutes on 2 CPU cores, under a minute on a GPU), so each artefact is built once per machine and
cached under the Hugging Face cache folder (`$HF_HOME/rap-hf/embedded/`, or `$RAP_HF_CACHE`): the
scorer under a digest of what decides it (`scorer-<digest>/`), the scores under a digest of the whole
recipe (`scored-<digest>/`), so changing a scoring setting re-scores without warming up again. Later
calls load them in seconds. Artefacts are written under a temporary name and
renamed when complete, so an interrupted build leaves nothing half-written behind.

Why this recipe: 600 steps of batch 64 at lr 3e-3 (cosine) on 84-pixel pictures fits the
quickstart's 10 minutes on 2 cores and teaches the format, the answers the question gives away and,
on this seed, counting from the picture; colour from the picture needs about 1,000 steps
(`benchmarks/results/warmup_recipes_gpu_h200.json`), which the quickstart cannot afford. Which
visual skill a short warm-up learns first varies with the seed and the hardware; RAP is
model-specific, and the report shows what this scorer can and cannot see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Bump when what a recipe builds changes although its fields do not (code changes).
CACHE_VERSION = 2


@dataclass(frozen=True)
class EmbeddedRecipe:
    """Everything that decides the embedded world, scorer and scores (its digest names the cache)."""

    world_rows: int = 1200
    world_seed: int = 0
    test_fraction: float = 1 / 6
    image_size: int = 84
    model: dict[str, int] = field(default_factory=lambda: {
        "text_hidden": 128, "text_intermediate": 256, "vision_hidden": 64, "vision_intermediate": 128})
    model_seed: int = 0
    warm_up_steps: int = 600
    batch_size: int = 64
    learning_rate: float = 3e-3
    score_rows: int = 240
    """Rows of the train split scored for the Space (the first ones, in id order)."""
    num_rollouts: int = 5
    max_new_tokens: int = 40
    ace_min_rows: int = 8
    """RAPConfig's default. The warmed-up model's answers to the visual questions are too short for
    any column to count, so ACE scores only the longer language-prior and unsolvable answers; with
    6 it scored every row and flagged 40 of the 44 rows CDE kept, every one a counting (visual) row."""

    def scorer_digest(self) -> str:
        """Digest of the fields that decide the warmed-up scorer."""
        return _digest({name: getattr(self, name) for name in SCORER_FIELDS})

    def digest(self) -> str:
        """Digest of the whole recipe and the rollout sampler (what decides the scores)."""
        from .rollouts.sampling import SAMPLER_NAME

        return _digest({**dataclasses.asdict(self), "sampler": SAMPLER_NAME})

    def rap_config(self, **overrides):
        """The `RAPConfig` the embedded world is scored with."""
        from .config import RAPConfig

        # The tiny scorer's processor keeps its own small fixed resolution, the one its warm-up saw.
        return RAPConfig(num_rollouts=self.num_rollouts, max_new_tokens=self.max_new_tokens,
                         ace_min_rows=self.ace_min_rows, **{"min_pixels": None, "max_pixels": None, **overrides})


SCORER_FIELDS = ("world_rows", "world_seed", "test_fraction", "image_size", "model", "model_seed", "warm_up_steps",
                 "batch_size", "learning_rate")
DEFAULT_RECIPE = EmbeddedRecipe()


def _digest(fields: dict) -> str:
    payload = json.dumps([CACHE_VERSION, fields], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

# (stage, done, total): "warm-up" counts optimiser steps, "scoring" rows.
ProgressCallback = Callable[[str, int, int], None]


def cache_root() -> Path:
    """`$RAP_HF_CACHE`, else `$HF_HOME/rap-hf/embedded` (the Hugging Face cache folder)."""
    if os.environ.get("RAP_HF_CACHE"):
        return Path(os.environ["RAP_HF_CACHE"])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "rap-hf" / "embedded"


def scorer_dir(recipe: EmbeddedRecipe = DEFAULT_RECIPE) -> Path:
    """Where the recipe's warmed-up scorer is cached (its model is in `model/`)."""
    return cache_root() / f"scorer-{recipe.scorer_digest()}"


def scored_dir(recipe: EmbeddedRecipe = DEFAULT_RECIPE) -> Path:
    """Where the recipe's scored rows are cached (a `save_to_disk` folder)."""
    return cache_root() / f"scored-{recipe.digest()}"


def embedded_world(recipe: EmbeddedRecipe = DEFAULT_RECIPE):
    """The visual world of the recipe: `DatasetDict(train=..., test=...)` (drawn in about a second)."""
    from .data.synthetic import make_visual_world

    return make_visual_world(recipe.world_rows, seed=recipe.world_seed, test_fraction=recipe.test_fraction,
                             image_size=recipe.image_size)


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temporary sibling of `target`, then rename it into place (unless another
    process finished first)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        build(temporary)
        try:
            temporary.rename(target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def embedded_scorer(recipe: EmbeddedRecipe = DEFAULT_RECIPE, *, device: str | None = None,
                    show_progress: bool = True, progress: ProgressCallback | None = None) -> Path:
    """The folder of the warmed-up scorer (built on first use, then cached); loads with
    `AutoModelForImageTextToText` / `AutoProcessor`."""
    from .testing import build_tiny_vlm
    from .warmup import warm_up

    def build(folder: Path) -> None:
        world = embedded_world(recipe)
        base = build_tiny_vlm("qwen2_5_vl", folder / "base", seed=recipe.model_seed, image_size=recipe.image_size,
                              **recipe.model)
        started = time.perf_counter()
        on_step = (lambda step, steps, loss: progress("warm-up", step, steps)) if progress else None
        warm_up(base, folder / "model", world["train"], steps=recipe.warm_up_steps, batch_size=recipe.batch_size,
                learning_rate=recipe.learning_rate, seed=recipe.model_seed, device=device,
                show_progress=show_progress, on_step=on_step)
        shutil.rmtree(folder / "base")
        info = {"recipe": dataclasses.asdict(recipe), "warm_up_seconds": round(time.perf_counter() - started, 1)}
        (folder / "model" / "rap_hf_embedded.json").write_text(json.dumps(info, indent=2))

    return _build_once(scorer_dir(recipe), build) / "model"


def embedded_scored(recipe: EmbeddedRecipe = DEFAULT_RECIPE, *, device: str | None = None,
                    show_progress: bool = True, progress: ProgressCallback | None = None):
    """The first `recipe.score_rows` train rows of the world, scored by the embedded scorer with
    `RAPScorer` (rollout CDE, ACE, logit-CDE); built on first use, then loaded from the cache."""
    import datasets

    from .scoring import RAPScorer

    model = embedded_scorer(recipe, device=device, show_progress=show_progress, progress=progress)

    def build(folder: Path) -> None:
        rows = embedded_world(recipe)["train"]
        rows = rows.select(range(min(recipe.score_rows, len(rows))))
        scorer = RAPScorer(str(model), recipe.rap_config(device=device))
        parts, chunk = [], 16
        for start in range(0, len(rows), chunk):  # in chunks, so the Space can show progress
            if progress:
                progress("scoring", start, len(rows))
            part = rows.select(range(start, min(start + chunk, len(rows))))
            parts.append(scorer.map(part, batch_size=chunk, load_from_cache_file=False, keep_in_memory=True,
                                    desc=f"Scoring rows {start + 1}-{start + len(part)} of {len(rows)}"))
        if progress:
            progress("scoring", len(rows), len(rows))
        datasets.concatenate_datasets(parts).save_to_disk(str(folder))

    return datasets.load_from_disk(str(_build_once(scored_dir(recipe), build)))


def is_ready(recipe: EmbeddedRecipe = DEFAULT_RECIPE) -> bool:
    """Whether the scored world is cached (the Space then opens on it in seconds)."""
    return scored_dir(recipe).exists()
