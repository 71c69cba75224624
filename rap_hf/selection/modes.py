"""`select`: CDE -> ACE -> DRM over the score columns (docs/method.md, "Order"), in its two modes.

Each mode is a rule object (`PaperMode`, `ReferenceMode`): from the rows' `Outcomes` it decides a
reason per row, the settings the report shows and the figures it computed on the way; the base class
hands them to `selection_from_reasons`, where every selection rule ends.
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..config import SelectionConfig
from ..rules import discrepancy
from .from_reasons import selection_from_reasons
from .outcomes import Outcomes, read_outcomes
from .reasons import REASON_CODES, REASONS
from .result import Selection


# What the report says when paper mode's ACE step had nothing to read.
ACE_NOT_APPLIED = ("not applied: the rows carry no rap_ace (scored without ACE, e.g. through inference servers "
                   "without --local-model)")

class ModeDecision(NamedTuple):
    """What a mode decided: each row's reason code, the settings and the figures for the report."""

    reasons: np.ndarray  # int8 codes of REASON_CODES, one per row
    thresholds: dict[str, Any]
    means: dict[str, Any]


class SelectionMode(ABC):
    """A mode of `select`: decides each row's reason from the rows' outcomes under a `SelectionConfig`."""

    name: ClassVar[str]

    def __init__(self, config: SelectionConfig):
        self.config = config

    @abstractmethod
    def decide(self, outcomes: Outcomes, has_ace: bool) -> ModeDecision:
        """The reasons of the rows whose `outcomes` are given (`has_ace`: the rows carry rap_ace)."""

    def __call__(self, scored) -> Selection:
        """The `Selection` of the scored rows: this mode's reasons, through `selection_from_reasons`."""
        outcomes = read_outcomes(scored)
        decision = self.decide(outcomes, has_ace="rap_ace" in scored.column_names)
        return selection_from_reasons(scored, decision.reasons, mode=self.config.mode, counted=REASONS,
                                      thresholds=decision.thresholds, means=decision.means, outcomes=outcomes,
                                      config=self.config, fingerprint_parts=("select", self.config.to_dict()))


class PaperMode(SelectionMode):
    """Paper mode (docs/method.md, "CDE", "ACE", "DRM"): keep D > lambda_c; drop psi > lambda_a
    as attention-biased; DRM swaps the trivial rows for the hardest rows left out."""

    name = "paper"

    def thresholds(self, drm_k: int) -> dict[str, Any]:
        config = self.config
        return {"cde_threshold": config.cde_threshold, "ace_threshold": config.ace_threshold,
                "use_ace": config.use_ace, "drm_k": drm_k}

    def decide(self, o: Outcomes, has_ace: bool) -> ModeDecision:
        config, m = self.config, o.num_rollouts
        reasons = np.full(o.size, REASON_CODES["error"], dtype=np.int8)
        if m == 0:
            return ModeDecision(reasons, self.thresholds(0), {"mean_acc_image": None, "mean_acc_text": None})
        acc_image, acc_text = o.image_correct / m, o.text_correct / m
        # D from the counts, divided once (see `discrepancy`: subtracting the accuracies would let
        # 0.8 - 0.2 = 0.6000000000000001 pass lambda_c = 0.6). Reference mode keeps the released
        # script's subtraction on purpose.
        cde = discrepancy(o.image_correct, o.text_correct, m)
        valid = o.valid
        cde_pass = valid & (cde > config.cde_threshold)
        if o.partial and has_ace and not config.use_ace:
            raise ValueError(
                "these adaptive scores stopped rows using ACE; selecting them with use_ace=False would not match "
                "the full draw. Select with ACE on (--use-ace, use_ace=True) and the same thresholds, or score "
                "again without adaptive rollouts (`rap-hf score --no-adaptive`, adaptive=False)."
            )
        use_ace, not_applied = config.use_ace, None
        if use_ace and not has_ace:
            if not config._ace_by_default:
                raise ValueError("ACE is on (use_ace) but the rows have no rap_ace column: score with ACE "
                                 "(`rap-hf score --compute-ace`, RAPScorer's compute_ace=True; through inference "
                                 "servers, with --local-model) or select without it (--no-use-ace, use_ace=False)")
            use_ace, not_applied = False, ACE_NOT_APPLIED
        if use_ace:
            flagged = valid & (o.ace > math.log(config.ace_threshold))  # NaN compares False: not flagged
        else:
            flagged = np.zeros(o.size, dtype=bool)
        subset = cde_pass & ~flagged
        trivial = subset & (o.image_correct == m)
        k = int(trivial.sum()) if config.drm_k is None else config.drm_k
        # Replacements: rows outside the subset that still give GRPO a signal (difficulty in [1/M, 1))
        # and that ACE does not flag, hardest first, then larger D, then rap_id.
        candidates = np.flatnonzero(valid & ~cde_pass & ~flagged & (o.image_correct >= 1) & (o.image_correct < m))
        order = np.lexsort((o.rap_id[candidates].astype(str), -cde[candidates], o.image_correct[candidates]))
        replacements = candidates[order[:k]]

        # Later assignments win: a row's reason follows the stages' precedence (docs/method.md, "Order").
        reasons[valid] = np.where(o.image_correct[valid] == 0, REASON_CODES["unsolvable"],
                                  REASON_CODES["language_prior"])
        reasons[cde_pass & flagged] = REASON_CODES["attention_biased"]
        reasons[subset] = REASON_CODES["kept"]
        reasons[trivial] = REASON_CODES["trivial"]
        reasons[replacements] = REASON_CODES["kept_replacement"]
        means = {
            "mean_acc_image": float(acc_image[valid].mean()) if valid.any() else None,
            "mean_acc_text": float(acc_text[valid].mean()) if valid.any() else None,
            "drm_candidates": int(len(candidates)),
        }
        thresholds = self.thresholds(k)
        if not_applied:
            thresholds.update(use_ace=False, ace=not_applied)
        return ModeDecision(reasons, thresholds, means)


def limr_band(acc: np.ndarray, mean: float) -> np.ndarray:
    """LIMR's similarity to the dataset mean: 1 - (a - mu)^2 / (1 - mu)^2 (1 where mu == 1)."""
    if mean == 1.0:
        return np.ones_like(acc)
    return 1 - (acc - mean) ** 2 / (1 - mean) ** 2


class ReferenceMode(SelectionMode):
    """The released selection script, exactly (docs/method.md, "CDE" and "DRM", reference mode)."""

    name = "reference"

    def thresholds(self) -> dict[str, Any]:
        config = self.config
        return {"core_band": config.ref_core_band, "core_gap": config.ref_core_gap,
                "pool_band": config.ref_pool_band, "pool_gap": config.ref_pool_gap,
                "pool_strong_gap": config.ref_pool_strong_gap, "drm_ratio": config.drm_ratio,
                "drm_seed": config.drm_seed, "use_ace": False}

    def decide(self, o: Outcomes, has_ace: bool) -> ModeDecision:
        config, m = self.config, o.num_rollouts
        if o.partial:
            raise ValueError(
                "these scores come from adaptive rollouts (some rollouts undrawn), which keep paper-mode decisions "
                "exact; reference mode needs every rollout (its dataset means use all of them). Score again without "
                "adaptive rollouts (`rap-hf score --no-adaptive`, adaptive=False), or select in paper mode "
                "(--mode paper)."
            )
        reasons = np.full(o.size, REASON_CODES["error"], dtype=np.int8)
        valid = o.valid
        if m == 0 or not valid.any():
            return ModeDecision(reasons, self.thresholds(),
                                {"mean_acc_image": None, "mean_acc_text": None, "pool": 0, "sampled": 0})
        # Accuracies count reward == 1 (answer and format); computed as the script does, in float64.
        acc_image, acc_text = o.image_strict / m, o.text_strict / m
        mean_image, mean_text = float(np.mean(acc_image[valid])), float(np.mean(acc_text[valid]))
        gap = mean_image - mean_text
        band = limr_band(acc_image, mean_image)
        # The script subtracts the two accuracies (not `discrepancy`'s divided count difference): its
        # floating-point results decide ties at the thresholds, and this mode must keep what it keeps.
        cde = acc_image - acc_text
        core = valid & (band >= config.ref_core_band) & (cde > config.ref_core_gap)
        easy = valid & (o.image_correct == m)  # reward >= 0.9: the answer alone counts here
        right1 = valid & (o.image_correct == 1)
        looser = ((band >= config.ref_pool_band) & ((cde > gap) | (right1 & (cde >= config.ref_pool_gap)))) | (
            right1 & (cde >= config.ref_pool_strong_gap))
        pool = np.flatnonzero(valid & looser & right1).tolist()  # dataset positions, in dataset order
        rng = random.Random()
        rng.seed(config.drm_seed)
        sampled = np.asarray(rng.sample(pool, int(len(pool) * config.drm_ratio)), dtype=np.int64)

        kept = core & ~easy
        replacement = np.zeros(o.size, dtype=bool)
        replacement[sampled] = True
        replacement &= ~kept
        reasons[valid] = np.where(o.image_correct[valid] == 0, REASON_CODES["unsolvable"],
                                  REASON_CODES["language_prior"])
        reasons[easy] = REASON_CODES["trivial"]
        reasons[kept] = REASON_CODES["kept"]
        reasons[replacement] = REASON_CODES["kept_replacement"]
        means = {"mean_acc_image": mean_image, "mean_acc_text": mean_text, "mean_gap": gap,
                 "pool": len(pool), "sampled": int(len(sampled))}
        return ModeDecision(reasons, self.thresholds(), means)


MODES: dict[str, type[SelectionMode]] = {mode.name: mode for mode in (PaperMode, ReferenceMode)}


def select(scored, config: SelectionConfig | None = None, **overrides) -> Selection:
    """Select the high-value rows of a scored dataset: CDE -> ACE -> DRM (docs/method.md, "Order").

    Args:
        scored: Rows with RAP's score columns (the output of `RAPScorer`).
        config: A `SelectionConfig`; `mode="paper"` (default) or `"reference"`.
        **overrides: Fields of `SelectionConfig` to change, e.g. `select(scored, cde_threshold=0.4)`.

    Returns:
        A `Selection` with the kept rows, every row's decision and reason, and the report.
    """
    if config is not None and "use_ace" not in overrides and ("mode" in overrides or config._ace_by_default):
        overrides["use_ace"] = None  # re-derive the mode's default instead of keeping the old mode's
    config = dataclasses.replace(config, **overrides) if config is not None else SelectionConfig(**overrides)
    return MODES[config.mode](config)(scored)
