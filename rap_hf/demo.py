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

This module holds the command line (`make_parser`, `parse_args`, `main`); the Space's pieces live in
`rap_hf.space` (`data`: the rows and their loading, `views`: what the tabs show, `layout` and
`events`: the page) and are importable from here as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .config import DemoConfig
from .space.data import SELECT_COLUMNS, DemoData, Loader, opening_values, saved_selection
from .space.layout import INTRO, build_demo
from .space.views import (ALL_REASONS, attention_view, decide_among, explain_row, first_image, overview,
                          rollout_table, row_ids, row_summary, run_selection, score_sample, selection_for)

__all__ = ["ALL_REASONS", "INTRO", "SELECT_COLUMNS", "DemoData", "Loader", "attention_view", "build_demo",
           "decide_among", "explain_row", "first_image", "main", "make_parser", "opening_values", "overview",
           "parse_args", "rollout_table", "row_ids", "row_summary", "run_selection", "saved_selection",
           "score_sample", "selection_for"]


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
    """Serve the Space with the flags in `argv` (`Loader` and `build_demo` are looked up in this module)."""
    config = parse_args(argv)
    loader = Loader(config.dataset, config.model)
    build_demo(loader).launch(server_name=config.host, server_port=config.port)
    return 0
