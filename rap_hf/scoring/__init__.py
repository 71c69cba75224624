"""RAP scoring: steps (rollout CDE, ACE, logit-CDE, or your own) run by `datasets.map`-compatible scorers.

Names are imported lazily: the pure rules (`rap_hf.scoring.cde`, `adaptive`), which selection
uses, load without torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ACEScorer": "scorer", "CDEScorer": "scorer", "LogitCDEScorer": "scorer", "RAPScorer": "scorer",
    "Scorer": "scorer", "rap_steps": "scorer",
    "AttentionConfidence": "ace_step", "LogitCDE": "logit_cde", "RolloutCDE": "rollout_cde",
    "ScoringModel": "model", "ScoringStep": "step", "StepContext": "step",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .ace_step import AttentionConfidence
    from .logit_cde import LogitCDE
    from .model import ScoringModel
    from .rollout_cde import RolloutCDE
    from .scorer import ACEScorer, CDEScorer, LogitCDEScorer, RAPScorer, Scorer, rap_steps
    from .step import ScoringStep, StepContext


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rap_hf.scoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
