"""What each tab of the Space shows, as plain functions of a `DemoData` (tests call them directly).

- Overview: `overview` re-runs `select` at the thresholds given (instant: it reads score columns
  only) and returns the headline, the counts by reason and the score histograms.
- Explorer: `explain_row` returns one row's image, question and answer, rollouts, scores against the
  thresholds with its decision, and its reasoning shaded by the attention ACE measured.
- Score a sample: `score_sample` scores an uploaded sample with the loaded model and decides it among
  the loaded rows (`decide_among`).
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..data.images import ImageDecodeError, decode_row_images, to_image_ref
from ..selection import KEPT_REASONS, REASON_MEANINGS, Selection, select
from .data import SELECT_COLUMNS, DemoData

ALL_REASONS = "all reasons"


# --------------------------------------------------------------------------- overview
def run_selection(scored, cde_threshold: float = 0.5, ace_threshold: float = 0.1,
                  drm_k: int | None = None, *, use_ace: bool = True) -> Selection:
    """Paper-mode `select` over scored rows with the given thresholds (drm_k None: as many as
    trivial rows removed)."""
    return select(scored, mode="paper", cde_threshold=float(cde_threshold), ace_threshold=float(ace_threshold),
                  drm_k=None if drm_k is None else int(drm_k), use_ace=use_ace)


def selection_for(data: DemoData, scored, cde_threshold: float, ace_threshold: float,
                  drm_k: int | None = None) -> Selection:
    """`scored` selected as the Space selects: in paper mode with the thresholds given (and the loaded
    selection's ACE setting); a reference-mode selection with its own settings (the released
    script's rules have no lambda_c or lambda_a)."""
    if data.selection.mode == "reference":
        return select(scored, data.selection)
    return run_selection(scored, cde_threshold, ace_threshold, drm_k, use_ace=bool(data.selection.use_ace))


def overview(data: DemoData, cde_threshold: float, ace_threshold: float, drm_auto: bool = True,
             drm_k: float = 0) -> tuple[str, list[list[Any]], Any, dict[str, str]]:
    """(headline, counts table, histogram figure, {rap_id: reason}) for the thresholds given."""
    selection = selection_for(data, data.scored, cde_threshold, ace_threshold, None if drm_auto else int(drm_k))
    report = selection.report
    if report.mode == "reference":
        settings = ("reference mode (the released script's band and gap rules, at the selection's own settings: "
                    "λc and λa do not apply)")
    else:
        ace = f"λa = {ace_threshold:g}" if report.thresholds.get("use_ace") else "ACE off"
        settings = f"λc = {cde_threshold:g}, {ace}, DRM adds k = {report.thresholds['drm_k']} rows"
    headline = (f"### Kept {report.kept} of {report.total} rows ({100 * report.fraction:.1f} %)\n"
                f"{settings} · M = {report.num_rollouts} rollouts per condition · {data.source}")
    table = [[reason, count, f"{100 * count / report.total:.1f} %" if report.total else "0.0 %",
              REASON_MEANINGS.get(reason, "")] for reason, count in report.counts.items()]
    reasons = dict(zip(selection.decisions["rap_id"], selection.decisions["rap_reason"]))
    return headline + planted_kept(data.scored, reasons), table, report.figure(), reasons


def planted_kept(scored, reasons: dict[str, str]) -> str:
    """Rows kept per planted type, as a Markdown table (empty for rows without `rap_planted`): on the
    embedded world, whether the selection found the rows GRPO can still improve (`learnable`)."""
    if "rap_planted" not in scored.column_names:
        return ""
    rows: dict[str, list[int]] = {}
    for rap_id, planted in zip(scored["rap_id"], scored["rap_planted"]):
        counts = rows.setdefault(planted, [0, 0])
        counts[0] += 1
        counts[1] += reasons.get(rap_id) in KEPT_REASONS
    lines = ["", "", "| planted type (the world's truth) | rows | kept | share kept |", "|---|---:|---:|---:|"]
    lines += [f"| {planted} | {total} | {kept} | {100 * kept / total:.0f} % |"
              for planted, (total, kept) in sorted(rows.items())]
    return "\n".join(lines)


# --------------------------------------------------------------------------- explorer
def row_ids(data: DemoData, reasons: dict[str, str], reason: str = ALL_REASONS) -> list[str]:
    """Ids of the loaded rows with `reason` under the current thresholds (all rows by default)."""
    ids = list(data.scored["rap_id"])
    return ids if reason in (None, "", ALL_REASONS) else [i for i in ids if reasons.get(i) == reason]


def _mark(value) -> str:
    return "✓" if value else ("✗" if value is not None else "–")


def rollout_table(row: dict[str, Any]) -> list[list[Any]]:
    """One line per rollout: condition, number, correct, formatted, response."""
    lines = []
    for condition, key in (("image", "image"), ("text only", "text")):
        responses = row.get(f"rap_responses_{key}") or []
        correct = row.get(f"rap_{key}_correct") or []
        formatted = row.get(f"rap_{key}_formatted") or []
        for k in range(max(len(correct), len(responses))):
            lines.append([condition, k + 1, _mark(correct[k] if k < len(correct) else None),
                          _mark(formatted[k] if k < len(formatted) else None),
                          responses[k] if k < len(responses) else ""])
    return lines


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def row_summary(row: dict[str, Any], reason: str | None, cde_threshold: float, ace_threshold: float) -> str:
    """Markdown: the row's scores against the thresholds, its decision and what it means."""
    if row.get("rap_error"):
        return f"**Decision: error.** The row could not be scored: `{row['rap_error']}`"
    cde, ace = row.get("rap_cde"), row.get("rap_ace")
    lines = ["| score | value | rule |", "|---|---|---|"]
    passes = cde is not None and cde > cde_threshold
    lines.append(f"| D = acc_image − acc_text | {_number(row.get('rap_acc_image'), 2)} − "
                 f"{_number(row.get('rap_acc_text'), 2)} = **{_number(cde, 2)}** | "
                 f"CDE keeps D > λc = {cde_threshold:g}: {'passes' if passes else 'fails'} |")
    if ace is not None:
        psi = math.exp(ace) if ace > -700 else 0.0
        flagged = ace > math.log(ace_threshold)
        lines.append(f"| ψ (ACE) | log ψ = {_number(ace, 2)}, ψ = {psi:.3g} | "
                     f"ACE drops ψ > λa = {ace_threshold:g}: {'flagged' if flagged else 'passes'} |")
    lines.append(f"| difficulty = 1 − acc_image | {_number(row.get('rap_difficulty'), 2)} | "
                 "DRM: 0 is trivial, 1 unsolvable |")
    if row.get("rap_logit_cde") is not None:
        lines.append(f"| logit-CDE | {_number(row.get('rap_logit_cde'), 3)} | the sampling-free estimate |")
    decision = f"**Decision: {reason}** ({REASON_MEANINGS.get(reason, '')})" if reason else ""
    if reason == "kept_replacement":
        decision += ": **kept**"
    planted = f"\n\nPlanted truth of this embedded-world row: **{row['rap_planted']}**." if row.get("rap_planted") else ""
    return decision + "\n\n" + "\n".join(lines) + planted


def attention_view(data: DemoData, row: dict[str, Any]) -> tuple[list[tuple[str, float | None]], str]:
    """HighlightedText value of the row's ACE rollout, and a caption (or why there is none)."""
    if data.model is None:
        return [], "No model loaded: attention maps need the scorer (--model / RAP_MODEL)."
    try:
        attention = data.scorer().explain_attention(row)
    except ValueError as error:
        return [], str(error)
    if attention.winner is None:
        caption = (f"No column has {data.config.ace_min_rows} reasoning tokens after it, so ACE scores nothing "
                   "here (log ψ = −inf).")
    else:
        layer = "the last layer" if data.config.ace_layer == -1 else f"layer {data.config.ace_layer}"
        caption = (f"Shade: attention each reasoning token received from the tokens after it ({layer}). "
                   f"[Bracketed]: the winning column, log ψ = {attention.log_psi:.2f} "
                   f"({'above' if attention.flagged else 'below'} log λa = {attention.threshold:.2f}).")
    return attention.highlighted(), caption


def first_image(row: dict[str, Any]):
    """The row's first image as an RGB picture, None when it has none or it cannot be decoded."""
    refs = [ref for ref in (to_image_ref(value) for value in row.get("images") or []) if ref is not None]
    try:
        return decode_row_images(refs[:1], row.get("rap_id"))[0] if refs else None
    except ImageDecodeError:
        return None


def explain_row(data: DemoData, rap_id: str, reasons: dict[str, str], cde_threshold: float = 0.5,
                ace_threshold: float = 0.1) -> tuple[Any, str, list[list[Any]], str, list, str]:
    """(image, question and answer, rollouts, scores and decision, attention, attention caption)."""
    if not rap_id:
        return None, "Pick a row. (An empty list: no row has that reason under the current thresholds.)", [], "", [], ""
    row = data.row(rap_id)
    text = f"**{rap_id}**\n\n**Question:** {row['question']}\n\n**Answer:** `{row['answer']}`"
    image = first_image(row)
    if image is None:
        text += "\n\n(No image in the loaded data: a published subset carries the kept rows' images only.)"
    highlighted, caption = attention_view(data, row)
    return (image, text, rollout_table(row), row_summary(row, reasons.get(rap_id), cde_threshold,
                                                                     ace_threshold), highlighted, caption)


# --------------------------------------------------------------------------- a new sample
def score_sample(data: DemoData, image, question: str, answer: str, cde_threshold: float = 0.5,
                 ace_threshold: float = 0.1, progress=None) -> tuple[str, list[list[Any]], str, list, str]:
    """Score one uploaded sample with the loaded model and decide it among the loaded rows.

    Returns (what was scored, rollouts, scores and decision, attention, attention caption).
    """
    import datasets

    from ..data.canonical import images_feature

    if image is None or not (question or "").strip() or not (answer or "").strip():
        raise ValueError("Give an image, a question and its answer")
    scorer = data.scorer()
    rap_id = f"uploaded-{int(time.time() * 1000)}"
    rows = datasets.Dataset.from_dict(
        {"rap_id": [rap_id], "question": [question.strip()], "answer": [answer.strip()],
         "images": [[to_image_ref(image.convert("RGB"))]]},
        features=datasets.Features({"rap_id": datasets.Value("string"), "question": datasets.Value("string"),
                                    "answer": datasets.Value("string"), "images": images_feature()}))
    if progress is not None:
        progress(0.05, desc=f"Sampling {data.config.num_rollouts} rollouts with the image and without, then ACE")
    row = scorer.map(rows, batch_size=1, load_from_cache_file=False, keep_in_memory=True)[0]
    if progress is not None:
        progress(0.8, desc="Deciding it among the loaded rows")
    reason = decide_among(data, row, cde_threshold, ace_threshold)
    highlighted, caption = attention_view(data, row) if not row.get("rap_error") else ([], "")
    return (f"**Question:** {question}\n\n**Answer:** `{answer}`", rollout_table(row),
            row_summary(row, reason, cde_threshold, ace_threshold), highlighted, caption)


def decide_among(data: DemoData, row: dict[str, Any], cde_threshold: float, ace_threshold: float) -> str:
    """The reason `row` gets when selected together with the loaded rows (DRM ranks rows against
    each other, so a row's decision depends on the others)."""
    import datasets

    columns = [c for c in SELECT_COLUMNS if c in data.scored.column_names]
    pool = data.scored.select_columns(columns)
    extra = datasets.Dataset.from_dict({c: [row.get(c)] for c in columns}, features=pool.features)
    decisions = selection_for(data, datasets.concatenate_datasets([pool, extra]), cde_threshold,
                              ace_threshold).decisions
    return decisions[len(decisions) - 1]["rap_reason"]

