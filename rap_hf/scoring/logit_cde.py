"""The logit-CDE step: CDE without sampling (two teacher-forced passes per row).

`rap_logit_cde` is the mean log-probability of the reference answer's tokens, teacher-forced as
`config.logit_cde_target` (the boxed answer by default) after the prompt with the image, minus the
same without the image. Cheap next to M rollouts, and a ranking signal rather than a threshold one.
"""

from __future__ import annotations

from ..config import RAPConfig
from ..retry import batch_or_alone
from ..rows import PreparedRow
from .columns import LOGIT_COLUMNS, ColumnSpec
from .step import ScoringStep, StepContext, empty_columns, live_chunks
from .teacher_forcing import Continuation, answer_log_probs, tokenize_continuation


def answer_target(tokenizer, template: str, answer: str) -> tuple[Continuation, list[int]] | None:
    """The tokenized target `template` with `{answer}` filled in, and which of its tokens carry the
    answer's characters (a token may also hold the brace); None when no token does."""
    continuation = tokenize_continuation(tokenizer, template.replace("{answer}", answer))
    begin = len(template.partition("{answer}")[0])
    scored = [k for k, (a, b) in enumerate(continuation.offsets)
              if b > a and a < begin + len(answer) and b > begin]
    return (continuation, scored) if scored else None


class LogitCDE(ScoringStep):
    """The sampling-free CDE estimate: `rap_logit_cde`."""

    name = "logit_cde"

    def columns(self, config: RAPConfig) -> dict[str, ColumnSpec]:
        return dict(LOGIT_COLUMNS)

    def score(self, rows: list[PreparedRow], context: StepContext) -> dict[str, list]:
        config = context.config
        out = empty_columns(LOGIT_COLUMNS, len(rows))
        targets: list[tuple[Continuation, list[int]] | None] = [None] * len(rows)
        for row in rows:
            if row.error is not None:
                continue
            target = answer_target(context.tokenizer, config.logit_cde_target, row.answer)
            if target is None:
                row.error = "logit-CDE: the answer's tokens could not be located in the tokenized target"
                continue
            targets[row.index] = target

        def difference(part: list[PreparedRow]) -> list[float]:
            continuations = [targets[r.index][0] for r in part]
            scored = [targets[r.index][1] for r in part]
            with_image = answer_log_probs(context.model, context.processor, [r.image_prompt for r in part],
                                          continuations, scored, context.device)
            text_only = answer_log_probs(context.model, context.processor, [r.text_prompt for r in part],
                                         continuations, scored, context.device)
            return [a - b for a, b in zip(with_image, text_only)]

        for chunk in live_chunks(rows, config.batch_size):
            for row, value in zip(chunk, batch_or_alone(chunk, difference, "logit-CDE")):
                out["rap_logit_cde"][row.index] = value
        return out
