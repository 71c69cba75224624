"""The RAP Space: why each row was kept or dropped, thresholds to move, and a new sample to score.

Three tabs over one scored dataset:

- Overview: counts by reason, the kept share, score histograms with the thresholds drawn; sliders
  for lambda_c, lambda_a and the DRM size re-run `select` (instant: it reads score columns only).
  A `rap-hf select` folder (or a published subset) opens at its own settings and mode, so the page
  first shows that selection's own counts.
- Explorer: one row's image, question, answer, rollouts with and without the image (correct and
  format marks), D, psi, difficulty, its decision and why, and its reasoning tokens shaded by the
  attention they received in ACE's layer, the winning column in brackets.
- Score a sample: an uploaded image, a question and an answer, scored by the loaded model like any
  row, and the decision it would get among the loaded rows.

The handlers are plain functions of a `DemoData` (tests call them directly); `build_demo` wires them
into `gradio.Blocks`; `main` serves it (`python spaces_demo/app.py`, `rap-hf demo`). With no dataset
the Space opens on the embedded visual world scored by the tiny scorer shipped with the package
(`rap_hf.embedded`): scored on the first start (well under a minute on 2 CPU cores, as on a free
Space), cached, and loaded in seconds afterwards. While it is being scored, the page is served at once
and shows progress.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DemoConfig, RAPConfig, SelectionConfig
from .data.images import ImageDecodeError, decode_row_images, to_image_ref
from .selection import REASON_MEANINGS, REASONS, Selection, read_outcomes, select

# Columns `select` reads; a new sample is decided among the loaded rows on these alone.
SELECT_COLUMNS = ("rap_id", "rap_image_correct", "rap_text_correct", "rap_image_formatted", "rap_text_formatted",
                  "rap_ace", "rap_error")
ALL_REASONS = "all reasons"
INTRO = """# RAP: which training rows teach a vision-language model to look?
RAP (*Truth in the Few*, arXiv 2506.04755) scores every image+question row with the untrained model
before GRPO and keeps the few that need the image. **CDE** samples answers with and without the
image: D = acc_image - acc_text must exceed lambda_c, otherwise the text alone answers it
(*language prior*). **ACE** drops rows whose reasoning pours its attention into one empty token
(psi > lambda_a). **DRM** swaps rows every rollout already solves (*trivial*: no GRPO signal) for the
hardest ones that still have some signal."""


# --------------------------------------------------------------------------- data
@dataclass
class DemoData:
    """The scored rows the Space shows, and the model that scored them (for attention maps and new
    samples; None when only a dataset was given).

    `selection` is what the Space selects with: the mode and ACE setting of every re-selection and the
    thresholds it opens at (`initial_values`). A `rap-hf select` folder (or a published subset) brings
    its own (`selection_config.json`), so the Overview opens on that selection's counts; otherwise
    the paper's defaults."""

    scored: Any
    model: str | None
    config: RAPConfig = field(default_factory=RAPConfig)
    source: str = ""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    _scorer: Any = field(default=None, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        missing = [c for c in SELECT_COLUMNS[:5] if c not in self.scored.column_names]
        if missing:
            raise ValueError(f"The Space needs scored rows; missing columns {', '.join(missing)}. Score them "
                             "first: `rap-hf score --model MODEL --dataset DATASET --output DIR`, then pass --dataset DIR.")
        self._index = {rap_id: i for i, rap_id in enumerate(self.scored["rap_id"])}

    @classmethod
    def load(cls, dataset: str | None = None, model: str | None = None, *, progress=None,
             recipe=None) -> DemoData:
        """`dataset`: a scored folder (`rap-hf score` output, a `rap-hf select` folder, or any
        `save_to_disk` folder) or a Hub dataset id; None: the embedded world of `recipe` (an
        `EmbeddedRecipe`; the default one if None), built on first use."""
        if dataset is None:
            from .embedded import DEFAULT_RECIPE, embedded_scored, embedded_scorer

            recipe = recipe or DEFAULT_RECIPE
            scored = embedded_scored(recipe, progress=progress, show_progress=True)
            model = model or str(embedded_scorer(recipe))
            return cls(scored, model, recipe.rap_config(),
                       source="the embedded visual world, scored by the embedded tiny scorer (rap_hf.embedded)")
        scored = _load_rows(dataset)
        rollouts = read_outcomes(scored).num_rollouts
        settings, rule = saved_selection(dataset)
        note = ""
        if settings is not None:
            note = f" (opened at the selection's own settings: {settings.mode} mode)"
        elif rule is not None:  # a baseline or a rule of one's own: RAP's settings cannot reproduce it
            note = f" (selected by the {rule} rule; the Space selects with RAP, paper mode)"
        return cls(scored, model, RAPConfig(num_rollouts=rollouts or 5),
                   source=f"{dataset}" + (f", scored by {model}" if model else "") + note,
                   selection=settings or SelectionConfig())

    def initial_values(self) -> tuple[float, float, bool, int]:
        """(lambda_c, lambda_a, DRM size automatic, DRM size k): where the Overview's controls start
        (`overview(data, *data.initial_values())` shows a saved selection's own counts)."""
        return _values(self.selection)

    def row(self, rap_id: str) -> dict[str, Any]:
        if rap_id not in self._index:
            raise ValueError(f"No row with rap_id {rap_id!r} in the loaded dataset")
        return self.scored[self._index[rap_id]]

    def scorer(self):
        if self.model is None:
            raise ValueError("No model loaded: start the Space with --model (or RAP_MODEL) to score new samples "
                             "and to see attention maps")
        if self._scorer is None:
            from .scoring import RAPScorer

            self._scorer = RAPScorer(self.model, self.config)
        return self._scorer


def _load_rows(reference: str):
    """Every scored row of `reference`: a `save_to_disk` folder, a `rap-hf select` folder (its
    `decisions/`), or a `push_subset` repository, on the Hub or written with `local_dir=` (its
    "decisions" configuration)."""
    import datasets

    from .selection import DECISIONS_FOLDER, is_selection_folder

    path = Path(reference)
    if path.exists():
        if is_selection_folder(path):  # every row is in its decisions, the kept ones and the others
            path = path / DECISIONS_FOLDER
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
            return loaded
    errors = []
    for config in ("decisions", None):
        try:
            rows = datasets.load_dataset(reference, config, split="train")
        except (ValueError, FileNotFoundError) as error:
            errors.append(f"{config or 'default'}: {error}")
            continue
        return _with_published_images(rows, reference) if config == "decisions" else rows
    raise ValueError(f"Could not load {reference!r} as a saved folder or a dataset repository ({'; '.join(errors)})")


def saved_selection(reference: str) -> tuple[SelectionConfig | None, str | None]:
    """(settings, rule name) of the selection saved at `reference`: a `rap-hf select` folder
    (`selection_config.json`, `report.json`) or a `push_subset` tree on disk (`rap_report.json`).
    Settings are None for a rule without a `SelectionConfig` (a baseline) and for anything else
    (scored rows, a Hub id); the rule name is None when no selection is saved there."""
    from .selection import CONFIG_FILE, REPORT_JSON, is_selection_folder

    path = Path(reference)
    if is_selection_folder(path):
        config = _json(path / CONFIG_FILE)
        mode = (_json(path / REPORT_JSON) or {}).get("mode")
    elif (path / "rap_report.json").is_file():  # a published subset, written with local_dir=
        report = _json(path / "rap_report.json") or {}
        mode = report.get("mode")
        config = report.get("selection_config") if mode in ("paper", "reference") else None
    else:
        return None, None
    if not isinstance(config, dict):
        return None, mode
    try:
        return SelectionConfig(**config), mode
    except (TypeError, ValueError):  # written by another version: the Space's defaults
        return None, mode


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _with_published_images(decisions, reference: str):
    """A published subset's decisions carry no images (the kept rows do, once): join them back by
    `rap_id`; rows that were dropped get none."""
    import datasets

    from .data.schema import images_feature

    if "images" in decisions.column_names:
        return decisions
    kept = datasets.load_dataset(reference, split="train").select_columns(["rap_id", "images"])
    kept = kept.cast_column("images", images_feature())  # undecoded: bytes, as everywhere else
    by_id = dict(zip(kept["rap_id"], kept["images"]))
    return decisions.add_column("images", [by_id.get(i, []) for i in decisions["rap_id"]], feature=images_feature())


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
    return headline, table, report.figure(), reasons


def opening_values(dataset: str | None) -> tuple[float, float, bool, int]:
    """(lambda_c, lambda_a, DRM size automatic, DRM size k) the Overview's controls open at for
    `dataset`: a saved selection's own settings (read from its files at once, before its rows are
    loaded: the page is built with them), else the paper's defaults."""
    settings = saved_selection(dataset)[0] if dataset else None
    return _values(settings or SelectionConfig())


def _values(config: SelectionConfig) -> tuple[float, float, bool, int]:
    return float(config.cde_threshold), float(config.ace_threshold), config.drm_k is None, int(config.drm_k or 0)


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

    from .data.schema import images_feature

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


# --------------------------------------------------------------------------- the app
class Loader:
    """Loads the `DemoData` in a thread, so the page is served while the embedded world is built."""

    def __init__(self, dataset: str | None = None, model: str | None = None, recipe=None) -> None:
        self.dataset = dataset
        self.data: DemoData | None = None
        self.error: str | None = None
        self.status = "Starting"
        self._thread = threading.Thread(target=self._load, args=(dataset, model, recipe), daemon=True)
        self._thread.start()

    def _progress(self, stage: str, done: int, total: int) -> None:
        what = {"warm-up": "Warming up the embedded scorer (first start only; cached afterwards)",
                "scoring": "Scoring the embedded world with it"}.get(stage, stage)
        self.status = f"{what}: {done} / {total}"

    def _load(self, dataset: str | None, model: str | None, recipe) -> None:
        try:
            self.data = DemoData.load(dataset, model, progress=self._progress, recipe=recipe)
            self.status = "Ready"
        except Exception as error:  # shown on the page, not lost in a thread
            self.error = f"{type(error).__name__}: {error}"
            self.status = f"Failed: {self.error}"

    def wait(self, timeout: float | None = None) -> DemoData:
        self._thread.join(timeout)
        if self.data is None:
            raise RuntimeError(self.error or "The Space's data is not loaded yet")
        return self.data


def build_demo(loader: Loader):
    """The Gradio Blocks of the Space, over the data `loader` provides."""
    import gradio as gr

    def data() -> DemoData:
        if loader.data is None:
            raise gr.Error(f"Still preparing the data: {loader.status}")
        return loader.data

    with gr.Blocks(title="RAP: Reasoning Activation Potential") as demo:
        gr.Markdown(INTRO)
        status = gr.Markdown(elem_id="status")
        reasons = gr.State({})
        # A saved selection opens at its own thresholds (read from its files now, before its rows load).
        cde_start, ace_start, auto_start, k_start = opening_values(loader.dataset)
        with gr.Tab("Overview", id="overview"):
            with gr.Row():
                cde = gr.Slider(-1.0, 1.0, value=cde_start, step=0.05, label="λc (CDE): keep D > λc",
                                elem_id="cde-threshold")
                ace = gr.Slider(min(0.01, ace_start), max(1.0, ace_start), value=ace_start, step=0.01,
                                label="λa (ACE): drop ψ > λa", elem_id="ace-threshold")
                with gr.Column():
                    drm_auto = gr.Checkbox(value=auto_start, label="DRM size k = trivial rows removed (the paper's)")
                    drm_k = gr.Slider(0, max(100, k_start), value=k_start, step=1, label="DRM size k (when unticked)",
                                      elem_id="drm-k")
            headline = gr.Markdown(elem_id="kept-count")
            counts = gr.Dataframe(headers=["reason", "rows", "share", "meaning"], label="Every row, by reason",
                                  interactive=False)
            plot = gr.Plot(label="Scores with the thresholds")
        with gr.Tab("Explorer", id="explorer"):
            with gr.Row():
                reason_filter = gr.Dropdown([ALL_REASONS, *REASONS], value=ALL_REASONS, label="Reason")
                # Choices arrive with the data; a typed or API-given id is checked by the handler.
                row_pick = gr.Dropdown([], label="Row (rap_id)", elem_id="row-pick", allow_custom_value=True)
            with gr.Row():
                image = gr.Image(type="pil", label="Image", height=240)
                about = gr.Markdown(elem_id="row-about")
            summary = gr.Markdown(elem_id="row-summary")
            rollouts = gr.Dataframe(headers=["condition", "#", "correct", "formatted", "response"],
                                    label="Rollouts", interactive=False, wrap=True)
            attention = gr.HighlightedText(label="ACE: the reasoning, shaded by attention received", elem_id="attention")
            attention_caption = gr.Markdown(elem_id="attention-caption")
        with gr.Tab("Score a sample", id="score"):
            with gr.Row():
                upload = gr.Image(type="pil", label="Image", elem_id="upload")
                with gr.Column():
                    question = gr.Textbox(label="Question", value="What colour is the square?", elem_id="question")
                    answer = gr.Textbox(label="Answer", value="red", elem_id="answer")
                    go = gr.Button("Score with the loaded model", variant="primary")
            scored_about = gr.Markdown()
            scored_summary = gr.Markdown(elem_id="score-summary")
            scored_rollouts = gr.Dataframe(headers=["condition", "#", "correct", "formatted", "response"],
                                           label="Rollouts", interactive=False, wrap=True)
            scored_attention = gr.HighlightedText(label="ACE: the reasoning, shaded by attention received")
            scored_caption = gr.Markdown()

        selection_inputs = [cde, ace, drm_auto, drm_k]
        overview_outputs = [headline, counts, plot, reasons]

        def on_overview(cde_value, ace_value, auto, k):
            return overview(data(), cde_value, ace_value, auto, k)

        def on_rows(reason_map, reason, current):
            ids = row_ids(data(), reason_map, reason)  # keep the row in view when it still qualifies
            return gr.Dropdown(choices=ids, value=current if current in ids else (ids[0] if ids else None))

        def on_explain(rap_id, reason_map, cde_value, ace_value):
            try:
                return explain_row(data(), rap_id, reason_map, cde_value, ace_value)
            except ValueError as error:
                raise gr.Error(str(error)) from error

        def on_score(picture, q, a, cde_value, ace_value, progress=gr.Progress()):
            try:
                return score_sample(data(), picture, q, a, cde_value, ace_value, progress=progress)
            except ValueError as error:
                raise gr.Error(str(error)) from error

        timer = gr.Timer(2.0, active=True)

        def on_poll(cde_value, ace_value, auto, k):
            if loader.data is None:
                return [f"⏳ {loader.status}", gr.Timer(active=loader.error is None)] + [gr.skip()] * 5
            return ["", gr.Timer(active=False), gr.Slider(maximum=max(len(loader.data.scored), int(k))),
                    *overview(loader.data, cde_value, ace_value, auto, k)]

        poll_outputs = [status, timer, drm_k, *overview_outputs]
        timer.tick(on_poll, selection_inputs, poll_outputs, show_progress="hidden")
        demo.load(on_poll, selection_inputs, poll_outputs, api_name="status")
        for slider in selection_inputs:
            slider.change(on_overview, selection_inputs, overview_outputs, api_name=False, show_progress="hidden")
        gr.Button("Re-select", visible=False).click(on_overview, selection_inputs, overview_outputs,
                                                    api_name="overview")
        reasons.change(on_rows, [reasons, reason_filter, row_pick], row_pick, api_name=False)
        reason_filter.change(on_rows, [reasons, reason_filter, row_pick], row_pick, api_name="rows")
        # Both run the one loaded model (ACE swaps a layer's attention in place): one at a time.
        row_pick.change(on_explain, [row_pick, reasons, cde, ace],
                        [image, about, rollouts, summary, attention, attention_caption], api_name="explain",
                        concurrency_id="model", concurrency_limit=1)
        go.click(on_score, [upload, question, answer, cde, ace],
                 [scored_about, scored_rollouts, scored_summary, scored_attention, scored_caption], api_name="score",
                 concurrency_id="model", concurrency_limit=1)
    return demo


def make_parser():
    """The flags of `rap-hf demo` and `spaces_demo/app.py`: the fields of `DemoConfig`."""
    from .cli_args import ConfigArgumentParser

    return ConfigArgumentParser(DemoConfig, config_types=(), prog="rap-hf demo", description=__doc__.split("\n\n")[0])


def parse_args(argv: Sequence[str] | None = None) -> DemoConfig:
    """argv (sys.argv[1:] when None) -> `DemoConfig`; unset dataset and model come from $RAP_DATASET
    and $RAP_MODEL (a Space sets them as variables)."""
    (config,) = make_parser().parse_args_and_config(argv)
    if config.dataset is None:
        config.dataset = os.environ.get("RAP_DATASET")
    if config.model is None:
        config.model = os.environ.get("RAP_MODEL")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    loader = Loader(config.dataset, config.model)
    build_demo(loader).launch(server_name=config.host, server_port=config.port)
    return 0
