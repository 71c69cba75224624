"""Map-compatible scorers: `ds.map(scorer, batched=True, features=scorer.features(ds))`, or `scorer.map(ds)`.

A `Scorer` is a model (`ScoringModel`: loaded lazily, once per process, pickled as a reference) and
a list of scoring steps (`ScoringStep`) run in order over each batch's prepared rows
(`rap_hf.rows`). The library's scorers are step lists:

- `CDEScorer`: rollouts with and without the image, verified; CDE and difficulty (`RolloutCDE`).
- `ACEScorer`: attention confidence of one image rollout per row, from a CDE pass or given
  (`AttentionConfidence`).
- `LogitCDEScorer`: the sampling-free CDE estimate (`LogitCDE`).
- `RAPScorer`: all three on one model, as `RAPConfig` switches them.

`Scorer(model, config, steps=[...])` runs any list, including steps of your own. Under
`map(num_proc=..., with_rank=True)` each worker loads the model on `cuda:{rank}`. A row that cannot
be scored gets `rap_error` and None scores; the rest of its batch is scored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from ..config import RAPConfig
from ..data.canonical import ensure_canonical
from ..rollouts.sampling import SAMPLER_NAME
from ..serving import SERVER_EXECUTION_FIELDS
from ..rows import prepare_rows
from .ace import AttentionMap
from .ace_step import AttentionConfidence, explain_response
from .columns import ACE_COLUMNS, ERROR_COLUMNS, LOGIT_COLUMNS, RESPONSE_COLUMNS, ColumnSpec, feature
from .logit_cde import LogitCDE
from .map_cache import discard_damaged, scores_cache_file
from .served import processor_reference, reference, scoring_model_for, skipped_steps
from .rollout_cde import RolloutCDE
from .step import ScoringStep, StepContext

logger = logging.getLogger(__name__)


class Scorer:
    """Runs scoring steps over canonical rows with one model; a `datasets.map` callable.

    Args:
        model: A Hub id or local folder (loaded lazily, once per process), or a loaded model.
        config: Scoring settings (`RAPConfig`); every step reads it.
        processor: The model's processor, loaded or as a reference (default: the model's own).
        steps: The steps to run, in order. Subclasses build theirs from the config instead.
    """

    def __init__(self, model, config: RAPConfig | None = None, processor=None,
                 steps: Sequence[ScoringStep] | None = None):
        self.config = config or RAPConfig()
        self.scoring_model = scoring_model_for(model, processor, self.config)
        self._steps = list(steps) if steps is not None else None
        if self._steps is not None and not self._steps:
            raise ValueError("A Scorer needs at least one step")

    # ----------------------------------------------------------------- what it runs
    @property
    def steps(self) -> list[ScoringStep]:
        """The steps this scorer runs, in order."""
        if self._steps is None:
            raise NotImplementedError(f"{type(self).__name__} must define its steps")
        return self._steps

    @property
    def model_ref(self) -> str | None:
        """The model's Hub id or folder (None for an in-memory model that was not loaded from one)."""
        return self.scoring_model.model_ref

    @property
    def processor_ref(self) -> str | None:
        return self.scoring_model.processor_ref

    def with_config(self, config: RAPConfig) -> Scorer:
        """The same scorer (same model reference, processor and steps) under another config; the
        model is not shared, so nothing is loaded."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.config = config
        loaded = self.scoring_model
        twin.scoring_model = scoring_model_for(reference(loaded), processor_reference(loaded), config)
        return twin

    # ----------------------------------------------------------------- output schema
    def output_columns(self) -> dict[str, ColumnSpec]:
        """Every column the scorer writes (each step's, then `rap_error`), with its type."""
        columns: dict[str, ColumnSpec] = {}
        for step in self.steps:
            columns.update(step.columns(self.config))
        return {**columns, **ERROR_COLUMNS}

    def skipped_steps(self) -> str | None:
        """What this scorer leaves out through inference servers without local weights, in one sentence
        (RAP's ACE and logit-CDE), or None."""
        return skipped_steps(self.config) if isinstance(self, RAPScorer) else None

    def replaces(self) -> list[str]:
        """Score columns an earlier run may have left that this scorer's output makes stale."""
        stale: list[str] = []
        for step in self.steps:
            stale += [c for c in step.replaces(self.config) if c not in stale]
        return stale

    def features(self, ds):
        """`ds.features` plus this scorer's columns: pass as `features=` to `ds.map`.

        Types must be fixed up front: a batch whose rows all failed has only None scores, from which
        `datasets` could not infer a type.
        """
        from datasets import Features

        merged = dict(ds.features)
        merged.update({name: feature(spec) for name, spec in self.output_columns().items()})
        return Features(merged)

    def map_schema(self, ds):
        """(features of the scored rows, columns to remove) for `ds.map(self, ...)`: score columns
        that this run will not write are stale leftovers of an earlier run, and go."""
        from datasets import Features

        stale = [c for c in self.replaces() if c in ds.column_names and c not in self.output_columns()]
        features = Features({k: v for k, v in self.features(ds).items() if k not in stale})
        return features, stale

    def map(self, ds, *, batch_size: int = 16, num_proc: int | None = None, **map_kwargs):
        """`ds.map` with everything set: batched, features, cache fingerprint, rank, progress text.

        An interrupted map (Ctrl-C, a worker that died) resumes when called again: the blocks whose
        workers finished are reused from the dataset's cache folder, after a check that each holds
        exactly its rows (`map_cache.py`); the others are scored. A dataset held in memory has no
        cache folder: save it (`save_to_disk` / `load_from_disk`) to make its map resumable.

        With `num_proc > 1` the worker processes are spawned, not forked: a forked child inherits
        torch's thread pools (it can hang on CPU) or an initialised CUDA context (it fails on GPU).
        """
        if (skipped := self.skipped_steps()) is not None:  # said once, where the run starts
            logger.warning(skipped)
        features, stale = self.map_schema(ds)
        kwargs = dict(
            batched=True,
            batch_size=batch_size,
            features=features,
            new_fingerprint=self.fingerprint(ds),
            desc=f"RAP scoring ({type(self).__name__})",
        )
        if num_proc and num_proc > 1:
            kwargs.update(num_proc=num_proc, with_rank=True)
        kwargs.update(map_kwargs)
        if stale:
            kwargs["remove_columns"] = list(kwargs.get("remove_columns") or []) + stale
        # Cache files the scorer names, so an interrupted map resumes from checked files (map_cache.py).
        cache_file = kwargs.get("cache_file_name") or scores_cache_file(ds, kwargs["new_fingerprint"])
        if cache_file and not kwargs.get("keep_in_memory") and kwargs.get("load_from_cache_file", True) is not False:
            kwargs["cache_file_name"] = cache_file
            discard_damaged(ds, cache_file)
        if not kwargs.get("num_proc") or kwargs["num_proc"] <= 1:
            return ds.map(self, **kwargs)
        with _spawned_workers():
            return ds.map(self, **kwargs)

    # ----------------------------------------------------------------- identity
    def fingerprint(self, ds, ignore: Sequence[str] = ()) -> str:
        """A stable cache key for `ds.map(..., new_fingerprint=...)` (64 hex characters at most).

        Built from the dataset's fingerprint, the model (Hub id and revision, or a digest of a local
        folder's weight files that reads only their first and last MiB), the config, the steps of a
        scorer built from a list, the sampler and the library version. Computing it never loads or
        hashes a whole model. Through servers, the model is what they describe at /v1/models, and
        where they are (`SERVER_EXECUTION_FIELDS`) does not count; nor do the config fields in `ignore`.
        """
        skipped = {*ignore, *SERVER_EXECUTION_FIELDS}
        fields: dict[str, Any] = {
            "dataset": getattr(ds, "_fingerprint", None),
            "scorer": type(self).__name__,
            "model": self.scoring_model.identity(),
            "processor": self.scoring_model.processor_identity(),
            "config": {k: v for k, v in self.config.to_dict().items() if k not in skipped},
            "sampler": SAMPLER_NAME,
            "version": __version__,
        }
        if self._steps is not None:  # the library's scorers derive their steps from the config
            fields["steps"] = [[step.name, type(step).__qualname__, step.settings()] for step in self._steps]
        payload = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    # ----------------------------------------------------------------- scoring
    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        ensure_canonical(batch, type(self).__name__)
        steps = self.steps
        self._load(rank)
        loaded = self.scoring_model
        rows = prepare_rows(batch, loaded.processor, model=loaded.model,
                            format_prompt=self.config.format_prompt, system_prompt=self.config.system_prompt,
                            errors=batch.get("rap_error") if self._continues_earlier_pass(steps) else None)
        context = StepContext(scoring_model=loaded, config=self.config, batch=batch)
        declared = self.output_columns()
        for step in steps:
            written = step.score(rows, context)
            context.written.update(written)
        out = {name: context.written[name] for name in declared if name in context.written}
        # A row that failed at any step gets None in every score column, not partial scores.
        for row in rows:
            if row.error is not None:
                for values in out.values():
                    values[row.index] = None
        out["rap_error"] = [row.error for row in rows]
        return _typed_output(batch, out, declared)

    def _continues_earlier_pass(self, steps: Sequence[ScoringStep]) -> bool:
        """Whether a step reads columns no earlier step of this scorer writes: they come from an earlier
        pass over the rows, and the rows that pass failed keep their `rap_error`."""
        written: set[str] = set()
        for step in steps:
            if any(name not in written for name in step.reads):
                return True
            written |= set(step.provides(self.config))
        return False

    def _load(self, rank: int | None = None) -> None:
        if self.scoring_model.loaded:
            return
        self.scoring_model.load(device=self.config.device, dtype=self.config.dtype, rank=rank,
                                processor_settings=self.config.processor_settings())
        if any(step.needs_rollouts for step in self.steps) and not self.config.uses_server:
            _warn_if_slow_on_cpu(self.config, self.scoring_model.device)

    def explain_attention(self, row: Mapping[str, Any], response: str | None = None) -> AttentionMap:
        """ACE's attention over one response of a canonical `row`, token by token.

        `response` defaults to the row's ACE rollout (`rap_responses_image[config.ace_rollout]`, as
        scoring wrote it). Runs the same teacher-forced pass as scoring; raises `ValueError` naming
        the row when it cannot be explained.
        """
        config = self.config
        self._load()
        batch = {name: [row.get(name)] for name in ("rap_id", "question", "answer", "images", "choices") if name in row}
        (prepared,) = prepare_rows(batch, self.scoring_model.processor, model=self.scoring_model.model,
                                   format_prompt=config.format_prompt, system_prompt=config.system_prompt)
        if prepared.error is not None:
            raise ValueError(f"Row {prepared.rap_id!r} cannot be explained: {prepared.error}")
        if response is None:
            responses = row.get("rap_responses_image") or []
            if len(responses) <= config.ace_rollout:
                raise ValueError(f"Row {prepared.rap_id!r} has no image rollout {config.ace_rollout}; score it first "
                                 "or pass response=")
            response = responses[config.ace_rollout]
        return explain_response(self.scoring_model, prepared, response, config)


class CDEScorer(Scorer):
    """Rollouts with and without the image, verified: CDE columns, difficulty and the responses."""

    @property
    def steps(self) -> list[ScoringStep]:
        return [RolloutCDE(keep_responses=True)]


class ACEScorer(Scorer):
    """ACE on responses already in the batch (`rap_responses_image`, from a CDE pass or given)."""

    def __init__(self, model, config: RAPConfig | None = None, processor=None,
                 responses_column: str = "rap_responses_image"):
        super().__init__(model, config, processor)
        self.responses_column = responses_column

    @property
    def steps(self) -> list[ScoringStep]:
        return [AttentionConfidence(self.responses_column)]


class LogitCDEScorer(Scorer):
    """The sampling-free CDE estimate: `rap_logit_cde` (no generation)."""

    @property
    def steps(self) -> list[ScoringStep]:
        return [LogitCDE()]


class RAPScorer(Scorer):
    """Everything RAP selection reads, from one model: rollout CDE, difficulty, ACE and logit-CDE.

    Example:
        >>> scorer = RAPScorer("path/to/model", RAPConfig(num_rollouts=5))  # doctest: +SKIP
        >>> scored = scorer.map(ds, batch_size=16)  # doctest: +SKIP
    """

    @property
    def steps(self) -> list[ScoringStep]:
        return rap_steps(self.config)

    def replaces(self) -> list[str]:
        # A RAP run rewrites the whole score set: what it does not write now is stale.
        return [*RESPONSE_COLUMNS, *ACE_COLUMNS, *LOGIT_COLUMNS]


def rap_steps(config: RAPConfig) -> list[ScoringStep]:
    """RAP's steps as `config` switches them: rollout CDE, then ACE (inside the rollout step when
    adaptive rollouts need its verdict), then logit-CDE. Extend it for a scorer with steps of your own:
    `Scorer(model, config, steps=[*rap_steps(config), MyStep()])`.

    Through inference servers without local weights (`local_model`), ACE and logit-CDE are left out:
    no server returns attention weights, and the rows then carry no rap_ace / rap_logit_cde (which
    `rap_hf.select` reports as ACE not applied)."""
    local = not config.uses_server or config.local_model is not None
    ace = AttentionConfidence() if config.compute_ace and local else None
    steps: list[ScoringStep] = [RolloutCDE(adaptive_ace=ace if config.adaptive else None)]
    if ace is not None and not config.adaptive:
        steps.append(ace)
    if config.compute_logit_cde and local:
        steps.append(LogitCDE())
    return steps


_WARNED_CPU = False
# Rollout tokens per row (both conditions) above which a CPU takes minutes per handful of rows.
SLOW_ON_CPU_TOKENS = 4096


def _warn_if_slow_on_cpu(config: RAPConfig, device) -> None:
    """Say once per process, at the start, that the paper's settings are slow on a CPU, and how to try
    things quickly."""
    global _WARNED_CPU
    tokens = 2 * config.num_rollouts * config.max_new_tokens
    if _WARNED_CPU or device.type != "cpu" or tokens < SLOW_ON_CPU_TOKENS:
        return
    _WARNED_CPU = True
    logger.warning(
        "Scoring on the CPU with %d rollouts per condition of up to %d new tokens (up to %d tokens a row) takes "
        "minutes per handful of rows. For a quick trial: --num-rollouts 2 --max-new-tokens 64 (RAPConfig("
        "num_rollouts=2, max_new_tokens=64)); on a machine with a GPU, --device cuda.",
        config.num_rollouts, config.max_new_tokens, tokens)


def _typed_output(batch, out: dict[str, list], declared: Mapping[str, ColumnSpec]) -> dict[str, list]:
    """The scores as `datasets.map` should write them, typed even when `map` was given no `features=`.

    Without `features=`, `datasets` fixes each new column's type from the first batch it writes, so a
    column that batch holds only None for (`rap_error` of a clean batch, `rap_ace_column` where no
    column counted) would be typed null, and the first later value would fail the whole map. Arrow
    arrays carry their type, but `map` accepts them only inside the input batch, which it merges with
    the returned dict (it re-writes the input's own Arrow columns the same way). So in `map`'s lazy
    batches the scores are written into the batch as typed Arrow arrays and an empty dict is returned;
    any other caller (a plain dict, a formatted dataset) gets the columns as lists.
    """
    from datasets.formatting.formatting import LazyBatch

    if not isinstance(batch, LazyBatch):
        return out
    import pyarrow as pa
    from datasets import Features

    schema = Features({name: feature(declared[name]) for name in out}).arrow_schema
    for name, values in out.items():
        batch[name] = pa.array(values, type=schema.field(name).type)
    return {}


@contextlib.contextmanager
def _spawned_workers():
    """Use the "spawn" start method for `datasets`' worker pool within the block."""
    import multiprocess

    previous = multiprocess.get_start_method(allow_none=True)
    multiprocess.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocess.set_start_method(previous, force=True)
