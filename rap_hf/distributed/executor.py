"""The one order every executor of a sharded scoring job follows, and the registry behind `--engine`.

`Executor.run` is written once (as datatrove's executor base writes its order once and its local,
Slurm and Ray executors only launch):

1. the main process takes the output's lock and decides: already complete, work to do, or only the
   merge left (a run killed while merging); the decision reaches every process (`agree`);
2. where there is work, a start check loads the model and scores one row, writing nothing, so a bad
   model or device fails in one line before any shard folder is touched (`check_start`);
3. the main process prepares (resume or start afresh, damaged shards deleted, the manifest written);
4. every process takes the same snapshot of the missing shards (`shards_to_score`);
5. the missing shards are scored (`score`: the one hook that really differs);
6. the main process merges and summarises; every process releases what it holds (`close`).

A subclass overrides only the hooks that differ: ranks agree by broadcast, local workers and Ray
tasks score the shards in other processes. `registry.py` lists them: its names are `rap-hf score
--engine`'s choices.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ..retry import RunStopped
from .errors import IncompleteRun
from .job import ShardedScoring
from .shards import Shard, describe_shards
from .summary import ScoringSummary

if TYPE_CHECKING:
    from ..cli import ScoreArguments

_COMPLETE = "complete"


class Executor:
    """Runs a `ShardedScoring` job: `run` holds the order, the hooks below what differs.

    Subclasses set `name` (its `--engine` value) and `help`, and build themselves from the score
    command's arguments in `from_arguments`.
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    @classmethod
    def from_arguments(cls, args: ScoreArguments, state) -> Executor:
        """The executor `rap-hf score --engine NAME` runs, from the command's arguments and this
        process's `accelerate.PartialState` (`state`)."""
        return cls()

    # ----------------------------------------------------------------- the hooks
    @property
    def is_main_process(self) -> bool:
        """Whether this process prepares, merges and reports (one process of all that run the job)."""
        return True

    def agree(self, decide: Callable[[], Any]) -> Any:
        """`decide()` on the main process, its result (or the exception it raised) on every process."""
        return decide()

    def check_start(self, job: ShardedScoring) -> None:
        """Load the model and score one row where the shards will be scored, writing nothing."""
        job.check_start()

    def shards_to_score(self, job: ShardedScoring) -> list[Shard]:
        """One snapshot of the missing shards, taken before anyone writes."""
        return job.missing()

    def score(self, job: ShardedScoring, missing: list[Shard]) -> None:
        """Score the `missing` shards (each with `job.score_one`, wherever it runs); on the main
        process, return once all of them are on disk, or raise `IncompleteRun` naming those that are not."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor started (a cluster connection); called however the run ends."""

    # ----------------------------------------------------------------- the order, once
    def run(self, job: ShardedScoring, *, overwrite: bool = False) -> ScoringSummary | None:
        """Score every missing shard of `job`, then merge. Returns the summary on the main process,
        None on the others (their shards are on disk)."""
        start = time.perf_counter()
        try:
            # The main process alone looks at the output and takes its lock, before any model loads.
            decision = self.agree(lambda: _COMPLETE if job.start(overwrite=overwrite) else (
                overwrite or bool(job.missing())))
            if decision == _COMPLETE:
                return job.complete_summary(time.perf_counter() - start) if self.is_main_process else None
            # Nothing is written before the model has loaded and scored a row; a run left with only the
            # merge to do (killed while merging) loads no model.
            if decision:
                self.check_start(job)
            self.agree(lambda: job.prepare(overwrite=overwrite))
            missing = self.shards_to_score(job)
            self.score(job, missing)
            if not self.is_main_process:
                return None
            merged = job.merge()
            return job.summary(merged, time.perf_counter() - start, sum(s.rows for s in missing))
        finally:
            job.finish()
            self.close()


def score_in_process(job: ShardedScoring, shards: list[Shard], *, rank: int = 0, world_size: int = 1,
                     device_rank: int | None = None, keep_going: Callable[[], bool] | None = None) -> int:
    """Score `shards` in order in this process, skipping any already finished, with a progress bar;
    returns the rows scored. `device_rank` picks `cuda:{device_rank}` (the local rank; None: the
    current device); `keep_going()`, asked before each shard, stops the loop when it returns False."""
    from tqdm.auto import tqdm

    label = f"rank {rank}/{world_size}" if world_size > 1 else "RAP scoring"
    start, done = time.perf_counter(), 0
    with tqdm(total=sum(s.rows for s in shards), desc=label, unit="row", position=rank if world_size > 1 else None,
              dynamic_ncols=True) as bar:
        for shard in shards:
            if keep_going is not None and not keep_going():
                break
            if job.finished(shard):
                bar.update(shard.rows)
                continue
            try:
                job.score_one(shard, bar.update, device_rank)
            except RunStopped as stop:  # e.g. no server answers: what is finished stays, the rest is named
                still = job.missing()
                raise IncompleteRun(f"{stop}; {describe_shards(still)} of {len(job.shards())} still to score",
                                    still) from None
            done += shard.rows
    if world_size > 1:
        elapsed = time.perf_counter() - start
        print(f"{label}: scored {done} rows in {elapsed:.1f}s ({done / elapsed if elapsed else 0:.2f} rows/s)",
              file=sys.stderr, flush=True)
    return done


def say_assignment(rank: int, world_size: int, mine: list[Shard], missing: list[Shard]) -> None:
    """One line on stderr: which share of the missing shards this rank or worker scores."""
    print(f"rank {rank}/{world_size}: {len(mine)} of {len(missing)} missing shards ({sum(s.rows for s in mine)} rows)",
          file=sys.stderr, flush=True)
