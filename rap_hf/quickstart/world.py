"""Stage 1 of the study: its rows, the training pool and the held-out rows, in RAP's format.

The embedded visual world by default; a dataset of one's own is converted with `to_rap_format`,
and rows of its pool are held out when it has no held-out split.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from .config import QuickstartConfig

# Held-out rows of a dataset without a held-out split, when heldout_rows is not given.
DEFAULT_HELDOUT = 200


@dataclass
class StudyData:
    """The rows of the study: the training pool and the held-out rows, canonical."""

    pool: Any  # datasets.Dataset
    heldout: Any
    source: str
    info: dict[str, Any] = field(default_factory=dict)


def value_counts(ds, column: str) -> dict[str, int] | None:
    """Rows per value of `column`, sorted by value (None when the rows have no such column)."""
    if column not in ds.column_names:
        return None
    return dict(sorted(collections.Counter(ds[column]).items()))


def load_study_data(config: QuickstartConfig) -> StudyData:
    """The embedded world (pool = the first `score_rows` train rows, held out = its test split), or
    `config.dataset` converted with `to_rap_format`."""
    if config.dataset is None:
        from ..embedded import embedded_world

        recipe = config.recipe()
        world = embedded_world(recipe)
        pool = world["train"].select(range(min(recipe.score_rows, len(world["train"]))))
        heldout = world["test"]
        source = f"embedded visual world ({recipe.world_rows} rows, seed {recipe.world_seed})"
    else:
        pool, heldout = _dataset_splits(config)
        source = config.dataset
    if config.heldout_rows is not None:
        heldout = heldout.select(range(min(config.heldout_rows, len(heldout))))
    if len(pool) == 0 or len(heldout) == 0:
        raise ValueError(f"The study needs rows to select from and to evaluate on; got {len(pool)} pool rows and "
                         f"{len(heldout)} held-out rows from {source}")
    info = {
        "source": source,
        "rows": {"pool": len(pool), "heldout": len(heldout)},
        "planted": {"pool": value_counts(pool, "rap_planted"), "heldout": value_counts(heldout, "rap_planted")},
        "tasks": {"pool": value_counts(pool, "rap_task"), "heldout": value_counts(heldout, "rap_task")},
    }
    return StudyData(pool=pool, heldout=heldout, source=source, info=info)


def _dataset_splits(config: QuickstartConfig):
    from datasets import DatasetDict

    from ..data.io import load_rows
    from ..data.conversion import to_rap_format

    loaded = load_rows(config.dataset)
    splits = loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    if config.train_split not in splits:
        raise ValueError(f"{config.dataset!r} has no split {config.train_split!r} (splits: {', '.join(splits)}); "
                         "choose the pool with --train-split")
    mapping = config.rap_format_kwargs()  # --preset --question --answer --images --id --choices --image-root
    pool = to_rap_format(splits[config.train_split], **mapping)
    if config.heldout_split in splits and config.heldout_split != config.train_split:
        heldout = to_rap_format(splits[config.heldout_split], **mapping)
    else:
        # No held-out split: hold out rows of the pool (seeded), so training never sees them.
        size = config.heldout_rows or min(DEFAULT_HELDOUT, len(pool) // 5)
        if not 0 < size < len(pool):
            raise ValueError(f"{config.dataset!r} has no split {config.heldout_split!r} and too few rows "
                             f"({len(pool)}) to hold {size} out")
        parts = pool.train_test_split(test_size=size, seed=0, shuffle=True)
        pool, heldout = parts["train"], parts["test"]
    if config.pool_rows is not None:
        pool = pool.select(range(min(config.pool_rows, len(pool))))
    return pool, heldout

