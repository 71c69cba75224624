"""The ACE step: attention confidence of one image rollout per row (docs/method.md, "ACE").

One teacher-forced forward pass over prompt + response per row (one row per pass, so memory stays
bounded), with the attention of one decoder layer captured by a hook (`ace.capture_attention`).
`read_attention` is that pass; the step scores it with `ace.attention_confidence`, and
`explain_response` (the Space's attention view) reads the same pass token by token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import RAPConfig
from ..rows import PreparedRow
from . import ace
from .columns import ACE_COLUMNS, ColumnSpec
from .model import ScoringModel
from .step import ScoringStep, StepContext, empty_columns
from .teacher_forcing import Continuation, teacher_forced_inputs, tokenize_continuation


@dataclass
class ResponseAttention:
    """One response's attention in ACE's layer, and where its reasoning lies."""

    attention: torch.Tensor  # [heads, T, T] for prompt + response
    window: tuple[int, int]  # the reasoning tokens, in sequence positions
    continuation: Continuation  # the response's tokens and their character offsets
    start: int  # where the response starts in the sequence


def read_attention(scoring_model: ScoringModel, prompt, response: str, layer: int) -> ResponseAttention:
    """Teacher-force `response` after `prompt` and capture layer `layer`'s attention over it.

    Raises `ValueError` when the response has no tokens.
    """
    continuation = tokenize_continuation(scoring_model.tokenizer, response)
    if not continuation.ids:
        raise ValueError("the response is empty")
    inputs, (start,) = teacher_forced_inputs(scoring_model.processor, [prompt], [continuation], scoring_model.device)
    attention = ace.capture_attention(scoring_model.model, {**inputs, "logits_to_keep": 1}, layer=layer)[0]
    window = ace.token_window(continuation.offsets, ace.reasoning_span(response), start)
    return ResponseAttention(attention, window, continuation, start)


def score_options(config: RAPConfig) -> dict:
    """ACE's column-score settings from a config (as `ace.column_scores` takes them)."""
    return dict(sigma=config.ace_sigma, min_rows=config.ace_min_rows, head_reduce=config.ace_head_reduce,
                renormalize=config.ace_renormalize)


class AttentionConfidence(ScoringStep):
    """ACE on one image rollout per row: `rap_ace` (log psi), `rap_ace_flag`, `rap_ace_column`.

    Args:
        responses_column: The column of response lists to read (written by an earlier rollout step,
            or already on the rows); rollout `config.ace_rollout` of each row is scored.
    """

    name = "ace"

    def __init__(self, responses_column: str = "rap_responses_image"):
        self.responses_column = responses_column
        self.reads = (responses_column,)

    def columns(self, config: RAPConfig) -> dict[str, ColumnSpec]:
        return dict(ACE_COLUMNS)

    def settings(self) -> dict:
        return {"responses_column": self.responses_column}

    def score(self, rows: list[PreparedRow], context: StepContext) -> dict[str, list]:
        if not context.has(self.responses_column):
            raise ValueError(
                f"ACE reads responses from column {self.responses_column!r}, which the dataset lacks. Score with "
                "CDEScorer first, or pass responses_column= naming a column of response lists."
            )
        return self.attention_scores(rows, context.column(self.responses_column), context)

    def attention_scores(self, rows: Sequence[PreparedRow], responses: Sequence[Sequence[str] | None],
                         context: StepContext) -> dict[str, list]:
        """ACE's columns for `rows`, given each row's image responses; a failure becomes `row.error`."""
        config = context.config
        out = empty_columns(ACE_COLUMNS, len(rows))
        threshold = math.log(config.ace_threshold)
        for i, (row, row_responses) in enumerate(zip(rows, responses)):
            if row.error is not None:
                continue
            if not row_responses or len(row_responses) <= config.ace_rollout:
                row.error = f"ACE needs image rollout {config.ace_rollout}, but the row has {len(row_responses or [])}"
                continue
            try:
                seen = read_attention(context.scoring_model, row.image_prompt, row_responses[config.ace_rollout],
                                      config.ace_layer)
                log_psi, column = ace.attention_confidence(seen.attention, seen.window, **score_options(config))
            except Exception as error:
                row.error = f"ACE failed: {type(error).__name__}: {error}"
                continue
            out["rap_ace"][i] = log_psi
            out["rap_ace_flag"][i] = log_psi > threshold
            out["rap_ace_column"][i] = column
        return out


def explain_response(scoring_model: ScoringModel, row: PreparedRow, response: str,
                     config: RAPConfig) -> ace.AttentionMap:
    """ACE's attention over one response of a prepared row, token by token (the Space's view)."""
    try:
        seen = read_attention(scoring_model, row.image_prompt, response, config.ace_layer)
    except ValueError as error:
        raise ValueError(f"Row {row.rap_id!r}: {error}") from error
    scores, reduced = ace.column_scores(seen.attention, seen.window, **score_options(config))
    log_psi, column = ace.best_column(scores, seen.window[0])
    received = ace.attention_received(reduced).tolist()
    # Each token's text runs from the previous token's end, so the pieces give the response back.
    offsets = seen.continuation.offsets
    tokens, cut = [], 0
    for k, (_, end) in enumerate(offsets):
        end = len(response) if k == len(offsets) - 1 else max(end, cut)
        tokens.append(response[cut:end])
        cut = end
    first = seen.window[0] - seen.start
    weights = [received[k - first] if 0 <= k - first < len(received) else None for k in range(len(tokens))]
    return ace.AttentionMap(tokens=tokens, received=weights,
                            winner=None if column is None else column - seen.start, log_psi=log_psi,
                            threshold=math.log(config.ace_threshold))
