"""Sharded, resumable scoring across processes, nodes and clusters.

- `job.py`: the job (`ShardedScoring`): the plan of shards, what is finished, the merge.
- `shards.py`, `manifest.py`, `records.py`, `summary.py`, `errors.py`: a shard and its plan; what
  the shards were computed with; the record each finished shard carries and the check against it;
  the run's summary; how a run ends short.
- `lock.py`: one run per output at a time.
- `executor.py`: `Executor`, the one order every executor follows, and its hooks; `registry.py`: the
  executors `rap-hf score --engine` chooses from.
- `ranks.py` (this process or the ranks of `accelerate launch` / torchrun), `local.py` (local worker
  processes), `ray_engine.py` (a Ray cluster, for many nodes and pre-emptible workers).
"""

from .errors import IncompleteRun, ScoringError, SettingsMismatch
from .executor import Executor, score_in_process
from .job import DEFAULT_SHARD_ROWS, LOCK, RECORD, ShardedScoring
from .local import LocalExecutor
from .lock import OutputBusy
from .manifest import MANIFEST
from .ranks import RankExecutor, process_state
from .ray_engine import RayExecutor
from .records import ShardRecord
from .registry import EXECUTORS, engine_help, executor_for, register_executor
from .shards import Shard, describe_shards, split_by_node
from .summary import ScoringSummary

__all__ = [
    "DEFAULT_SHARD_ROWS", "EXECUTORS", "LOCK", "MANIFEST", "RECORD", "Executor", "IncompleteRun", "LocalExecutor",
    "OutputBusy", "RankExecutor", "RayExecutor", "ScoringError", "ScoringSummary", "SettingsMismatch", "Shard",
    "ShardRecord", "ShardedScoring", "describe_shards", "engine_help", "executor_for", "process_state",
    "register_executor", "score_in_process", "split_by_node",
]
