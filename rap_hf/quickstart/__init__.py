"""`rap-hf quickstart`: the whole RAP pipeline on the embedded world (or a model and dataset of
your choice), ending with a report that compares RAP against a random subset and the full pool.

Example:
    >>> from rap_hf.quickstart import QuickstartConfig, run_quickstart
    >>> report = run_quickstart(QuickstartConfig(output_dir="rap-quickstart", fast=True))  # doctest: +SKIP
    >>> report["heldout_accuracy"]["rap"], report["heldout_accuracy"]["random"]  # doctest: +SKIP
"""

from .config import FAST_RECIPE, QuickstartConfig
from .pipeline import run_quickstart

__all__ = ["FAST_RECIPE", "QuickstartConfig", "run_quickstart"]
