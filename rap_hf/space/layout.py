"""The Space's page: an introduction, a status line and three tabs, one builder per tab.

`build_demo` lays the tabs out in `gradio.Blocks` and hands their components to `events.wire_events`,
which connects them to the handlers. Gradio is imported when the page is built, so importing the
Space's modules needs no gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..selection import REASONS
from .data import Loader, opening_values
from .events import wire_events
from .views import ALL_REASONS

INTRO = """# RAP: which training rows teach a vision-language model to look?
RAP (*Truth in the Few*, arXiv 2506.04755) scores every image+question row with the untrained model
before GRPO and keeps the few that need the image. **CDE** samples answers with and without the
image: D = acc_image - acc_text must exceed lambda_c, otherwise the text alone answers it
(*language prior*). **ACE** drops rows whose reasoning pours its attention into one empty token
(psi > lambda_a). **DRM** swaps rows every rollout already solves (*trivial*: no GRPO signal) for the
hardest ones that still have some signal."""

ROLLOUT_HEADERS = ("condition", "#", "correct", "formatted", "response")
ATTENTION_LABEL = "ACE: the reasoning, shaded by attention received"


@dataclass
class OverviewTab:
    """The thresholds to move, and the counts and histograms they give."""

    cde: Any
    ace: Any
    drm_auto: Any
    drm_k: Any
    headline: Any
    counts: Any
    plot: Any


@dataclass
class ExplorerTab:
    """A row picked by reason, and everything about it."""

    reason_filter: Any
    row_pick: Any
    image: Any
    about: Any
    summary: Any
    rollouts: Any
    attention: Any
    attention_caption: Any


@dataclass
class ScoreTab:
    """An uploaded sample, and how the loaded model scores and decides it."""

    upload: Any
    question: Any
    answer: Any
    go: Any
    about: Any
    summary: Any
    rollouts: Any
    attention: Any
    caption: Any


@dataclass
class Page:
    """The components the handlers read and write: the status line, the reasons of the current
    selection ({rap_id: reason}, shared by the tabs) and the three tabs."""

    status: Any
    reasons: Any
    overview: OverviewTab
    explorer: ExplorerTab
    score: ScoreTab


def overview_tab(opening: tuple[float, float, bool, int]) -> OverviewTab:
    """The Overview tab, its controls at `opening` (lambda_c, lambda_a, DRM size automatic, k)."""
    import gradio as gr

    cde_start, ace_start, auto_start, k_start = opening
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
    return OverviewTab(cde, ace, drm_auto, drm_k, headline, counts, plot)


def explorer_tab() -> ExplorerTab:
    """The Explorer tab: a reason filter, a row picker and the picked row."""
    import gradio as gr

    with gr.Tab("Explorer", id="explorer"):
        with gr.Row():
            reason_filter = gr.Dropdown([ALL_REASONS, *REASONS], value=ALL_REASONS, label="Reason")
            # Choices arrive with the data; a typed or API-given id is checked by the handler.
            row_pick = gr.Dropdown([], label="Row (rap_id)", elem_id="row-pick", allow_custom_value=True)
        with gr.Row():
            image = gr.Image(type="pil", label="Image", height=240)
            about = gr.Markdown(elem_id="row-about")
        summary = gr.Markdown(elem_id="row-summary")
        rollouts = gr.Dataframe(headers=list(ROLLOUT_HEADERS), label="Rollouts", interactive=False, wrap=True)
        attention = gr.HighlightedText(label=ATTENTION_LABEL, elem_id="attention")
        attention_caption = gr.Markdown(elem_id="attention-caption")
    return ExplorerTab(reason_filter, row_pick, image, about, summary, rollouts, attention, attention_caption)


def score_tab() -> ScoreTab:
    """The Score a sample tab: an image, a question and an answer, and what the model makes of them."""
    import gradio as gr

    with gr.Tab("Score a sample", id="score"):
        with gr.Row():
            upload = gr.Image(type="pil", label="Image", elem_id="upload")
            with gr.Column():
                question = gr.Textbox(label="Question", value="What colour is the square?", elem_id="question")
                answer = gr.Textbox(label="Answer", value="red", elem_id="answer")
                go = gr.Button("Score with the loaded model", variant="primary")
        about = gr.Markdown()
        summary = gr.Markdown(elem_id="score-summary")
        rollouts = gr.Dataframe(headers=list(ROLLOUT_HEADERS), label="Rollouts", interactive=False, wrap=True)
        attention = gr.HighlightedText(label=ATTENTION_LABEL)
        caption = gr.Markdown()
    return ScoreTab(upload, question, answer, go, about, summary, rollouts, attention, caption)


def build_demo(loader: Loader):
    """The Gradio Blocks of the Space, over the data `loader` provides."""
    import gradio as gr

    with gr.Blocks(title="RAP: Reasoning Activation Potential") as demo:
        gr.Markdown(INTRO)
        status = gr.Markdown(elem_id="status")
        reasons = gr.State({})
        # A saved selection opens at its own thresholds (read from its files now, before its rows load).
        page = Page(status, reasons, overview_tab(opening_values(loader.dataset)), explorer_tab(), score_tab())
        wire_events(demo, loader, page)
    return demo
