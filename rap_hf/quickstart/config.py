"""`QuickstartConfig`: what `rap-hf quickstart` runs, with help on every field (the CLI's flags)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import check_range
from ..data.column_mapping import ColumnMapping
from ..embedded import DEFAULT_RECIPE, EmbeddedRecipe

# The smoke run of `--fast` (what the test suite runs): a short warm-up that teaches the answer
# format and little else, fewer rows, shorter responses, one seed. It checks that every stage runs
# and reports; its accuracies say nothing about RAP.
FAST_RECIPE = dataclasses.replace(DEFAULT_RECIPE, world_rows=360, vision_steps=50, warm_up_steps=150, score_rows=96,
                                  max_new_tokens=32)


@dataclass
class QuickstartConfig(ColumnMapping):
    """Settings of the end-to-end study (`rap_hf.quickstart.run_quickstart`).

    The `ColumnMapping` fields (`preset`, `question`, `answer`, `images`, `id`, `choices`,
    `image_root`) map the columns of `dataset` for `to_rap_format`, as in `rap-hf convert`.
    """

    # Also `--out`, the short spelling the README and the tests use.
    output_dir: str = field(default="rap-quickstart", metadata={
        "help": "Folder the report, plots, subsets, checkpoints and Hub trees are written to.", "aliases": ["--out"]})
    fast: bool = field(default=False, metadata={"help": "A 2-3 minute smoke run: a short warm-up, 96 pool rows, "
                                                        "one seed. Its numbers say nothing about RAP."})
    warm_up: bool = field(default=False, metadata={
        "help": "Build the embedded scorer here from random weights (the documented recipe, about 4 minutes on 2 "
                "CPU cores) instead of loading the one shipped with the package. The report says which was used."})
    scorer_seed: int | None = field(default=None, metadata={
        "help": "Seed of the embedded scorer's initial weights. The shipped scorer is seed 0; another seed is warmed "
                "up here (4 minutes on 2 CPU cores), e.g. to see how much the study's figures depend on it."})
    model: str | None = field(default=None, metadata={
        "help": "A VLM (Hub id or folder) to score and train instead of the embedded scorer; no warm-up then."})
    dataset: str | None = field(default=None, metadata={
        "help": "A dataset (Hub id, save_to_disk folder or data file) instead of the embedded world; converted "
                "with to_rap_format (map its columns with --preset, --question, --answer, --images, --id, --choices, "
                "--image-root)."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset that is the training pool."})
    heldout_split: str = field(default="test", metadata={
        "help": "Split of --dataset evaluated after training. Without it, heldout_rows rows of the pool are held out "
                "(seeded)."})
    pool_rows: int | None = field(default=None, metadata={
        "help": "Rows of the pool that are scored, selected from and trained on (the first ones). Default: the "
                "recipe's score_rows on the embedded world, all rows of a dataset."})
    heldout_rows: int | None = field(default=None, metadata={
        "help": "Held-out rows evaluated (the first ones). Default: the whole held-out split (200 rows of the "
                "embedded world)."})
    seeds: int | None = field(default=None, metadata={
        "help": "Training seeds per arm (the random subset is redrawn per seed). Default: 5 (fewer leave the "
                "RAP - random difference within the run's resolution: a random subset's share of learnable rows "
                "varies from seed to seed), 1 with --fast."})
    cde_threshold: float = field(default=0.5, metadata={
        "help": "lambda_c of the RAP arm: keep rows whose D = acc_image - acc_text exceeds it (the paper's 0.5). The "
                "random subset takes as many rows as RAP keeps."})
    epochs: float = field(default=1.0, metadata={
        "help": "Passes of GRPO over each training set. The RAP and random subsets (equal sizes) train the same number "
                "of steps; the full pool trains the same number of passes, so more steps."})
    min_steps: int | None = field(default=None, metadata={
        "help": "At least this many GRPO steps per trained arm, however small its set. Default: 1 (every arm "
                "trains its passes and no more, so its compute is what its rows cost), 4 with --fast."})
    learning_rate: float = field(default=5e-5, metadata={
        "help": "GRPO learning rate (AdamW, constant). Measured on the embedded world (one pass per arm): at 1e-4 "
                "any subset teaches the learnable rows, the random one too; at 1e-5 the RAP subset's few steps are "
                "too few; 5e-5 separates them."})
    num_generations: int = field(default=4, metadata={"help": "GRPO rollouts per prompt."})
    prompts_per_step: int = field(default=8, metadata={"help": "Prompts per optimiser step."})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "Longest response, in tokens, when scoring, training and evaluating. Default: the embedded recipe's "
                "(40), or 1024 with --model."})
    hub_prefix: str = field(default="me/rap-quickstart", metadata={
        "help": "Repository ids written into the Hub trees and cards: PREFIX-subset (dataset), PREFIX-model (model)."})
    device: str | None = field(default=None, metadata={"help": "Device of every stage; default: a GPU if there is one."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(self, "seeds", low=1)
        check_range(self, "cde_threshold", low=-1, high=1, why=" (D = acc_image - acc_text lies in it)")
        check_range(self, "epochs", low=0, low_open=True)
        check_range(self, "learning_rate", low=0, low_open=True)
        check_range(self, "num_generations", low=2, why=" (GRPO compares the rollouts of a prompt with each other)")
        check_range(self, "prompts_per_step", low=1)
        check_range(self, "min_steps", low=1)
        for name in ("pool_rows", "heldout_rows", "max_new_tokens"):
            check_range(self, name, low=1)
        if self.model is not None and (self.warm_up or self.scorer_seed is not None):
            raise ValueError("--warm-up and --scorer-seed build the embedded scorer; with --model the study uses that "
                             "model instead. Drop one of them.")

    @property
    def num_seeds(self) -> int:
        return self.seeds if self.seeds is not None else (1 if self.fast else 5)

    def min_steps_or_default(self) -> int:
        return self.min_steps if self.min_steps is not None else (4 if self.fast else 1)

    @property
    def embedded(self) -> bool:
        """Whether the study runs on the embedded world and scorer (neither --model nor --dataset)."""
        return self.model is None and self.dataset is None

    def recipe(self) -> EmbeddedRecipe:
        """The embedded recipe of this run (its world, warm-up and scoring settings)."""
        recipe = FAST_RECIPE if self.fast else DEFAULT_RECIPE
        if self.pool_rows is not None:
            recipe = dataclasses.replace(recipe, score_rows=self.pool_rows)
        if self.scorer_seed is not None:
            recipe = dataclasses.replace(recipe, model_seed=self.scorer_seed)
        return recipe

    def max_new_tokens_or_default(self) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return self.recipe().max_new_tokens if self.model is None else 1024
