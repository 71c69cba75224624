"""How a sharded scoring job runs on one node: its ranks under `accelerate launch` / torchrun (or a
plain single process), or local worker processes that this process spawns.

Past the start (the main process takes the output's lock; every rank loads its model and scores a
row; the main process prepares; a broadcast after each step tells every rank the outcome), ranks
coordinate through the files alone: the main process waits for the others' shard records, checks every shard, then merges. No
collective call waits on a rank that is still generating: a barrier there would time out (10 to 30
min by default) whenever ranks finish far apart, which long rollouts make common.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from .job import IncompleteRun, ScoringError, Shard, ShardedScoring, ScoringSummary, describe_shards

_COMPLETE = "complete"


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


def run(job: ShardedScoring, *, overwrite: bool = False, state=None) -> ScoringSummary | None:
    """Run `job` as this process's rank (one process, or one of many under `accelerate launch`).

    Returns the summary on the main process, None on the others (their shards are on disk). What
    the main process decides (the output is complete; another run holds it: `OutputBusy`; other
    settings: `SettingsMismatch`) reaches every rank by broadcast and is raised on each, so no rank
    is left waiting and all end alike.
    """
    state = state or process_state()
    rank, world_size = state.process_index, state.num_processes
    start = time.perf_counter()
    try:
        # The main process alone looks at the output and takes its lock, before any model loads.
        decision = _on_main_process(state, lambda: _COMPLETE if job.start(overwrite=overwrite) else (
            overwrite or bool(job.missing())))
        if decision == _COMPLETE:
            if not state.is_main_process:
                return None
            return job.complete_summary(time.perf_counter() - start)
        # Nothing is written before every rank has loaded its model and scored a row; a run left with
        # only the merge to do (killed while merging) loads no model.
        if decision:
            job.check_start(state.local_process_index if world_size > 1 else None)
        _on_main_process(state, lambda: job.prepare(overwrite=overwrite))
        job.check_manifest(rank)
        # One snapshot of the missing shards, taken before anyone writes, so every rank splits the same list.
        missing = job.missing()
        state.wait_for_everyone()
        mine = split_by_node(missing, rank, world_size)
        if world_size > 1:
            _say_assignment(rank, world_size, mine, missing)
        job.score_shards(mine, rank=rank, world_size=world_size,
                         device_rank=state.local_process_index if world_size > 1 else None)
        if not state.is_main_process:
            return None  # its shards are on disk; the main process waits for every rank's
        job.wait_for_shards()
        merged = job.merge()
        return job.summary(merged, time.perf_counter() - start, sum(s.rows for s in missing))
    finally:
        job.finish()


def run_local(job: ShardedScoring, num_proc: int, *, overwrite: bool = False) -> ScoringSummary:
    """Run `job` on `num_proc` spawned local workers (rank r on `cuda:r` when there are GPUs), then merge.

    Workers are independent: one that dies (killed, out of memory) stops alone, the others finish
    their shards, and the run then raises `IncompleteRun` naming the shards still missing; the same
    call scores only those. A worker that raises (a model that does not load, a device that is not
    there) ends the run with `ScoringError` and its message. Spawned, not forked: a forked child
    inherits torch's thread pools (it can hang on CPU) or an initialised CUDA context (it fails on
    GPU).
    """
    import multiprocessing

    start = time.perf_counter()
    try:
        if job.start(overwrite=overwrite):
            return job.complete_summary(time.perf_counter() - start)
        # The workers load the model in their own processes: a start that fails there is reported
        # below (and cleaned up by `cleaned_up_on_failure`) rather than checked here, which would load
        # it once more.
        job.prepare(overwrite=overwrite)
        missing = job.missing()
        if missing:
            context = multiprocessing.get_context("spawn")
            errors = context.Queue()
            workers = [context.Process(target=_local_worker, args=(job, missing, rank, num_proc, errors))
                       for rank in range(num_proc)]
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
        merged = job.merge()
        return job.summary(merged, time.perf_counter() - start, sum(s.rows for s in missing))
    finally:
        job.finish()


def _raise_for_workers(job: ShardedScoring, workers, errors) -> None:
    """After the workers ended: `ScoringError` with the first error a worker raised, else
    `IncompleteRun` when a worker was killed and shards are missing."""
    raised = {}
    while not errors.empty():
        rank, message = errors.get()
        raised.setdefault(rank, message)
    still = job.missing()
    safe = f"Finished shards are kept in {job.shard_dir}"
    if raised:
        rank, message = min(raised.items())
        left = f"; {describe_shards(still)} still to score" if still else ""
        raise ScoringError(f"worker {rank} failed: {message}{left}. {safe}: fix the cause, then run the same "
                           "command to score only the missing ones.")
    failed = [f"worker {rank} {_how_it_ended(w.exitcode)}" for rank, w in enumerate(workers) if w.exitcode]
    if failed and still:
        raise IncompleteRun(
            f"{describe_shards(still)} of {len(job.shards())} are missing: {', '.join(failed)}; the other "
            f"workers finished theirs. {safe}: run the same command to score only the missing ones.", still)


def split_by_node(shards: list[Shard], rank: int, world_size: int) -> list[Shard]:
    """This rank's contiguous block of `shards`, as `datasets.distributed.split_dataset_by_node` splits
    a map-style dataset: the first `len % world_size` ranks take one more. Applied to the shard list, so
    a resumed run spreads only the missing shards over any number of processes; with fewer missing
    shards than ranks, the ranks left over get none and exit (split_dataset_by_node itself fails on
    such a split)."""
    per_rank, extra = divmod(len(shards), world_size)
    start = rank * per_rank + min(rank, extra)
    return list(shards[start : start + per_rank + (1 if rank < extra else 0)])


def _local_worker(job: ShardedScoring, missing: list[Shard], rank: int, world_size: int, errors) -> None:
    import multiprocessing

    import torch

    if not torch.cuda.is_available():
        # N workers sharing the CPU: torch's default (every core each) oversubscribes it many times.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    mine = split_by_node(missing, rank, world_size)
    _say_assignment(rank, world_size, mine, missing)
    parent = multiprocessing.parent_process()
    try:
        # A worker whose parent died (SIGKILL) stops at the next shard: it holds no lock, and a new run
        # may have started on the same output.
        job.score_shards(mine, rank=rank, world_size=world_size, device_rank=rank,
                         keep_going=lambda: parent is None or parent.is_alive())
    except Exception as error:
        errors.put((rank, f"{type(error).__name__}: {error}"))
        raise


def _say_assignment(rank: int, world_size: int, mine: list[Shard], missing: list[Shard]) -> None:
    print(f"rank {rank}/{world_size}: {len(mine)} of {len(missing)} missing shards ({sum(s.rows for s in mine)} rows)",
          file=sys.stderr, flush=True)


def _on_main_process(state, decide) -> object:
    """`decide()` on the main process, its result (or the exception it raised) on every rank, by one
    broadcast; raised on every rank if it was an exception."""
    outcome: object = None
    if state.is_main_process:
        try:
            outcome = decide()
        except Exception as error:
            outcome = error
    if state.num_processes > 1:
        import torch.distributed as dist

        box = [outcome]
        dist.broadcast_object_list(box, src=0)
        outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _how_it_ended(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"failed (exit code {exitcode}; its error is printed above)"
