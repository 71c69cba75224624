"""Stage 3 of the study: the pool scored with `RAPScorer` (rollout CDE, ACE, difficulty,
logit-CDE), and the pixel bounds that scoring, training and evaluation share.
"""

from __future__ import annotations

from typing import Any

from ..embedded import scorer_skills
from .clock import StageClock
from .config import QuickstartConfig
from .world import StudyData


def image_resolution(config: QuickstartConfig) -> dict[str, int | None]:
    """Pixel bounds for scoring, training and evaluation alike (rows train and are evaluated at the
    resolution they were scored at): the embedded scorer's processor keeps its own small fixed size
    (what its warm-up saw); another model gets the paper's (RAPConfig's defaults)."""
    return {"min_pixels": None, "max_pixels": None} if config.embedded else {}


def score_pool(config: QuickstartConfig, data: StudyData, model: str, clock: StageClock):
    """The pool scored with `RAPScorer` (rollout CDE, ACE, difficulty, logit-CDE), the `RAPConfig`
    it was scored with, and whether the scores came from the cache."""
    if config.embedded:
        from ..embedded import embedded_scored, scored_dir

        recipe = config.recipe()
        cached = scored_dir(recipe).exists()
        scored = embedded_scored(recipe, device=config.device)
        clock.notes["scoring"] = "loaded from the cache" if cached else f"cached in {scored_dir(recipe)}"
        return scored, recipe.rap_config(device=config.device), cached
    from ..config import RAPConfig
    from ..scoring import RAPScorer

    rap_config = RAPConfig(max_new_tokens=config.max_new_tokens_or_default(), device=config.device,
                           **image_resolution(config))
    scorer = RAPScorer(model, rap_config)
    scored = scorer.map(data.pool, batch_size=rap_config.batch_size, desc="Scoring the pool")
    return scored, rap_config, False



def scoring_facts(scored, rap_config, cached: bool) -> dict[str, Any]:
    """What the report's `scorer` section gains once the pool is scored: the scorer's skills (the
    accuracy of its rollouts per task, with the picture and without) and the settings it scored with."""
    return {"skills": scorer_skills(scored),
            "scoring": {"num_rollouts": rap_config.num_rollouts, "max_new_tokens": rap_config.max_new_tokens,
                        "ace_min_rows": rap_config.ace_min_rows, "cached": cached}}
