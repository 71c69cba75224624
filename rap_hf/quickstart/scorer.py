"""Stage 2 of the study: the scorer, which is also the base model every arm trains from.

`--model` names one; otherwise the embedded tiny scorer (shipped with the package, or warmed up here
with `--warm-up` or a recipe it was not built from, then cached).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .clock import StageClock
from .config import QuickstartConfig


def count_parameters(model_ref: str | os.PathLike) -> int | None:
    """Parameters of a model folder or Hub id, from its config on the meta device (nothing loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    try:
        config = AutoConfig.from_pretrained(str(model_ref))
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
    except (OSError, ValueError):
        return None
    return sum(p.numel() for p in model.parameters())


def prepare_scorer(config: QuickstartConfig, clock: StageClock) -> tuple[str, dict[str, Any]]:
    """The scorer and base model of the study: `config.model`, or the embedded scorer (the one shipped
    with the package; with `--warm-up`, or a recipe it was not built from, warmed up here on first use
    and then loaded from the cache)."""
    if config.model is not None:
        clock.notes["warm-up"] = "skipped: --model given"
        return config.model, {"model": config.model, "parameters": count_parameters(config.model), "warm_up": None,
                              "source": "given (--model)"}
    from ..embedded import INFO_FILE, embedded_scorer, scorer_dir, shipped_scorer

    recipe = config.recipe()
    shipped = None if config.warm_up else shipped_scorer(recipe)
    cached = shipped is None and scorer_dir(recipe).exists()
    path = shipped or embedded_scorer(recipe, device=config.device, warm_up=True)  # built here (or cached)
    recorded = json.loads((path / INFO_FILE).read_text())
    if shipped is not None:
        source = "shipped with the package"
        clock.notes["warm-up"] = f"skipped: the scorer shipped with the package ({path}); --warm-up builds it here"
    else:
        source = "warmed up here" + (" earlier (cached)" if cached else "")
        clock.notes["warm-up"] = (f"loaded from the cache, {scorer_dir(recipe)}" if cached
                                  else f"cached in {scorer_dir(recipe)}")
    info = {
        "model": str(path),
        "architecture": "Qwen2.5-VL (build_tiny_vlm)",
        "parameters": count_parameters(path),
        "source": source,
        "warm_up": {
            "steps": recipe.warm_up_steps,
            "vision_steps": recipe.vision_steps,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "seconds": recorded.get("warm_up_seconds"),
            "cached": shipped is not None or cached,
        },
        # Measured on held-out rows when it was built (`python -m rap_hf.embedded`), if it was.
        "skills_heldout": recorded.get("skills"),
    }
    return str(path), info

