"""Sharded scoring on a Ray cluster: many nodes, pre-emptible workers, one GPU per task.

Each missing shard is one Ray task that scores it (`ShardedScoring.score_one`: a temporary file,
checked, renamed into place, then its record) in `OUT.shards/`, which must be on storage every node
sees. Ray schedules the tasks on free GPUs (or CPUs), and when a worker process or its node dies
mid-task (pre-emption, out of memory, SIGKILL) it runs the task again elsewhere, up to
`max_retries` times; a task that raises is not retried (a bad row or a bad model fails the same way
twice). Worker processes keep their model between tasks (`load_vlm` caches it per process), so a
model loads once per worker, not once per shard. This process, the driver, holds the output's
lock, prepares, follows the tasks and merges (`RayExecutor`, the `ray` engine): the guarantees are
those of the other executors (every row once, in input order; resume; damaged shards redone).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

from .errors import IncompleteRun, ScoringError
from .executor import Executor
from .job import ShardedScoring
from .manifest import MANIFEST
from .shards import Shard, describe_shards

DEFAULT_MAX_RETRIES = 3


class RayExecutor(Executor):
    """One Ray task per missing shard; this process, the driver, holds the lock, prepares and merges.

    Args:
        address: A running cluster (`"auto"`, `"HEAD_IP:6379"`, `"ray://head:10001"`); None starts a local
            one (or uses the one `ray.init` already started in this process).
        num_cpus: CPUs of a local cluster started here (None: all of this machine's).
        max_retries: How often Ray runs a task again whose worker or node died.

    `run` raises `IncompleteRun` when some shards failed (their worker died `max_retries + 1` times, or
    the task raised); the others are kept, and the same call scores only the missing ones.
    """

    name = "ray"
    help = "one Ray task per shard on a Ray cluster: many nodes, pre-emptible workers; pip install 'rap-hf[ray]'"

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES):
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.ray = None
        self.started_here = False

    @classmethod
    def from_arguments(cls, args, state) -> Executor:
        return cls(address=args.ray_address, num_cpus=args.num_proc, max_retries=args.ray_max_retries)

    def check_start(self, job: ShardedScoring) -> None:
        """Joins (or starts) the cluster, checks that every node shares the driver's storage, then
        scores one row on one worker: a model that does not load, or rows the processor refuses, fail
        here with their own error (as on the other executors), not as one failed task per shard."""
        ray = self._connect()
        check_shared_storage(ray, job)
        try:
            ray.get(ray.remote(_check_start).options(**self._resources(job), max_retries=self.max_retries)
                    .remote(ray.put(job)))
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, (ValueError, OSError, ImportError, NotImplementedError)):
                raise error.cause from None  # the CLI's one-line errors (a bad model, a missing device)
            raise ScoringError(f"the start check failed on a Ray worker: {_last_line(error)}") from None
        except ray.exceptions.RayError as error:  # its worker or node died, or ran out of memory
            raise ScoringError(f"the start check could not run on the Ray cluster: {_last_line(error)}") from None

    def score(self, job: ShardedScoring, missing: list[Shard]) -> None:
        if not missing:
            return
        failures = self._score_on_cluster(job, missing)
        if failures and (still := job.missing()):
            first, why = next(iter(failures.items()))
            raise IncompleteRun(
                f"{describe_shards(still)} of {len(job.shards())} are missing: {len(failures)} Ray task(s) "
                f"failed (shard {first}: {why}); the other tasks finished theirs. Finished shards are kept in "
                f"{job.shard_dir}: run the same command to score only the missing ones.", still)

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
            self.started_here = False

    def _connect(self):
        """`ray`, initialised: the cluster at `address`, or a local one started here."""
        if self.ray is None:
            self.ray = _import_ray()
        ray = self.ray
        if not ray.is_initialized():
            # ray.init makes SIGTERM exit at once (status 15); ours ends the run like Ctrl-C, with the
            # missing shards named and status 143.
            handler = signal.getsignal(signal.SIGTERM)
            # "local": a cluster of its own, never one that `ray start` left registered on this machine.
            ray.init(address=self.address or "local", num_cpus=self.num_cpus if self.address is None else None,
                     include_dashboard=False, logging_level=logging.WARNING)
            signal.signal(signal.SIGTERM, handler)
            self.started_here = True
        return ray

    def _resources(self, job: ShardedScoring) -> dict[str, int]:
        """One GPU per task when the cluster has GPUs and the scorer is not told to use the CPU."""
        on_gpu = (not (job.scorer.config.device or "").startswith("cpu")
                  and self.ray.cluster_resources().get("GPU", 0) > 0)
        return dict(num_cpus=1, num_gpus=1 if on_gpu else 0)

    def _score_on_cluster(self, job: ShardedScoring, missing: list[Shard]) -> dict[int, str]:
        """Run one task per shard and follow them with a progress bar; returns {shard index: why it failed}."""
        from tqdm.auto import tqdm

        ray = self._connect()
        resources = self._resources(job)
        job_ref = ray.put(job)  # after prepare: the workers read the manifest it wrote
        task = ray.remote(_score_shard).options(**resources, max_retries=self.max_retries)
        pending = {task.remote(job_ref, shard): shard for shard in missing}
        on_gpu = resources["num_gpus"] > 0
        print(f"Ray: {len(missing)} shard tasks on {ray.cluster_resources().get('GPU' if on_gpu else 'CPU', 0):g} "
              f"{'GPUs' if on_gpu else 'CPUs'}", file=sys.stderr, flush=True)
        failures: dict[int, str] = {}
        with tqdm(total=sum(s.rows for s in missing), desc="RAP scoring (ray)", unit="row",
                  dynamic_ncols=True) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    shard = pending.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError as error:
                        failures[shard.index] = _last_line(error)
                        continue
                    bar.update(shard.rows)
        return failures


def check_shared_storage(ray, job: ShardedScoring) -> None:
    """Prove, before any work, that every live node sees the driver's shard folder and input files.

    The driver writes a probe file with a random token into `OUT.shards/`; one task pinned to each
    node reads it back, writes its answer beside it (the folder must be writable there too) and
    looks for the input rows' files. A node on its own disk (the output not on shared storage) ends
    the run here in one line, naming the folder and the node, before a shard is written to where the
    driver would never find it. Nodes that join later are checked by each shard task
    (`_score_shard`: the manifest the driver wrote must be there).
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = job.shard_dir / f".probe-{token}"
    probe.write_text(token)
    inputs = [entry["filename"] for entry in getattr(job.rows, "cache_files", None) or []]
    try:
        task = ray.remote(_probe_storage)
        answers = {}
        for node in (node for node in ray.nodes() if node.get("Alive")):
            on_node = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            answers[task.options(num_cpus=0, scheduling_strategy=on_node).remote(str(probe), token, inputs)] = node
        for ref, node in answers.items():
            where = f"{node.get('NodeManagerHostname')} ({node.get('NodeManagerAddress')})"
            try:
                problem = ray.get(ref)
            except ray.exceptions.RayError as error:  # the node went while being checked
                raise ScoringError(f"the storage check could not run on Ray node {where}: "
                                   f"{_last_line(error)}") from None
            reply = probe.with_name(f"{probe.name}-{node['NodeID']}")
            if problem is None and (reply.read_text() if reply.exists() else None) != token:
                problem = f"writes to {job.shard_dir} do not reach the driver's folder of that name"
            if problem:
                raise ScoringError(
                    f"Ray node {where} {problem}: the output and the input must be on storage that the driver "
                    "and every node share (NFS, Lustre, GPFS, a cloud file system), mounted at the same path; "
                    "nothing was scored")
    finally:
        for path in job.shard_dir.glob(f"{probe.name}*"):
            path.unlink(missing_ok=True)


def _probe_storage(probe: str, token: str, inputs: list[str]) -> str | None:
    """On one node: what it cannot see of the driver's storage, or None."""
    import ray

    path = Path(probe)
    try:
        seen = path.read_text()
    except OSError:
        seen = None
    if seen != token:
        return f"does not see {path.parent} as the driver does (the probe file the driver wrote is not there)"
    try:
        path.with_name(f"{path.name}-{ray.get_runtime_context().get_node_id()}").write_text(token)
    except OSError as error:
        return f"cannot write to {path.parent} ({error.strerror or error})"
    missing = next((name for name in inputs if not os.path.exists(name)), None)
    return None if missing is None else f"does not see the input rows' file {missing}"


def _check_start(job: ShardedScoring) -> None:
    """The start check of the other executors (`ShardedScoring.check_start`), on a cluster worker."""
    job.check_start()


def _score_shard(job: ShardedScoring, shard: Shard):
    """One Ray task: score `shard` on this worker's device (Ray sets CUDA_VISIBLE_DEVICES to its GPU).
    On a node that joined after the storage check and does not share the driver's storage, it fails
    (and is not retried) instead of writing the shard where the driver will never look."""
    if not (job.shard_dir / MANIFEST).exists():
        raise ScoringError(f"node {socket.gethostname()} does not see {job.shard_dir / MANIFEST}, written by the "
                           "driver: the output must be on storage every node shares")
    return job.score_one(shard)


def _last_line(error: Exception) -> str:
    """The last non-empty line of a Ray error (its first lines are a traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise ImportError("--engine ray needs Ray: pip install 'rap-hf[ray]' (or pip install ray)") from error
    return ray
