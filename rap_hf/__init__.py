"""rap-hf: RAP ("Reasoning Activation Potential") data selection for vision-language RL.

Public names are imported lazily, so `import rap_hf` stays fast and loads torch, transformers
or datasets only when a function that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "RAPConfig": "rap_hf.config",
    "SelectionConfig": "rap_hf.config",
    "EvalConfig": "rap_hf.config",
    "DemoConfig": "rap_hf.config",
    "select": "rap_hf.selection",
    "Selection": "rap_hf.selection",
    "RAPScorer": "rap_hf.scoring.scorer",
    "CDEScorer": "rap_hf.scoring.scorer",
    "ACEScorer": "rap_hf.scoring.scorer",
    "LogitCDEScorer": "rap_hf.scoring.scorer",
    "Scorer": "rap_hf.scoring.scorer",
    "ScoringStep": "rap_hf.scoring.step",
    "to_rap_format": "rap_hf.data.conversion",
    "CANONICAL_COLUMNS": "rap_hf.data.canonical",
    "to_trl": "rap_hf.data.exporters",
    "to_easyr1": "rap_hf.data.exporters",
    "to_verl": "rap_hf.data.exporters",
    "make_visual_world": "rap_hf.data.synthetic",
    "build_tiny_vlm": "rap_hf.testing",
    "extract_answer": "rap_hf.verify",
    "is_correct": "rap_hf.verify",
    "is_formatted": "rap_hf.verify",
    "build_conversation": "rap_hf.prompts",
    "FORMAT_PROMPT": "rap_hf.prompts",
    "RAPGRPOTrainer": "rap_hf.training",
    "RAPGRPOConfig": "rap_hf.training",
    "ReplacementSampler": "rap_hf.training",
    "evaluate_model": "rap_hf.evaluation",
    "push_subset": "rap_hf.hub",
    "push_checkpoint": "rap_hf.hub",
    "push_space": "rap_hf.hub",
}

# Submodules reachable as attributes, e.g. `rap_hf.baselines.random_subset`.
_SUBMODULES = ("baselines", "data", "rollouts", "scoring", "selection", "testing", "verify", "prompts", "rewards",
               "training", "evaluation", "metrics", "hub", "distributed")

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from .config import DemoConfig, EvalConfig, RAPConfig, SelectionConfig
    from .selection import Selection, select
    from .scoring.scorer import ACEScorer, CDEScorer, LogitCDEScorer, RAPScorer, Scorer
    from .scoring.step import ScoringStep
    from .data.exporters import to_easyr1, to_trl, to_verl
    from .data.canonical import CANONICAL_COLUMNS
    from .data.conversion import to_rap_format
    from .data.synthetic import make_visual_world
    from .prompts import FORMAT_PROMPT, build_conversation
    from .testing import build_tiny_vlm
    from .training import RAPGRPOConfig, RAPGRPOTrainer, ReplacementSampler
    from .evaluation import evaluate_model
    from .hub import push_checkpoint, push_space, push_subset
    from .verify import extract_answer, is_correct, is_formatted


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"rap_hf.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rap_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
