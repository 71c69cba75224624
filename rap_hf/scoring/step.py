"""A scoring step: one job of scoring (rollout CDE, ACE, logit-CDE, or a user's own score).

A `Scorer` runs its steps in order over the prepared rows of a batch. Each step declares the
columns it writes (`columns`), may read what earlier steps wrote this call or what an earlier
pass left on the rows (`reads`), and returns one value per row for each of its columns. A step may
mark a row failed by setting `row.error`; the scorer then blanks every score of that row, so a row
never carries partial scores, and writes the reason to `rap_error`.

Writing your own step (see docs/scoring.md, "Your own scoring step"):

    class FormatRate(ScoringStep):
        name = "format_rate"
        reads = ("rap_image_formatted",)

        def columns(self, config):
            return {"rap_format_rate": "float64"}

        def score(self, rows, context):
            flags = context.column("rap_image_formatted")
            return {"rap_format_rate": [None if f is None else sum(map(bool, f)) / len(f) for f in flags]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import RAPConfig
from ..rows import PreparedRow
from .columns import ColumnSpec
from .model import ScoringModel


@dataclass
class StepContext:
    """What a step sees besides its rows: the model, the config, and the columns so far.

    Attributes:
        scoring_model: The loaded `ScoringModel`; `model`, `processor`, `tokenizer`, `device` and
            `engine()` below reach into it.
        config: The scorer's `RAPConfig`.
        batch: The input batch as `datasets` passed it (a dict of columns).
        written: Columns earlier steps of this call returned (including ones the scorer does not
            keep in its output, such as responses with `keep_responses=False`).
    """

    scoring_model: ScoringModel
    config: RAPConfig
    batch: Mapping[str, Sequence[Any]]
    written: dict[str, list] = field(default_factory=dict)

    @property
    def model(self):
        """The loaded `transformers` model."""
        return self.scoring_model.model

    @property
    def processor(self):
        return self.scoring_model.processor

    @property
    def tokenizer(self):
        return self.scoring_model.tokenizer

    @property
    def device(self):
        return self.scoring_model.device

    def engine(self):
        """The rollout engine: `transformers` generate, or the inference servers (built once per scorer)."""
        return self.scoring_model.engine()

    def column(self, name: str) -> Sequence[Any]:
        """A column written earlier in this call, else the input batch's; `KeyError` if neither has it."""
        if name in self.written:
            return self.written[name]
        if name in self.batch:
            return self.batch[name]
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return name in self.written or name in self.batch


class ScoringStep:
    """Base class of scoring steps. Subclasses set `name` and implement `columns` and `score`.

    Class attributes:
        name: A short identifier (enters the scorer's cache fingerprint).
        reads: Columns the step needs from earlier steps or an earlier pass over the rows. When an
            earlier step of the same scorer does not write them, they come from the input rows, and
            so do those rows' earlier errors (`rap_error`): a row that pass failed stays failed.
        needs_rollouts: The step samples responses (the scorer then builds a rollout engine).
    """

    name: str = "step"
    reads: tuple[str, ...] = ()
    needs_rollouts: bool = False

    def columns(self, config: RAPConfig) -> dict[str, ColumnSpec]:
        """The columns this step adds to the output, with their types (see `rap_hf.scoring.columns`)."""
        raise NotImplementedError

    def provides(self, config: RAPConfig) -> list[str]:
        """Every column later steps of the same scorer can read from this one: its `columns`, and any
        it returns without keeping them in the output."""
        return list(self.columns(config))

    def replaces(self, config: RAPConfig) -> list[str]:
        """Score columns an earlier run may have left that this step's output makes stale."""
        return []

    def score(self, rows: list[PreparedRow], context: StepContext) -> dict[str, list]:
        """One value per row (None for rows with `error`) for each column; may set `row.error`.

        Index the returned lists by `row.index` (a row's position in the batch)."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What, besides the config, decides this step's output (enters the cache fingerprint)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"


def empty_columns(columns: Mapping[str, Any], n: int) -> dict[str, list]:
    """`{name: [None] * n}` for each column: the value of a row a step did not score."""
    return {name: [None] * n for name in columns}


def live_chunks(rows: Sequence[PreparedRow], size: int) -> list[list[PreparedRow]]:
    """The rows without an error, in chunks of `size` (one generate or forward call each)."""
    live = [r for r in rows if r.error is None]
    return [live[i : i + size] for i in range(0, len(live), size)]
