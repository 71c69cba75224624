"""Executors of the processes a launcher starts: this one process, or the ranks of `accelerate
launch` / torchrun (`RankExecutor`, the `processes` engine).

Past the start (the main process takes the output's lock; every rank loads its model and scores a
row; the main process prepares; a broadcast after each step tells every rank the outcome), ranks
coordinate through the files alone: the main process waits for the others' shard records, checks
every shard, then merges. No collective call waits on a rank that is still generating: a barrier
there would time out (10 to 30 min by default) whenever ranks finish far apart, which long rollouts
make common.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .executor import Executor, say_assignment, score_in_process
from .job import ShardedScoring
from .shards import Shard, describe_shards, split_by_node

_POLL_SECONDS = 1.0


def process_state(cpu: bool | None = None):
    """`accelerate.PartialState` for this process, on GPU or CPU.

    On CPU, `PartialState()` never joins the process group that `torchrun` / `accelerate launch
    --multi_gpu` set up: each process would believe it is rank 0 of 1 and score every row. Created
    with `cpu=True` it joins with gloo. `cpu`: None means "when there is no GPU"; pass True for a
    CPU run on a GPU machine (`--device cpu`), where NCCL would want one GPU per rank.

    The group's only collectives are start-up barriers, where a rank may wait while the main process
    downloads or converts a large dataset: hence a timeout of hours, not torch's 10 (NCCL) to 30 min.
    """
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available() if cpu is None else cpu, timeout=timedelta(hours=6))


class RankExecutor(Executor):
    """This process as one rank of `state` (one process of one, or a rank of `accelerate launch` /
    torchrun). What the main process decides (the output is complete; another run holds it:
    `OutputBusy`; other settings: `SettingsMismatch`) reaches every rank by broadcast and is raised on
    each, so no rank is left waiting and all end alike."""

    name = "processes"
    help = ("this process, --num-proc local workers, or the ranks of accelerate launch / torchrun")

    def __init__(self, state=None):
        self.state = state or process_state()

    @classmethod
    def from_arguments(cls, args, state) -> Executor:
        if args.num_proc and args.num_proc > 1:
            if state.num_processes > 1:
                raise ValueError("--num-proc starts local workers itself: leave it out under accelerate launch / "
                                 "torchrun")
            from .local import LocalExecutor

            return LocalExecutor(args.num_proc)
        return cls(state)

    @property
    def rank(self) -> int:
        return self.state.process_index

    @property
    def world_size(self) -> int:
        return self.state.num_processes

    @property
    def device_rank(self) -> int | None:
        """The local rank picks this rank's GPU; one process uses the current device."""
        return self.state.local_process_index if self.world_size > 1 else None

    @property
    def is_main_process(self) -> bool:
        return self.state.is_main_process

    def agree(self, decide) -> Any:
        """`decide()` on the main process, its result (or the exception it raised) on every rank, by one
        broadcast; raised on every rank if it was an exception."""
        outcome: object = None
        if self.is_main_process:
            try:
                outcome = decide()
            except Exception as error:
                outcome = error
        if self.world_size > 1:
            import torch.distributed as dist

            box = [outcome]
            dist.broadcast_object_list(box, src=0)
            outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def check_start(self, job: ShardedScoring) -> None:
        job.check_start(self.device_rank)

    def shards_to_score(self, job: ShardedScoring) -> list[Shard]:
        job.check_manifest(self.rank)
        # Every rank splits the same list: the snapshot is taken before anyone writes.
        missing = job.missing()
        self.state.wait_for_everyone()
        return missing

    def score(self, job: ShardedScoring, missing: list[Shard]) -> None:
        mine = split_by_node(missing, self.rank, self.world_size)
        if self.world_size > 1:
            say_assignment(self.rank, self.world_size, mine, missing)
        score_in_process(job, mine, rank=self.rank, world_size=self.world_size, device_rank=self.device_rank)
        if self.is_main_process:  # the others end here: their shards are on disk
            wait_for_shards(job)


def wait_for_shards(job: ShardedScoring, poll_seconds: float = _POLL_SECONDS) -> None:
    """Block until every shard of `job` is finished (other ranks write theirs)."""
    said = False
    while missing := job.missing():
        if not said:
            print(f"Waiting for {describe_shards(missing)} from the other ranks", file=sys.stderr, flush=True)
            said = True
        time.sleep(poll_seconds)
