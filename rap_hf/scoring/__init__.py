"""RAP scoring: rollout CDE, ACE and logit-CDE as `datasets.map`-compatible scorers."""

from .scorer import ACEScorer, CDEScorer, LogitCDEScorer, RAPScorer

__all__ = ["ACEScorer", "CDEScorer", "LogitCDEScorer", "RAPScorer"]
