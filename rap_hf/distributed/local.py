"""Local worker processes that this process spawns (`rap-hf score --num-proc N`): rank r on `cuda:r`
when there are GPUs, a share of the cores each otherwise.

Workers are independent: one that dies (killed, out of memory) stops alone, the others finish their
shards, and the run then raises `IncompleteRun` naming the shards still missing; the same call
scores only those. A worker that raises (a model that does not load, a device that is not there)
ends the run with `ScoringError` and its message. Spawned, not forked: a forked child inherits
torch's thread pools (it can hang on CPU) or an initialised CUDA context (it fails on GPU).
"""

from __future__ import annotations

import os
import signal

from .errors import IncompleteRun, ScoringError
from .executor import Executor, say_assignment, score_in_process
from .job import ShardedScoring
from .shards import Shard, describe_shards, split_by_node


class LocalExecutor(Executor):
    """`num_proc` spawned local workers score the missing shards; this process prepares and merges."""

    help = "--num-proc local worker processes"

    def __init__(self, num_proc: int):
        self.num_proc = num_proc

    def check_start(self, job: ShardedScoring) -> None:
        # The workers load the model in their own processes: a start that fails there is reported by
        # `score` (and cleaned up by `cleaned_up_on_failure`) rather than checked here, which would
        # load it once more.
        pass

    def score(self, job: ShardedScoring, missing: list[Shard]) -> None:
        if not missing:
            return
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        errors = context.Queue()
        workers = [context.Process(target=_local_worker, args=(job, missing, rank, self.num_proc, errors))
                   for rank in range(self.num_proc)]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        except BaseException:  # Ctrl-C or SIGTERM: the workers stop too (their finished shards stay)
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
            for worker in workers:
                worker.join()
            raise
        _raise_for_workers(job, workers, errors)


def _raise_for_workers(job: ShardedScoring, workers, errors) -> None:
    """After the workers ended: `ScoringError` with the first error a worker raised, else
    `IncompleteRun` when a worker was stopped (its servers gone) or killed and shards are missing."""
    raised, stopped = {}, {}
    while not errors.empty():
        rank, message, incomplete = errors.get()
        (stopped if incomplete else raised).setdefault(rank, message)
    still = job.missing()
    safe = f"Finished shards are kept in {job.shard_dir}"
    if raised:
        rank, message = min(raised.items())
        left = f"; {describe_shards(still)} still to score" if still else ""
        raise ScoringError(f"worker {rank} failed: {message}{left}. {safe}: fix the cause, then run the same "
                           "command to score only the missing ones.")
    if stopped and still:  # the run stopped for a cause outside it (its servers are gone)
        rank, message = min(stopped.items())
        raise IncompleteRun(f"worker {rank} stopped: {message}", still)
    failed = [f"worker {rank} {_how_it_ended(w.exitcode)}" for rank, w in enumerate(workers) if w.exitcode]
    if failed and still:
        raise IncompleteRun(
            f"{describe_shards(still)} of {len(job.shards())} are missing: {', '.join(failed)}; the other "
            f"workers finished theirs. {safe}: run the same command to score only the missing ones.", still)


def _local_worker(job: ShardedScoring, missing: list[Shard], rank: int, world_size: int, errors) -> None:
    import multiprocessing

    import torch

    if not torch.cuda.is_available():
        # N workers sharing the CPU: torch's default (every core each) oversubscribes it many times.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    mine = split_by_node(missing, rank, world_size)
    say_assignment(rank, world_size, mine, missing)
    parent = multiprocessing.parent_process()
    try:
        # A worker whose parent died (SIGKILL) stops at the next shard: it holds no lock, and a new run
        # may have started on the same output.
        score_in_process(job, mine, rank=rank, world_size=world_size, device_rank=rank,
                         keep_going=lambda: parent is None or parent.is_alive())
    except IncompleteRun as error:
        errors.put((rank, str(error), True))
        raise
    except Exception as error:
        errors.put((rank, f"{type(error).__name__}: {error}", False))
        raise


def _how_it_ended(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"failed (exit code {exitcode}; its error is printed above)"
