"""Sharded, resumable scoring across processes, nodes and clusters.

- `job.py`: the job (`ShardedScoring`): the plan of shards, what is finished, the merge.
- `records.py`: the record each finished shard carries, and the check against it.
- `lock.py`: one run per output at a time.
- `executors.py`: ranks under `accelerate launch` / torchrun (`run`), local workers (`run_local`).
- `ray_engine.py`: a Ray cluster (`run_ray`), for many nodes and pre-emptible workers.
"""

from .executors import process_state, run, run_local, split_by_node
from .job import (DEFAULT_SHARD_ROWS, LOCK, MANIFEST, RECORD, IncompleteRun, ScoringError, ScoringSummary,
                  SettingsMismatch, Shard, ShardedScoring, describe_shards)
from .lock import OutputBusy
from .records import ShardRecord

__all__ = [
    "DEFAULT_SHARD_ROWS", "LOCK", "MANIFEST", "RECORD", "IncompleteRun", "OutputBusy", "ScoringError", "ScoringSummary",
    "SettingsMismatch", "Shard", "ShardRecord", "ShardedScoring", "describe_shards", "process_state", "run",
    "run_local", "run_ray", "split_by_node",
]


def __getattr__(name: str):
    if name == "run_ray":  # Ray is an optional dependency: imported only when asked for
        from .ray_engine import run_ray

        return run_ray
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
