"""The embedded default: the visual world, a tiny scorer warmed up on it, and the world it scored.

The Space and the quickstart open on these when no dataset or model is given. Nothing is downloaded:
the world is drawn with PIL; the scorer is a tiny Qwen2.5-VL (`build_tiny_vlm`) fine-tuned on the
world's train split (`rap_hf.warmup`). The default recipe's scorer ships with the package
(`rap_hf/embedded_scorer/`, 2.5 MB, built by `python -m rap_hf.embedded --out rap_hf/embedded_scorer`),
so every machine scores with the same weights and nothing is warmed up on first use. Another recipe,
or `embedded_scorer(warm_up=True)`, warms one up here (about 4 minutes on 2 CPU cores). Built
artefacts are cached under the Hugging Face cache folder (`$HF_HOME/rap-hf/embedded/`, or
`$RAP_HF_CACHE`): a scorer under a digest of what decides it (`scorer-<digest>/`), the scores under a
digest of the whole recipe (`scored-<digest>/`), so changing a scoring setting re-scores without
warming up again. They are written under a temporary name and renamed when complete, so an
interrupted build leaves nothing half-written behind.

Why this recipe: a short joint warm-up sits on a knife edge, where float noise (thread count, CPU)
decides which visual skill it learns. Here the vision tower first learns colour and count on its own
with two linear heads (150 steps), at 56 pixels, where each of the 2 x 2 image tokens covers one cell
of the world's grid; then, with the tower fixed, the language model learns in 700 steps to answer from
it. Measured on held-out rows: 98 to 100 % on colour and count with the picture, about chance without,
with 1 or 2 threads and two seeds of the initial weights (see docs/scoring.md, "The embedded scorer").
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
CACHE_VERSION = 5
# The default recipe's warmed-up scorer, shipped with the package (built by `python -m rap_hf.embedded`).
SHIPPED_SCORER = Path(__file__).parent / "embedded_scorer"
INFO_FILE = "rap_hf_embedded.json"
SKILL_ROWS = 150  # held-out rows a built scorer's skills are measured on


@dataclass(frozen=True)
class EmbeddedRecipe:
    """Everything that decides the embedded world, scorer and scores (its digest names the cache)."""

    world_rows: int = 1200
    world_seed: int = 0
    test_fraction: float = 1 / 6
    image_size: int = 56
    """56 px: 2 x 2 image tokens, one per cell of the world's grid, so each token sees one shape."""
    model: dict[str, int] = field(default_factory=lambda: {
        "text_hidden": 128, "text_intermediate": 256, "vision_hidden": 64, "vision_intermediate": 128})
    model_seed: int = 0
    vision_steps: int = 150
    """Steps that first teach the vision tower colour and count (`rap_hf.warmup.pretrain_vision`); the
    tower is then kept fixed while the language model learns to answer."""
    warm_up_steps: int = 700
    """Steps of the language model's warm-up (supervised targets in the paper's format)."""
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

    logit_cde_target: str = "<think> It is {answer}."
    """Where logit-CDE teacher-forces the answer: where this scorer gives it, at the opening that
    `rap_hf.warmup` teaches every response (`warmup.LOGIT_CDE_TARGET`). RAPConfig's default, the boxed
    answer right after the prompt, is a place this scorer never answers from (it reasons first)."""

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
                         ace_min_rows=self.ace_min_rows, logit_cde_target=self.logit_cde_target,
                         **{"min_pixels": None, "max_pixels": None, **overrides})


SCORER_FIELDS = ("world_rows", "world_seed", "test_fraction", "image_size", "model", "model_seed", "vision_steps",
                 "warm_up_steps", "batch_size", "learning_rate")
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


def shipped_scorer(recipe: EmbeddedRecipe = DEFAULT_RECIPE) -> Path | None:
    """The scorer shipped with the package (`rap_hf/embedded_scorer/`), when it was built from this
    recipe's scorer fields; None otherwise."""
    info = SHIPPED_SCORER / INFO_FILE
    if not info.exists() or json.loads(info.read_text()).get("scorer_digest") != recipe.scorer_digest():
        return None
    return SHIPPED_SCORER


def embedded_scorer(recipe: EmbeddedRecipe = DEFAULT_RECIPE, *, device: str | None = None,
                    show_progress: bool = True, progress: ProgressCallback | None = None,
                    warm_up: bool = False) -> Path:
    """The folder of the warmed-up scorer; loads with `AutoModelForImageTextToText` / `AutoProcessor`.

    The default recipe's scorer ships with the package (`shipped_scorer`): loaded as it is, the same
    weights on every machine. `warm_up=True`, or another recipe, builds it here from scratch instead
    (on first use, then cached under `scorer_dir(recipe)`).
    """
    if not warm_up and (shipped := shipped_scorer(recipe)) is not None:
        return shipped
    return _build_once(scorer_dir(recipe), lambda folder: build_scorer(recipe, folder, device=device,
                                                                       show_progress=show_progress,
                                                                       progress=progress)) / "model"


def build_scorer(recipe: EmbeddedRecipe, folder: Path, *, device: str | None = None, show_progress: bool = True,
                 progress: ProgressCallback | None = None) -> Path:
    """Warm up the recipe's scorer from random weights into `folder / "model"` (with its
    `rap_hf_embedded.json`: the recipe, its digest, the warm-up time); returns that folder."""
    from .testing import build_tiny_vlm
    from .warmup import warm_up as run_warm_up

    world = embedded_world(recipe)
    base = build_tiny_vlm("qwen2_5_vl", folder / "base", seed=recipe.model_seed, image_size=recipe.image_size,
                          **recipe.model)
    started = time.perf_counter()
    on_step = (lambda step, steps, loss: progress("warm-up", step, steps)) if progress else None
    run_warm_up(base, folder / "model", world["train"], steps=recipe.warm_up_steps, batch_size=recipe.batch_size,
                learning_rate=recipe.learning_rate, seed=recipe.model_seed, device=device,
                show_progress=show_progress, on_step=on_step, vision_steps=recipe.vision_steps)
    shutil.rmtree(folder / "base")
    info = {"recipe": dataclasses.asdict(recipe), "scorer_digest": recipe.scorer_digest(),
            "warm_up_seconds": round(time.perf_counter() - started, 1)}
    (folder / "model" / INFO_FILE).write_text(json.dumps(info, indent=2))
    return folder / "model"


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


def scorer_skills(scored) -> dict[str, dict[str, float]]:
    """Mean accuracy of the scorer's rollouts with and without the image, per planted task (or overall)."""
    import numpy as np

    from .data.columns import float_column

    ok = np.asarray([e is None for e in scored["rap_error"]]) if "rap_error" in scored.column_names else None
    image = float_column(scored, "rap_acc_image")
    text = float_column(scored, "rap_acc_text")
    groups = scored["rap_task"] if "rap_task" in scored.column_names else ["all"] * len(scored)
    out: dict[str, dict[str, float]] = {}
    for task in sorted(set(groups)):
        rows = np.asarray([g == task for g in groups]) & (ok if ok is not None else True)
        rows &= ~np.isnan(image) & ~np.isnan(text)
        if rows.any():
            out[task] = {"image": round(float(image[rows].mean()), 4), "text": round(float(text[rows].mean()), 4),
                         "rows": int(rows.sum())}
    return out


def measure_skills(model: str | Path, recipe: EmbeddedRecipe = DEFAULT_RECIPE, *, rows: int = SKILL_ROWS,
                   device: str | None = None) -> dict[str, dict[str, float]]:
    """The scorer's skills on the first `rows` held-out rows of the recipe's world: the accuracy of its
    rollouts (`RAPScorer`, the recipe's M, temperature 1) with the picture and without, per task."""
    from .scoring import RAPScorer

    heldout = embedded_world(recipe)["test"]
    heldout = heldout.select(range(min(rows, len(heldout))))
    config = recipe.rap_config(device=device, compute_ace=False, compute_logit_cde=False)
    scored = RAPScorer(str(model), config).map(heldout, batch_size=32, keep_in_memory=True,
                                               load_from_cache_file=False, desc="Measuring the scorer's skills")
    return scorer_skills(scored)


def main(argv=None) -> dict:
    """`python -m rap_hf.embedded --out DIR`: warm up the default recipe's scorer from random weights
    into DIR and record its skills on held-out rows beside it. This is how `rap_hf/embedded_scorer/`
    is made; `tests/test_embedded_scorer.py` checks that a rebuild reaches the skills it ships with."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", required=True, help="Folder to write the scorer to (replaced)")
    parser.add_argument("--device", help="Device of the warm-up (default: a GPU if there is one)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = out.with_name(f".{out.name}.build-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    model = build_scorer(DEFAULT_RECIPE, work, device=args.device)
    skills = measure_skills(model, DEFAULT_RECIPE, device=args.device)
    info = json.loads((model / INFO_FILE).read_text())
    info.update(skills=skills, skills_rows=SKILL_ROWS, command="python -m rap_hf.embedded --out rap_hf/embedded_scorer",
                built_with={"torch": torch.__version__, "threads": torch.get_num_threads()})
    (model / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(model), str(out))
    shutil.rmtree(work, ignore_errors=True)
    for task, acc in skills.items():
        print(f"{task:14s} with the picture {acc['image']:.0%}, without {acc['text']:.0%} ({acc['rows']} rows)")
    print(f"wrote {out}")
    return info


if __name__ == "__main__":
    main()
