"""The rollout step: M responses per row with the image and M without, verified; CDE and difficulty.

Rollout j of a row under a condition is drawn from its own seed (`sample_seed`), so it is the same
whatever batch or round it is drawn in. With `config.adaptive`, rollouts come in rounds and a row
stops once its paper-mode decision is settled (`adaptive.can_stop`); ACE's verdict is part of that
rule, so the step is given the ACE step and runs it on the first round's rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..config import RAPConfig
from ..retry import batch_or_alone
from ..rollouts.sampling import sample_seed
from ..rows import PreparedRow
from .adaptive import can_stop
from ..rules import accuracy, difficulty, discrepancy
from .cde import verify_rollouts
from .columns import ACE_COLUMNS, CDE_COLUMNS, RESPONSE_COLUMNS, ColumnSpec
from .step import ScoringStep, StepContext, empty_columns, live_chunks

CONDITIONS = ("image", "text")


@dataclass
class _Outcomes:
    """The rollouts one row has drawn under one condition so far, and their verdicts."""

    responses: list[str] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    formatted: list[bool] = field(default_factory=list)

    def extend(self, responses: Sequence[str], correct: Sequence[bool], formatted: Sequence[bool]) -> None:
        self.responses.extend(responses)
        self.correct.extend(correct)
        self.formatted.extend(formatted)


@dataclass
class _Request:
    """One row under one condition, as `batch_or_alone` retries it: a failure is the row's error."""

    row: PreparedRow
    condition: str

    @property
    def error(self) -> str | None:
        return self.row.error

    @error.setter
    def error(self, value: str | None) -> None:
        self.row.error = value


class RolloutCDE(ScoringStep):
    """Rollouts with and without the image, verified: the CDE columns, difficulty and the responses.

    Args:
        keep_responses: Keep `rap_responses_image` / `rap_responses_text` in the output (None: as
            `config.keep_responses`). Later steps of the same scorer read them either way.
        adaptive_ace: With `config.adaptive`, the ACE step whose verdict on the first round's rollout
            the stop rule needs; its columns are then written by this step.
    """

    name = "rollout_cde"
    needs_rollouts = True

    def __init__(self, keep_responses: bool | None = None, adaptive_ace: ScoringStep | None = None):
        self.keep_responses = keep_responses
        self.adaptive_ace = adaptive_ace

    def _keeps_responses(self, config: RAPConfig) -> bool:
        return config.keep_responses if self.keep_responses is None else self.keep_responses

    def _runs_ace(self, config: RAPConfig) -> bool:
        return config.adaptive and self.adaptive_ace is not None

    def columns(self, config: RAPConfig) -> dict[str, ColumnSpec]:
        columns = dict(CDE_COLUMNS)
        if self._keeps_responses(config):
            columns.update(RESPONSE_COLUMNS)
        if self._runs_ace(config):
            columns.update(self.adaptive_ace.columns(config))
        return columns

    def provides(self, config: RAPConfig) -> list[str]:
        return [*self.columns(config), *RESPONSE_COLUMNS]

    def replaces(self, config: RAPConfig) -> list[str]:
        return list(ACE_COLUMNS)  # ACE read the old responses

    def settings(self) -> dict:
        return {"keep_responses": self.keep_responses, "adaptive_ace": repr(self.adaptive_ace)}

    def score(self, rows: list[PreparedRow], context: StepContext) -> dict[str, list]:
        config, m = context.config, context.config.num_rollouts
        out = empty_columns({**CDE_COLUMNS, **RESPONSE_COLUMNS}, len(rows))
        runs_ace = self._runs_ace(config)
        if runs_ace:
            out.update(empty_columns(self.adaptive_ace.columns(config), len(rows)))
        for chunk in live_chunks(rows, config.batch_size):
            drawn = [{c: _Outcomes() for c in CONDITIONS} for _ in chunk]
            flagged = [False] * len(chunk)
            live = list(range(len(chunk)))  # positions in chunk still drawing
            size = m if not config.adaptive else min(m, max(config.adaptive_round_size, config.ace_rollout + 1))
            first_round = True
            while live:
                so_far = len(drawn[live[0]]["image"].responses)  # every live row has drawn the same so far
                count = min(size, m - so_far)
                live_rows = [chunk[k] for k in live]
                for condition, responses in self._draw_conditions(live_rows, so_far, count, context).items():
                    for k, new in zip(live, responses):
                        if new is None:  # this row's generation failed (its error says why)
                            continue
                        drawn[k][condition].extend(new, *verify_rollouts(new, chunk[k].answer, chunk[k].choices))
                live = [k for k in live if chunk[k].error is None]
                if runs_ace and first_round:
                    first = [chunk[k] for k in live]
                    scores = self.adaptive_ace.attention_scores(first, [drawn[k]["image"].responses for k in live],
                                                                context)
                    for j, k in enumerate(live):
                        for name, values in scores.items():
                            out[name][chunk[k].index] = values[j]
                        flagged[k] = bool(scores["rap_ace_flag"][j])
                first_round = False
                size = config.adaptive_round_size
                live = [k for k in live if chunk[k].error is None and not self._finished(drawn[k], flagged[k], config)]
            for k, row in enumerate(chunk):
                if row.error is None:
                    self._write(out, row.index, drawn[k], m)
        # The responses are returned even when not kept: ACE reads them later in this call, and the
        # scorer writes only the declared columns.
        return out

    @staticmethod
    def _draw_conditions(rows: list[PreparedRow], first: int, count: int,
                         context: StepContext) -> dict[str, list[list[str] | None]]:
        """Rollouts first .. first + count - 1 of each row under each condition: {condition: per row}.

        A failing batch is retried row by row, so one bad row fails alone (None, with `row.error`);
        per-sample seeds make the retried rollouts the ones the batch would have drawn. An engine that
        keeps many requests in flight (`concurrent`: inference servers) gets both conditions in one call,
        so its requests never wait for the slowest of one condition; a local model draws them in turn
        (its memory is sized by `batch_size` rows of one condition).
        """
        config = context.config
        engine = context.engine()

        def draw(part: list[_Request]) -> list[list[str]]:
            prompts = [r.row.image_prompt if r.condition == "image" else r.row.text_prompt for r in part]
            seeds = [[sample_seed(config.seed, r.row.rap_id, r.condition, j) for j in range(first, first + count)]
                     for r in part]
            return engine.generate(prompts, count, temperature=config.temperature, top_p=config.top_p,
                                   max_new_tokens=config.max_new_tokens, sample_seeds=seeds)

        def drawn(conditions: tuple[str, ...]) -> list[list[str] | None]:
            return batch_or_alone([_Request(row, c) for c in conditions for row in rows], draw, "generation")

        if getattr(engine, "concurrent", False):
            both = drawn(CONDITIONS)
            return {condition: both[i * len(rows):(i + 1) * len(rows)] for i, condition in enumerate(CONDITIONS)}
        return {condition: drawn((condition,)) for condition in CONDITIONS}

    @staticmethod
    def _finished(drawn: dict[str, _Outcomes], flagged: bool, config: RAPConfig) -> bool:
        m = config.num_rollouts
        if not config.adaptive:
            return len(drawn["image"].responses) >= m
        return can_stop(drawn["image"].correct, drawn["text"].correct, m, config.adaptive_cde_threshold, flagged)

    @staticmethod
    def _write(out: dict[str, list], i: int, drawn: dict[str, _Outcomes], m: int) -> None:
        """One row's CDE columns; undrawn adaptive rollouts are None in the per-rollout lists."""
        image, text = drawn["image"], drawn["text"]
        pad = lambda values: list(values) + [None] * (m - len(values))  # noqa: E731
        acc_image = accuracy(image.correct)
        values = {
            "rap_image_correct": pad(image.correct), "rap_text_correct": pad(text.correct),
            "rap_image_formatted": pad(image.formatted), "rap_text_formatted": pad(text.formatted),
            "rap_acc_image": acc_image, "rap_acc_text": accuracy(text.correct),
            "rap_cde": discrepancy(sum(image.correct), sum(text.correct), len(image.correct)),
            "rap_difficulty": difficulty(sum(image.correct), len(image.correct)),
            "rap_responses_image": pad(image.responses), "rap_responses_text": pad(text.responses),
        }
        for name, value in values.items():
            out[name][i] = value
