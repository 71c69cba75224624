"""The Space's handlers, wired to the page's components.

Each handler calls a function of `views` with the loaded `DemoData`; until the data is loaded, the
page polls the `Loader` and shows its progress. Errors in what the user asked for (a row that does
not exist, a sample without an image) are shown on the page as `gradio.Error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import DemoData, Loader
from .views import explain_row, overview, row_ids, score_sample

if TYPE_CHECKING:
    from .layout import Page


def wire_events(blocks, loader: Loader, page: Page) -> None:
    """Connect the components of `page` to their handlers, inside `blocks` (the page's
    `gradio.Blocks`, open): the handlers read the data `loader` provides."""
    import gradio as gr

    tab, explorer, sample, reasons = page.overview, page.explorer, page.score, page.reasons

    def data() -> DemoData:
        if loader.data is None:
            raise gr.Error(f"Still preparing the data: {loader.status}")
        return loader.data

    selection_inputs = [tab.cde, tab.ace, tab.drm_auto, tab.drm_k]
    overview_outputs = [tab.headline, tab.counts, tab.plot, reasons]

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

    poll_outputs = [page.status, timer, tab.drm_k, *overview_outputs]
    timer.tick(on_poll, selection_inputs, poll_outputs, show_progress="hidden")
    blocks.load(on_poll, selection_inputs, poll_outputs, api_name="status")
    for slider in selection_inputs:
        slider.change(on_overview, selection_inputs, overview_outputs, api_name=False, show_progress="hidden")
    gr.Button("Re-select", visible=False).click(on_overview, selection_inputs, overview_outputs,
                                                api_name="overview")
    rows_inputs = [reasons, explorer.reason_filter, explorer.row_pick]
    reasons.change(on_rows, rows_inputs, explorer.row_pick, api_name=False)
    explorer.reason_filter.change(on_rows, rows_inputs, explorer.row_pick, api_name="rows")
    # Both run the one loaded model (ACE swaps a layer's attention in place): one at a time.
    explorer.row_pick.change(on_explain, [explorer.row_pick, reasons, tab.cde, tab.ace],
                             [explorer.image, explorer.about, explorer.rollouts, explorer.summary, explorer.attention,
                              explorer.attention_caption], api_name="explain",
                             concurrency_id="model", concurrency_limit=1)
    sample.go.click(on_score, [sample.upload, sample.question, sample.answer, tab.cde, tab.ace],
                    [sample.about, sample.rollouts, sample.summary, sample.attention, sample.caption], api_name="score",
                    concurrency_id="model", concurrency_limit=1)
