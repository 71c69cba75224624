"""Stage 7 of the study: its Hub repositories, written as the folders `push_subset` and
`push_checkpoint` would upload (nothing reaches the Hub): the RAP subset and the first RAP checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..config import RAPConfig
from .config import QuickstartConfig
from .subsets import Subsets


def write_hub_trees(config: QuickstartConfig, subsets: Subsets, rap_config: RAPConfig,
                    checkpoints: dict[str, list[Path]], out: Path) -> dict[str, str | None]:
    """The subset tree (`out/hub/subset`) and the model tree (`out/hub/model`, with the first RAP
    checkpoint's held-out results): the report's `hub` section, where each tree was written."""
    from ..hub import push_checkpoint, push_subset

    hub = {}
    subset_id, model_id = f"{config.hub_prefix}-subset", f"{config.hub_prefix}-model"
    for tree in ("subset", "model"):  # an earlier run's trees: rewritten, never mixed with this one's
        shutil.rmtree(out / "hub" / tree, ignore_errors=True)
    if subsets.rap.report.kept:  # an empty subset is not published (push_subset refuses it)
        hub["subset"] = str(push_subset(subsets.rap, subset_id, local_dir=out / "hub" / "subset",
                                        source_dataset=config.dataset, scorer=rap_config,
                                        scorer_model=config.model))
    else:
        hub["subset"] = None
    if checkpoints["rap"]:
        summary = json.loads((out / "eval" / "rap-seed0" / "summary.json").read_text())
        hub["model"] = str(push_checkpoint(checkpoints["rap"][0], model_id, local_dir=out / "hub" / "model",
                                           eval_results=summary, base_model=config.model,
                                           training_dataset=subset_id))
    return hub
