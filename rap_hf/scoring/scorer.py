"""Map-compatible RAP scorers: `ds.map(scorer, batched=True, features=scorer.features(ds))`.

- `CDEScorer`: rollouts with and without the image, verified; CDE and difficulty.
- `ACEScorer`: attention confidence of one image rollout per row (from a CDE pass, or given).
- `LogitCDEScorer`: the sampling-free CDE estimate (two teacher-forced passes per row).
- `RAPScorer`: all three on one model.

A scorer pickles as a light spec (model reference + config) and loads its model lazily, once per
process, on `cuda:{rank}` under `map(num_proc=..., with_rank=True)`. A row that cannot be scored
gets `rap_error` and None scores; the rest of its batch is scored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import RAPConfig
from ..data.images import ImageDecodeError, decode_row_images
from ..data.schema import parse_choices
from ..prompts import render_prompt
from ..retry import batch_or_alone
from ..rollouts import Prompt, make_engine
from ..rollouts.sampling import SAMPLER_NAME, sample_seed
from . import ace as ace_math
from .adaptive import can_stop
from .cde import accuracy, verify_rollouts
from .teacher_forcing import answer_log_probs, teacher_forced_inputs, tokenize_continuation

# Score columns (DESIGN.md) and their types.
_FLOAT, _BOOL, _STRING, _INT = "float64", "bool", "string", "int64"
CDE_COLUMNS = {
    "rap_image_correct": [_BOOL], "rap_text_correct": [_BOOL],
    "rap_image_formatted": [_BOOL], "rap_text_formatted": [_BOOL],
    "rap_acc_image": _FLOAT, "rap_acc_text": _FLOAT, "rap_cde": _FLOAT, "rap_difficulty": _FLOAT,
}
RESPONSE_COLUMNS = {"rap_responses_image": [_STRING], "rap_responses_text": [_STRING]}
ACE_COLUMNS = {"rap_ace": _FLOAT, "rap_ace_flag": _BOOL, "rap_ace_column": _INT}
LOGIT_COLUMNS = {"rap_logit_cde": _FLOAT}
ERROR_COLUMNS = {"rap_error": _STRING}


def _feature(spec):
    from datasets import List, Value

    return List(Value(spec[0])) if isinstance(spec, list) else Value(spec)


@dataclass
class _Row:
    """What scoring needs of one input row, or why it cannot be scored."""

    rap_id: str
    question: str = ""
    answer: str = ""
    choices: list[str] | None = None
    images: list[Any] = field(default_factory=list)
    error: str | None = None
    image_prompt: Prompt | None = None
    text_prompt: Prompt | None = None


class _BaseScorer:
    """Shared machinery: model handling, row preparation, features, fingerprint, pickling."""

    needs_rollouts = False
    # ACE continues a CDE pass: rows that pass failed keep their error. The others start afresh.
    inherits_errors = False

    def __init__(self, model, config: RAPConfig | None = None, processor=None):
        self.config = config or RAPConfig()
        if isinstance(model, (str, os.PathLike)):
            self.model_ref: str | None = str(model)
            self._model = None
        else:
            self._model = model
            ref = getattr(model, "name_or_path", None)
            self.model_ref = str(ref) if ref else None
        if processor is None or isinstance(processor, (str, os.PathLike)):
            self.processor_ref = str(processor) if processor is not None else None
            self._processor = None
        else:
            self._processor = processor
            ref = getattr(processor, "name_or_path", None) or getattr(
                getattr(processor, "tokenizer", None), "name_or_path", None)
            self.processor_ref = str(ref) if ref else None
        self._engine = None
        self._model_digest: str | None = None

    # ----------------------------------------------------------------- output schema
    def output_columns(self) -> dict[str, Any]:
        raise NotImplementedError

    def features(self, ds):
        """`ds.features` plus this scorer's columns: pass as `features=` to `ds.map`.

        Types must be fixed up front: a batch whose rows all failed has only None scores, from which
        `datasets` could not infer a type.
        """
        from datasets import Features

        merged = dict(ds.features)
        merged.update({name: _feature(spec) for name, spec in self.output_columns().items()})
        return Features(merged)

    def map(self, ds, *, batch_size: int = 16, num_proc: int | None = None, **map_kwargs):
        """`ds.map` with everything set: batched, features, cache fingerprint, rank, progress text.

        With `num_proc > 1` the worker processes are spawned, not forked: a forked child inherits
        torch's thread pools (it can hang on CPU) or an initialised CUDA context (it fails on GPU).
        """
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
        if not kwargs.get("num_proc") or kwargs["num_proc"] <= 1:
            return ds.map(self, **kwargs)
        with _spawned_workers():
            return ds.map(self, **kwargs)

    def replaces(self) -> list[str]:
        """Score columns an earlier run may have left that this scorer's output makes stale."""
        return []

    def map_schema(self, ds):
        """(features of the scored rows, columns to remove) for `ds.map(self, ...)`: score columns
        that this run will not write are stale leftovers of an earlier run, and go."""
        from datasets import Features

        stale = [c for c in self.replaces() if c in ds.column_names and c not in self.output_columns()]
        features = Features({k: v for k, v in self.features(ds).items() if k not in stale})
        return features, stale

    # ----------------------------------------------------------------- identity
    def _model_identity(self) -> str:
        if self._model_digest is not None:
            return self._model_digest
        ref = self.model_ref
        if ref and Path(ref).is_dir():
            identity = "folder:" + _folder_digest(Path(ref))
        elif ref:
            identity = "hub:" + ref + "@" + _hub_revision(ref)
        else:
            identity = "object:" + _parameters_digest(self._model)
        self._model_digest = identity
        return identity

    def fingerprint(self, ds) -> str:
        """A stable cache key for `ds.map(..., new_fingerprint=...)` (64 hex characters at most).

        Built from the dataset's fingerprint, the model (Hub id and revision, or a digest of a local
        folder's weight files that reads only their first and last MiB), the config, the sampler and
        the library version. Computing it never loads or hashes a whole model.
        """
        payload = json.dumps(
            {
                "dataset": getattr(ds, "_fingerprint", None),
                "scorer": type(self).__name__,
                "model": self._model_identity(),
                "processor": self.processor_ref,
                "config": self.config.to_dict(),
                "sampler": SAMPLER_NAME,
                "version": __version__,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        if self.model_ref is None:
            raise TypeError(
                f"{type(self).__name__} holds a model that was not loaded from a folder or the Hub, so it cannot be "
                "sent to other processes. Save it with model.save_pretrained(folder) and pass the folder."
            )
        state = self.__dict__.copy()
        state["_model"] = state["_processor"] = state["_engine"] = None  # reloaded lazily in each process
        return state

    # ----------------------------------------------------------------- model
    def _load(self, rank: int | None = None):
        if self._model is None or self._processor is None:
            from ..modeling import load_vlm, pick_device, pick_dtype

            device = pick_device(self.config.device, rank)
            if self._model is None:
                model, processor = load_vlm(self.model_ref, device=device, dtype=pick_dtype(self.config.dtype, device),
                                            processor_ref=self.processor_ref)
                self._model = model
                self._processor = self._processor or processor
            else:
                from transformers import AutoProcessor

                self._processor = AutoProcessor.from_pretrained(self.processor_ref or self.model_ref)
        if self.needs_rollouts and self._engine is None:
            self._engine = make_engine(self.config.backend, self._model, self._processor, self.model_ref)
        return self._model, self._processor

    @property
    def device(self):
        return next(self._model.parameters()).device

    def _render(self, question: str, num_images: int, with_images: bool) -> str:
        return render_prompt(self._processor, question, num_images, with_images=with_images,
                             format_prompt=self.config.format_prompt, system_prompt=self.config.system_prompt)

    def _prepare(self, batch: dict[str, list]) -> list[_Row]:
        """Decode images and render both prompts of each row; failures become `row.error`."""
        from ..rollouts.transformers_engine import ensure_fits

        n = len(batch["rap_id"])
        previous_errors = batch.get("rap_error") if self.inherits_errors else None
        previous_errors = previous_errors or [None] * n
        choices_column = batch.get("choices")
        rows = []
        for i in range(n):
            row = _Row(rap_id=str(batch["rap_id"][i]), question=batch["question"][i] or "",
                       answer=(batch["answer"][i] or "").strip())
            rows.append(row)
            if previous_errors[i]:
                row.error = previous_errors[i]
                continue
            row.choices = parse_choices(choices_column[i]) if choices_column is not None else None
            if not row.answer:
                row.error = "empty answer: the row has no ground truth to verify rollouts against"
                continue
            try:
                row.images = decode_row_images(batch["images"][i], row.rap_id)
            except ImageDecodeError as error:
                row.error = str(error)
                continue
            if not row.images:
                row.error = "no image: RAP measures how much the image matters, and this row has none"
                continue
            try:
                row.image_prompt = Prompt(self._render(row.question, len(row.images), True), row.images)
                row.text_prompt = Prompt(self._render(row.question, len(row.images), False))
                # Encoded once here (its images processed); rollouts, ACE and logit-CDE reuse it.
                ensure_fits(self._processor, self._model, row.image_prompt)
            except Exception as error:  # processor failures (odd aspect ratios, ...) are per-row
                row.error = f"prompt could not be built: {type(error).__name__}: {error}"
        return rows

    def _chunks(self, rows: Sequence[_Row], size: int) -> list[list[_Row]]:
        live = [r for r in rows if r.error is None]
        return [live[i : i + size] for i in range(0, len(live), size)]

    @staticmethod
    def _empty(columns: dict[str, Any], n: int) -> dict[str, list]:
        return {name: [None] * n for name in columns}

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        for column in ("rap_id", "question", "answer", "images"):
            if column not in batch:
                raise ValueError(
                    f"{type(self).__name__} needs canonical RAP rows; column {column!r} is missing. "
                    "Convert the dataset with rap_hf.to_rap_format(ds) first."
                )
        self._load(rank)
        rows = self._prepare(batch)
        out = self._score(rows, batch)
        out["rap_error"] = [r.error for r in rows]
        return out

    def _score(self, rows: list[_Row], batch: dict[str, list]) -> dict[str, list]:
        raise NotImplementedError

    # ----------------------------------------------------------------- the three parts
    def _score_cde(self, rows: list[_Row], ace_out: dict[str, list] | None = None) -> dict[str, list]:
        """Rollouts with and without the image, verified; all M at once, or in adaptive rounds.

        Rollout j of a row under a condition is drawn from its own seed (`sample_seed`), so it is
        the same whatever batch or round it is drawn in. With `config.adaptive`, ACE runs after the
        first round (its rollout is drawn there) and is written into `ace_out`.
        """
        config, m = self.config, self.config.num_rollouts
        out = self._empty({**CDE_COLUMNS, **RESPONSE_COLUMNS}, len(rows))
        index = {id(r): i for i, r in enumerate(rows)}
        for chunk in self._chunks(rows, config.batch_size):
            state = {id(r): {"image": ([], [], []), "text": ([], [], [])} for r in chunk}  # responses, correct, fmt
            flagged = {id(r): False for r in chunk}
            live = list(chunk)
            size = m if not config.adaptive else min(m, max(config.adaptive_round_size, config.ace_rollout + 1))
            first_round = True
            while live:
                drawn = len(state[id(live[0])]["image"][0])  # every live row has drawn the same so far
                count = min(size, m - drawn)
                for condition in ("image", "text"):
                    for r, new in zip(live, self._generate(live, condition, drawn, count)):
                        if new is None:  # this row's generation failed (r.error says why)
                            continue
                        correct, formatted = verify_rollouts(new, r.answer, r.choices)
                        for store, values in zip(state[id(r)][condition], (new, correct, formatted)):
                            store.extend(values)
                live = [r for r in live if r.error is None]
                if config.adaptive and first_round and ace_out is not None:
                    scores = self._score_ace(live, [state[id(r)]["image"][0] for r in live])
                    for k, r in enumerate(live):
                        for name, values in scores.items():
                            ace_out[name][index[id(r)]] = values[k]
                        flagged[id(r)] = bool(scores["rap_ace_flag"][k])
                first_round = False
                size = config.adaptive_round_size
                live = [r for r in live if r.error is None and not self._finished(state[id(r)], flagged[id(r)])]
            for r in chunk:
                if r.error is None:
                    self._write_cde(out, index[id(r)], state[id(r)])
        return out

    def _generate(self, rows: list[_Row], condition: str, first: int, count: int) -> list[list[str] | None]:
        """Rollouts first .. first + count - 1 of each row under a condition.

        A failing batch is retried row by row, so one bad row fails alone (None, with `row.error`);
        per-sample seeds make the retried rollouts the ones the batch would have drawn.
        """
        config = self.config

        def draw(part: list[_Row]) -> list[list[str]]:
            prompts = [r.image_prompt if condition == "image" else r.text_prompt for r in part]
            seeds = [[sample_seed(config.seed, r.rap_id, condition, j) for j in range(first, first + count)]
                     for r in part]
            return self._engine.generate(prompts, count, temperature=config.temperature, top_p=config.top_p,
                                         max_new_tokens=config.max_new_tokens, sample_seeds=seeds)

        return batch_or_alone(rows, draw, "generation")

    def _finished(self, state, flagged: bool) -> bool:
        m = self.config.num_rollouts
        if not self.config.adaptive:
            return len(state["image"][0]) >= m
        return can_stop(state["image"][1], state["text"][1], m, self.config.adaptive_cde_threshold, flagged)

    def _write_cde(self, out: dict[str, list], i: int, state) -> None:
        """One row's CDE columns; undrawn adaptive rollouts are None in the per-rollout lists."""
        m = self.config.num_rollouts
        (image_responses, image_correct, image_formatted) = state["image"]
        (text_responses, text_correct, text_formatted) = state["text"]
        acc_image, acc_text = accuracy(image_correct), accuracy(text_correct)
        pad = lambda values: list(values) + [None] * (m - len(values))  # noqa: E731
        values = {
            "rap_image_correct": pad(image_correct), "rap_text_correct": pad(text_correct),
            "rap_image_formatted": pad(image_formatted), "rap_text_formatted": pad(text_formatted),
            "rap_acc_image": acc_image, "rap_acc_text": acc_text,
            # From the count difference, as select computes it (0.8 - 0.2 would be 0.6000000000000001).
            "rap_cde": (sum(image_correct) - sum(text_correct)) / len(image_correct),
            "rap_difficulty": 1.0 - acc_image,
            "rap_responses_image": pad(image_responses), "rap_responses_text": pad(text_responses),
        }
        for name, value in values.items():
            out[name][i] = value

    def _score_ace(self, rows: list[_Row], responses: Sequence[Sequence[str] | None]) -> dict[str, list]:
        """ACE on one image rollout per row, one row per forward pass (bounded memory)."""
        config = self.config
        out = self._empty(ACE_COLUMNS, len(rows))
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        threshold = math.log(config.ace_threshold)
        for i, (r, row_responses) in enumerate(zip(rows, responses)):
            if r.error is not None:
                continue
            if not row_responses or len(row_responses) <= config.ace_rollout:
                r.error = f"ACE needs image rollout {config.ace_rollout}, but the row has {len(row_responses or [])}"
                continue
            response = row_responses[config.ace_rollout]
            try:
                continuation = tokenize_continuation(tokenizer, response)
                if not continuation.ids:
                    raise ValueError("the response is empty")
                inputs, (start,) = teacher_forced_inputs(self._processor, [r.image_prompt], [continuation], self.device)
                attention = ace_math.capture_attention(self._model, {**inputs, "logits_to_keep": 1},
                                                       layer=config.ace_layer)[0]
                window = ace_math.token_window(continuation.offsets, ace_math.reasoning_span(response), start)
                log_psi, column = ace_math.attention_confidence(
                    attention, window, sigma=config.ace_sigma, min_rows=config.ace_min_rows,
                    head_reduce=config.ace_head_reduce, renormalize=config.ace_renormalize)
            except Exception as error:
                r.error = f"ACE failed: {type(error).__name__}: {error}"
                continue
            out["rap_ace"][i] = log_psi
            out["rap_ace_flag"][i] = log_psi > threshold
            out["rap_ace_column"][i] = column
        return out

    def explain_attention(self, row: Mapping[str, Any], response: str | None = None) -> ace_math.AttentionMap:
        """ACE's attention over one response of a canonical `row`, token by token.

        `response` defaults to the row's ACE rollout (`rap_responses_image[config.ace_rollout]`, as
        scoring wrote it). Runs the same teacher-forced pass as scoring; raises `ValueError` naming
        the row when it cannot be explained.
        """
        config = self.config
        self._load()
        batch = {name: [row.get(name)] for name in ("rap_id", "question", "answer", "images", "choices") if name in row}
        (r,) = self._prepare(batch)
        if r.error is not None:
            raise ValueError(f"Row {r.rap_id!r} cannot be explained: {r.error}")
        if response is None:
            responses = row.get("rap_responses_image") or []
            if len(responses) <= config.ace_rollout:
                raise ValueError(f"Row {r.rap_id!r} has no image rollout {config.ace_rollout}; score it first "
                                 "or pass response=")
            response = responses[config.ace_rollout]
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        continuation = tokenize_continuation(tokenizer, response)
        if not continuation.ids:
            raise ValueError(f"Row {r.rap_id!r}: the response is empty")
        inputs, (start,) = teacher_forced_inputs(self._processor, [r.image_prompt], [continuation], self.device)
        attention = ace_math.capture_attention(self._model, {**inputs, "logits_to_keep": 1}, layer=config.ace_layer)[0]
        window = ace_math.token_window(continuation.offsets, ace_math.reasoning_span(response), start)
        options = dict(sigma=config.ace_sigma, min_rows=config.ace_min_rows, head_reduce=config.ace_head_reduce,
                       renormalize=config.ace_renormalize)
        scores, reduced = ace_math.column_scores(attention, window, **options)
        log_psi, column = ace_math.best_column(scores, window[0])
        received = ace_math.attention_received(reduced).tolist()
        # Each token's text runs from the previous token's end, so the pieces give the response back.
        tokens, cut = [], 0
        for k, (_, end) in enumerate(continuation.offsets):
            end = len(response) if k == len(continuation.offsets) - 1 else max(end, cut)
            tokens.append(response[cut:end])
            cut = end
        first = window[0] - start
        weights = [received[k - first] if 0 <= k - first < len(received) else None for k in range(len(tokens))]
        return ace_math.AttentionMap(tokens=tokens, received=weights,
                                     winner=None if column is None else column - start, log_psi=log_psi,
                                     threshold=math.log(config.ace_threshold))

    def _score_logit_cde(self, rows: list[_Row]) -> dict[str, list]:
        """Mean log-probability of the boxed reference answer with the image minus without it."""
        out = self._empty(LOGIT_COLUMNS, len(rows))
        index = {id(r): i for i, r in enumerate(rows)}
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        prefix, _, _ = self.config.logit_cde_target.partition("{answer}")
        targets: dict[int, tuple] = {}
        for r in rows:
            if r.error is not None:
                continue
            continuation = tokenize_continuation(tokenizer, self.config.logit_cde_target.replace("{answer}", r.answer))
            begin = len(prefix)
            # The tokens that carry the answer's characters (a token may also hold the brace).
            scored = [k for k, (a, b) in enumerate(continuation.offsets)
                      if b > a and a < begin + len(r.answer) and b > begin]
            if not scored:
                r.error = "logit-CDE: the answer's tokens could not be located in the tokenized target"
                continue
            targets[id(r)] = (continuation, scored)

        def difference(part: list[_Row]) -> list[float]:
            continuations = [targets[id(r)][0] for r in part]
            scored = [targets[id(r)][1] for r in part]
            with_image = answer_log_probs(self._model, self._processor, [r.image_prompt for r in part],
                                          continuations, scored, self.device)
            text_only = answer_log_probs(self._model, self._processor, [r.text_prompt for r in part],
                                         continuations, scored, self.device)
            return [a - b for a, b in zip(with_image, text_only)]

        for chunk in self._chunks(rows, self.config.batch_size):
            for r, value in zip(chunk, batch_or_alone(chunk, difference, "logit-CDE")):
                out["rap_logit_cde"][index[id(r)]] = value
        return out


def _blank_failed(out: dict[str, list], rows: Sequence[_Row]) -> dict[str, list]:
    """A row that failed at any stage gets None in every score column, not partial scores."""
    for i, r in enumerate(rows):
        if r.error is not None:
            for values in out.values():
                values[i] = None
    return out


class CDEScorer(_BaseScorer):
    """Rollouts with and without the image, verified: CDE columns and difficulty."""

    needs_rollouts = True

    def replaces(self) -> list[str]:
        return list(ACE_COLUMNS)  # ACE read the old responses

    def output_columns(self) -> dict[str, Any]:
        return {**CDE_COLUMNS, **RESPONSE_COLUMNS, **ERROR_COLUMNS}

    def _score(self, rows, batch):
        return _blank_failed(self._score_cde(rows), rows)


class ACEScorer(_BaseScorer):
    """ACE on responses already in the batch (`rap_responses_image`, from a CDE pass or given)."""

    inherits_errors = True

    def __init__(self, model, config: RAPConfig | None = None, processor=None,
                 responses_column: str = "rap_responses_image"):
        super().__init__(model, config, processor)
        self.responses_column = responses_column

    def output_columns(self) -> dict[str, Any]:
        return {**ACE_COLUMNS, **ERROR_COLUMNS}

    def _score(self, rows, batch):
        if self.responses_column not in batch:
            raise ValueError(
                f"ACEScorer reads responses from column {self.responses_column!r}, which the dataset lacks. "
                "Score with CDEScorer first, or pass responses_column= naming a column of response lists."
            )
        return _blank_failed(self._score_ace(rows, batch[self.responses_column]), rows)


class LogitCDEScorer(_BaseScorer):
    """The sampling-free CDE estimate: `rap_logit_cde` (no generation)."""

    def output_columns(self) -> dict[str, Any]:
        return {**LOGIT_COLUMNS, **ERROR_COLUMNS}

    def _score(self, rows, batch):
        return _blank_failed(self._score_logit_cde(rows), rows)


class RAPScorer(_BaseScorer):
    """Everything RAP selection reads, from one model: rollout CDE, difficulty, ACE and logit-CDE.

    Example:
        >>> scorer = RAPScorer("path/to/model", RAPConfig(num_rollouts=5))  # doctest: +SKIP
        >>> scored = scorer.map(ds, batch_size=16)  # doctest: +SKIP
    """

    needs_rollouts = True

    def replaces(self) -> list[str]:
        return [*RESPONSE_COLUMNS, *ACE_COLUMNS, *LOGIT_COLUMNS]

    def output_columns(self) -> dict[str, Any]:
        columns = dict(CDE_COLUMNS)
        if self.config.keep_responses:
            columns.update(RESPONSE_COLUMNS)
        if self.config.compute_ace:
            columns.update(ACE_COLUMNS)
        if self.config.compute_logit_cde:
            columns.update(LOGIT_COLUMNS)
        return {**columns, **ERROR_COLUMNS}

    def _score(self, rows, batch):
        adaptive_ace = self._empty(ACE_COLUMNS, len(rows)) if self.config.adaptive and self.config.compute_ace else None
        out = self._score_cde(rows, ace_out=adaptive_ace)
        if self.config.compute_ace:
            out.update(adaptive_ace if adaptive_ace is not None else self._score_ace(rows, out["rap_responses_image"]))
        if self.config.compute_logit_cde:
            out.update(self._score_logit_cde(rows))
        if not self.config.keep_responses:
            for name in RESPONSE_COLUMNS:
                out.pop(name)
        return _blank_failed(out, rows)


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


def _folder_digest(folder: Path) -> str:
    """Digest of a model folder from its files' names, sizes and first and last MiB (cheap on 7B)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with open(path, "rb") as f:
            digest.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                digest.update(f.read())
    return digest.hexdigest()[:16]


def _hub_revision(ref: str) -> str:
    """The commit a Hub id resolves to in the local cache ("unresolved" when it cannot be told)."""
    try:
        from transformers import AutoConfig

        return getattr(AutoConfig.from_pretrained(ref), "_commit_hash", None) or "unresolved"
    except Exception:
        return "unresolved"


def _parameters_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).float().numpy().tobytes())
    return digest.hexdigest()[:16]
