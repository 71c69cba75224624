"""`Scorer.map`'s cache files: named by the scorer, and checked before `datasets` reuses them.

`datasets.map(num_proc=N)` writes one cache file per worker and, when run again with the same
fingerprint, reuses the files of the workers that finished: an interrupted map resumes (a worker
that dies raises "One of the subprocesses has abruptly died"). It loads those files unchecked,
though: a truncated file fails the whole map, and a file holding other rows would be merged. So the
scorer names its cache files itself and, before the map, opens each one it would reuse, checks it
holds exactly the rows of its worker's block (count and `rap_id`s, in order) and deletes it
otherwise, so that block is scored again.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)


def scores_cache_file(ds, fingerprint: str) -> str | None:
    """Where `Scorer.map` caches the scores of `ds`: beside the dataset's own cache files (None for
    a dataset held in memory, which `datasets` does not cache)."""
    files = getattr(ds, "cache_files", None) or []
    if not files:
        return None
    return str(Path(files[0]["filename"]).parent / f"rap-scores-{fingerprint}.arrow")


def discard_damaged(ds, cache_file: str) -> list[str]:
    """Delete each cache file of `cache_file`'s map (one per worker, `_{rank:05d}_of_{n:05d}`, or the
    single file) that does not hold exactly its block of `ds`'s rows; returns why, one line each."""
    from datasets import Dataset

    path = Path(cache_file)
    pattern = re.compile(re.escape(path.stem) + r"(?:_(\d{5})_of_(\d{5}))?" + re.escape(path.suffix) + "$")
    ids: list[str] | None = None
    discarded = []
    for candidate in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        match = pattern.fullmatch(candidate.name)
        if not match:
            continue
        rank, workers = (int(match[1]), int(match[2])) if match[1] else (0, 1)
        if ids is None:
            ids = [str(i) for i in ds["rap_id"]]
        start, stop = _block(len(ids), rank, workers)
        try:
            found = [str(i) for i in Dataset.from_file(str(candidate))["rap_id"]]
        except Exception as error:  # truncated or not an Arrow file at all
            why = f"unreadable ({type(error).__name__})"
        else:
            why = None if found == ids[start:stop] else (
                f"holds {len(found)} rows, not rows {start}-{stop - 1} of the input")
        if why:
            candidate.unlink()
            discarded.append(f"{candidate.name}: {why}")
            logger.warning("Scores cache file %s is damaged, %s: deleted, its rows will be scored again",
                           candidate, why)
    return discarded


def _block(rows: int, rank: int, workers: int) -> tuple[int, int]:
    """Rows of worker `rank`, as `Dataset.shard(contiguous=True)` splits them."""
    per_worker, extra = divmod(rows, workers)
    start = rank * per_worker + min(rank, extra)
    return start, start + per_worker + (1 if rank < extra else 0)
