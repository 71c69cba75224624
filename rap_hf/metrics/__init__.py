"""`evaluate` modules shipped with rap-hf: `answer_accuracy` (boxed-answer accuracy, `rap_hf.verify`),
and `ranking` (AUROC of a score against planted labels, for the quickstart and benchmarks).

Each module is a folder holding `<name>/<name>.py`, the layout `evaluate.load(path)` reads; these
helpers give the path so users need not know where the package is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["answer_accuracy_path", "load_answer_accuracy"]


def answer_accuracy_path() -> str:
    """The folder of the `answer_accuracy` module, for `evaluate.load(answer_accuracy_path())`."""
    return str(Path(__file__).resolve().parent / "answer_accuracy")


def load_answer_accuracy(**load_kwargs: Any):
    """`evaluate.load(answer_accuracy_path(), **load_kwargs)`: the metric, loaded locally (no Hub access)."""
    import evaluate

    return evaluate.load(answer_accuracy_path(), **load_kwargs)
