"""Sharded, resumable scoring across processes and nodes.

The step is kept apart from its executors, as in datatrove:

- `ShardedScoring` (the step) plans fixed row ranges of the input ("shards"), scores the missing
  ones with a given scorer, writes each one atomically (a temporary name, then a rename) into
  `OUT.shards/`, and merges them in input order into one `save_to_disk` folder at `OUT`.
- `run` (the executor under `accelerate launch` / `torchrun`, or a plain single process) takes rank
  and world size from `accelerate.PartialState`; `run_local` spawns `num_proc` local workers.

Shards are planned over the whole input, not per rank, so an interrupted run resumes with any
number of processes. What the shards were computed with (model, RAPConfig, input rows, shard size)
is kept in `OUT.shards/manifest.json`; a resume with other settings is refused. Past two start-up
barriers, ranks coordinate through the files alone (rank 0 waits for the others' shards, then
merges), so no collective call waits on a rank that is still generating: a barrier there would time
out (10 to 30 min by default) whenever ranks finish far apart, which long rollouts make common.
With several nodes, OUT must be on storage they all share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from . import __version__
from .data.io import SCORING_RECORD
from .data.schema import rap_ids_digest
from .rollouts.sampling import SAMPLER_NAME

DEFAULT_SHARD_ROWS = 256
MANIFEST = "manifest.json"
# Written inside the merged output: how its rows were scored. A re-run that finds it has nothing to do.
RECORD = SCORING_RECORD
# RAPConfig fields that choose where and in which groups rows run, not what is computed: a resume may
# change them (a smaller batch after an out-of-memory error, another machine).
EXECUTION_FIELDS = ("device", "batch_size")
_POLL_SECONDS = 1.0


class SettingsMismatch(ValueError):
    """Finished shards (or a finished output) were computed with other settings than this run's."""


@dataclass(frozen=True)
class Shard:
    """Rows `start`..`stop - 1` of the input, written to the file `name`."""

    index: int
    start: int
    stop: int
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}.arrow"

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class ScoringSummary:
    """What a sharded run did: printed as the command's final line."""

    output: Path
    rows: int
    errors: int
    seconds: float
    rows_scored: int  # in this run, all ranks together
    already_complete: bool = False
    # rap_error reason (`rap_hf.rows.error_reason`) -> (rows, the first such row's rap_id), commonest first
    errors_by_reason: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def all_failed(self) -> bool:
        """Every row has rap_error: the output holds no score at all."""
        return self.rows > 0 and self.errors == self.rows

    def line(self) -> str:
        reused = self.rows - self.rows_scored
        how = ("nothing to do: the output was already complete" if self.already_complete
               else f"{self.rows_scored} scored in this run" + (f", {reused} from earlier shards" if reused else ""))
        return (f"Scored {self.rows} rows ({self.errors} with rap_error) in {self.seconds:.1f}s ({how}); "
                f"wrote {self.output}")

    def report(self) -> str:
        """`line()`, then the errors by reason (each with an example row and, where known, what to try),
        then, when every row failed, what to do before running again."""
        from .rows import fix_for

        lines = [self.line()]
        for reason, (count, example) in self.errors_by_reason.items():
            fix = fix_for(reason)
            lines.append(f"  {count} row(s): {reason} (e.g. row {example!r})" + (f"; {fix}" if fix else ""))
        if self.all_failed:
            commonest = next(iter(self.errors_by_reason), "")
            fix = fix_for(commonest) or f"read rap_error in {self.output} for each row's reason"
            lines.append(f"Every row failed, so nothing was scored: {fix}; then run the same command with "
                         "--overwrite.")
        return "\n".join(lines)


class ShardedScoring:
    """Score `rows` with `scorer` shard by shard into `output`; see the module docstring.

    Args:
        scorer: A map-compatible scorer (`RAPScorer`, ...): called on batches; `map_schema` and
            `fingerprint` are all else this uses of it.
        rows: Canonical RAP rows (a map-style `datasets.Dataset`).
        output: Folder of the merged result; shards go to the sibling folder `<output>.shards`.
        shard_rows: Rows per shard file. None: the size an earlier run of this output used, else
            `DEFAULT_SHARD_ROWS`.
        map_batch_size: Rows per scorer call (`datasets.map` batch size); also the progress step.
        keep_shards: Keep `<output>.shards` after merging (by default it is removed).
    """

    def __init__(self, scorer, rows, output: str | os.PathLike, *, shard_rows: int | None = None,
                 map_batch_size: int = 16, keep_shards: bool = False):
        if "rap_id" not in rows.column_names:
            raise ValueError("Sharded scoring needs canonical RAP rows with a rap_id column: "
                             "convert the dataset first, `rap-hf convert` (or rap_hf.to_rap_format(ds)).")
        if len(rows) == 0:  # (datasets cannot save_to_disk / load_from_disk a dataset without rows)
            raise ValueError("The dataset has no rows to score")
        if shard_rows is not None and shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
        self.scorer = scorer
        self.rows = rows
        self.output = Path(output)
        self.shard_dir = self.output.with_name(self.output.name + ".shards")
        self.requested_shard_rows = shard_rows
        self.map_batch_size = map_batch_size
        self.keep_shards = keep_shards
        self._manifest: dict[str, Any] | None = None

    # ----------------------------------------------------------------- plan
    @property
    def shard_rows(self) -> int:
        return self.manifest()["shard_rows"]

    def manifest(self) -> dict[str, Any]:
        """What the shards are computed with; equal manifests mean reusable shards."""
        if self._manifest is None:
            rows = {"count": len(self.rows), "rap_id_sha256": rap_ids_digest(self.rows["rap_id"])}
            config = self.scorer.config.to_dict()
            shard_rows = self.requested_shard_rows
            if shard_rows is None:
                earlier = self._stored_manifest()
                shard_rows = earlier["shard_rows"] if earlier else DEFAULT_SHARD_ROWS
            self._manifest = {
                "format": 1,
                "rap_hf": __version__,
                "scorer": type(self.scorer).__name__,
                "sampler": SAMPLER_NAME,
                "model": self.scorer.model_ref,
                "model_fingerprint": _settings_fingerprint(self.scorer, rows["rap_id_sha256"]),
                "config": {k: v for k, v in config.items() if k not in EXECUTION_FIELDS},
                "rows": rows,
                "shard_rows": shard_rows,
            }
        return self._manifest

    def shards(self) -> list[Shard]:
        n, size = len(self.rows), self.shard_rows
        count = -(-n // size)
        return [Shard(i, i * size, min(n, (i + 1) * size), count) for i in range(count)]

    def missing(self) -> list[Shard]:
        return [s for s in self.shards() if not (self.shard_dir / s.name).exists()]

    def rows_on_disk(self) -> int:
        """Rows in finished shards: what an interrupted run keeps for the next one."""
        if not self.shard_dir.exists():
            return 0
        return sum(s.rows for s in self.shards() if (self.shard_dir / s.name).exists())

    def check_start(self, device_rank: int | None = None) -> None:
        """Load the model and score the first row in memory, writing nothing: a run that cannot start
        (a model that does not load or is not a vision-language model, a device that is not there, a
        processor that fails on the rows) fails before it leaves anything in OUTPUT.shards/."""
        self.scorer(self.rows[:1], rank=device_rank)

    @contextlib.contextmanager
    def cleaned_up_on_failure(self):
        """Within the block, a failure (or Ctrl-C) before any shard is finished removes the shard folder
        this run created, so the corrected command is not refused as a resume with other settings."""
        existed = self.shard_dir.exists()
        try:
            yield
        except BaseException:
            if not existed and self.shard_dir.exists() and not any(self.shard_dir.glob("shard-*.arrow")):
                shutil.rmtree(self.shard_dir, ignore_errors=True)
            raise

    # ----------------------------------------------------------------- state on disk
    def _stored_manifest(self) -> dict[str, Any] | None:
        record = self.output / RECORD
        if record.exists():
            return json.loads(record.read_text())["manifest"]
        manifest = self.shard_dir / MANIFEST
        return json.loads(manifest.read_text()) if manifest.exists() else None

    def is_complete(self) -> bool:
        """True when `output` holds a finished run; raises if its settings differ from this run's."""
        self._check_output_is_not_input()
        if not self.output.exists():
            if (self.shard_dir / MANIFEST).exists():
                _compare(json.loads((self.shard_dir / MANIFEST).read_text()), self.manifest(), self.shard_dir)
            return False
        if (self.output / RECORD).exists():
            _compare(self._stored_manifest(), self.manifest(), self.output)
            return True
        if any(self.output.iterdir()):
            raise FileExistsError(f"{self.output} exists and was not written by sharded scoring; choose another "
                                  "--output, or pass --overwrite to replace it")
        return False

    def prepare(self, *, overwrite: bool = False) -> None:
        """Main process only, before any rank scores: start afresh or resume, write the manifest."""
        self._check_output_is_not_input()
        if overwrite:
            for path in (self.output, self.shard_dir):
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            self._manifest = None
        for leftover in self.output.parent.glob(f".{self.output.name}.merging-*"):  # a merge that was killed
            shutil.rmtree(leftover)
        if self.output.exists() and not any(self.output.iterdir()):
            self.output.rmdir()  # an empty folder (made by hand, or a run that never merged) is no output
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        # Left by a killed process: its shard was never renamed into place, so it is redone.
        for path in self.shard_dir.iterdir():
            if path.name != MANIFEST and not (path.name.startswith("shard-") and path.suffix == ".arrow"):
                path.unlink() if path.is_file() else shutil.rmtree(path)
        manifest = self.shard_dir / MANIFEST
        if not manifest.exists():
            _write_atomically(manifest, json.dumps(self.manifest(), indent=2, sort_keys=True))

    def _check_output_is_not_input(self) -> None:
        output = self.output.resolve()
        for cache in getattr(self.rows, "cache_files", None) or []:
            folder = Path(cache["filename"]).resolve().parent
            if folder == output or output in folder.parents or folder == self.shard_dir.resolve():
                raise ValueError(f"--output {self.output} is where the input rows are read from; choose another folder")

    # ----------------------------------------------------------------- work
    def score_shards(self, shards: list[Shard], *, rank: int = 0, world_size: int = 1,
                     device_rank: int | None = None) -> int:
        """Score this rank's part of `shards` (contiguous blocks, as `split_dataset_by_node` splits
        rows), skipping any already on disk; returns the rows scored. `device_rank` picks
        `cuda:{device_rank}` (the local rank; None: the current device)."""
        from tqdm.auto import tqdm

        mine = _split_by_node(shards, rank, world_size)
        total = sum(s.rows for s in mine)
        label = f"rank {rank}/{world_size}" if world_size > 1 else "RAP scoring"
        if world_size > 1:
            print(f"{label}: {len(mine)} of {len(shards)} missing shards ({total} rows)", file=sys.stderr, flush=True)
        start, done = time.perf_counter(), 0
        with tqdm(total=total, desc=label, unit="row", position=rank if world_size > 1 else None,
                  dynamic_ncols=True) as bar:
            for shard in mine:
                if (self.shard_dir / shard.name).exists():
                    bar.update(shard.rows)
                    continue
                self._score_one(shard, bar, device_rank)
                done += shard.rows
        if world_size > 1:
            elapsed = time.perf_counter() - start
            print(f"{label}: scored {done} rows in {elapsed:.1f}s ({done / elapsed if elapsed else 0:.2f} rows/s)",
                  file=sys.stderr, flush=True)
        return done

    def _score_one(self, shard: Shard, bar, device_rank: int | None) -> None:
        import datasets

        part = self.rows.select(range(shard.start, shard.stop))
        final = self.shard_dir / shard.name
        temporary = self.shard_dir / f".tmp-{final.stem}-{os.getpid()}.arrow"
        scorer = self.scorer

        def step(batch: dict[str, list]) -> dict[str, list]:
            out = scorer(batch, rank=device_rank)
            bar.update(len(batch["rap_id"]))
            return out

        # The scorer's own `map` schema (features fixed up front, stale score columns dropped), with
        # the batches counted into this rank's bar instead of one bar per shard.
        features, stale = scorer.map_schema(part)
        bars_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            scored = part.map(step, batched=True, batch_size=self.map_batch_size, features=features,
                              remove_columns=stale or None, cache_file_name=str(temporary),
                              # Given, so datasets never hashes `step` (it would pickle the model).
                              new_fingerprint=f"{self.manifest()['model_fingerprint'][:40]}-{shard.index}")
            del scored
        finally:
            if bars_on:
                datasets.enable_progress_bars()
        if final.exists():  # finished meanwhile by another process: finished shards are never rewritten
            temporary.unlink()
        else:
            os.replace(temporary, final)

    def wait_for_shards(self, poll_seconds: float = _POLL_SECONDS) -> None:
        """Block until every shard is on disk (other ranks write theirs)."""
        said = False
        while missing := self.missing():
            if not said:
                print(f"Waiting for {len(missing)} shards from the other ranks", file=sys.stderr, flush=True)
                said = True
            time.sleep(poll_seconds)

    def merge(self):
        """Concatenate the shards in input order into `output` (written aside, then renamed)."""
        from datasets import Dataset, concatenate_datasets, load_from_disk

        manifest = self.manifest()
        shards = self.shards()
        parts = [Dataset.from_file(str(self.shard_dir / s.name)) for s in shards]
        merged = concatenate_datasets(parts)
        if rap_ids_digest(merged["rap_id"]) != manifest["rows"]["rap_id_sha256"]:
            raise RuntimeError(f"The shards in {self.shard_dir} do not add up to the input rows; "
                               "re-run with --overwrite to score afresh")
        aside = self.output.with_name(f".{self.output.name}.merging-{os.getpid()}")
        if aside.exists():
            shutil.rmtree(aside)
        merged.save_to_disk(str(aside))
        errors = sum(1 for e in merged["rap_error"] if e) if "rap_error" in merged.column_names else 0
        (aside / RECORD).write_text(json.dumps({"manifest": manifest, "rows": len(merged), "errors": errors,
                                                "shards": len(shards)}, indent=2, sort_keys=True))
        del merged, parts
        os.rename(aside, self.output)
        if not self.keep_shards:
            shutil.rmtree(self.shard_dir)
        return load_from_disk(str(self.output))

    def summary(self, merged, seconds: float, rows_scored: int, already_complete: bool = False) -> ScoringSummary:
        from .rows import error_reason

        by_reason: dict[str, list] = {}
        if "rap_error" in merged.column_names:
            for rap_id, error in zip(merged["rap_id"], merged["rap_error"]):
                if error:
                    entry = by_reason.setdefault(error_reason(error), [0, str(rap_id)])
                    entry[0] += 1
        ordered = dict(sorted(((reason, (count, example)) for reason, (count, example) in by_reason.items()),
                              key=lambda item: -item[1][0]))
        errors = sum(count for count, _ in ordered.values())
        return ScoringSummary(self.output, len(merged), errors, seconds, rows_scored, already_complete, ordered)


# --------------------------------------------------------------------- executors
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

    Returns the summary on the main process, None on the others (their shards are on disk).
    """
    from datasets import load_from_disk

    state = state or process_state()
    rank, world_size = state.process_index, state.num_processes
    start = time.perf_counter()
    # Every rank checks for itself, so a refusal stops all of them (none is left at a barrier).
    if not overwrite and job.is_complete():
        if not state.is_main_process:
            return None
        return job.summary(load_from_disk(str(job.output)), time.perf_counter() - start, 0, already_complete=True)
    # Nothing is written before every rank has loaded its model and scored a row.
    job.check_start(state.local_process_index if world_size > 1 else None)
    if state.is_main_process:
        job.prepare(overwrite=overwrite)
    state.wait_for_everyone()
    if not (job.shard_dir / MANIFEST).exists():
        raise RuntimeError(f"rank {rank} does not see {job.shard_dir / MANIFEST}, written by rank 0: with several "
                           "nodes, --output must be on storage that every node shares")
    _compare(json.loads((job.shard_dir / MANIFEST).read_text()), job.manifest(), job.shard_dir)
    # One snapshot of the missing shards, taken before anyone writes, so every rank splits the same list.
    missing = job.missing()
    state.wait_for_everyone()
    job.score_shards(missing, rank=rank, world_size=world_size,
                     device_rank=state.local_process_index if world_size > 1 else None)
    if not state.is_main_process:
        return None
    job.wait_for_shards()
    merged = job.merge()
    return job.summary(merged, time.perf_counter() - start, sum(s.rows for s in missing))


def run_local(job: ShardedScoring, num_proc: int, *, overwrite: bool = False) -> ScoringSummary:
    """Run `job` on `num_proc` spawned local workers (rank r on `cuda:r` when there are GPUs), then merge.

    Spawned, not forked: a forked child inherits torch's thread pools (it can hang on CPU) or an
    initialised CUDA context (it fails on GPU).
    """
    import multiprocessing

    from datasets import load_from_disk

    start = time.perf_counter()
    if not overwrite and job.is_complete():
        return job.summary(load_from_disk(str(job.output)), time.perf_counter() - start, 0, already_complete=True)
    # The workers load the model in their own processes: a start that fails there is cleaned up by
    # the caller (`cleaned_up_on_failure`) rather than checked here, which would load it once more.
    job.prepare(overwrite=overwrite)
    missing = job.missing()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_local_worker, args=(job, missing, rank, num_proc)) for rank in range(num_proc)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [f"rank {r} (exit code {w.exitcode})" for r, w in enumerate(workers) if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"Scoring workers failed: {', '.join(failed)}. Finished shards are kept in "
                           f"{job.shard_dir}: re-run the same command to score only the rest.")
    merged = job.merge()
    return job.summary(merged, time.perf_counter() - start, sum(s.rows for s in missing))


def _local_worker(job: ShardedScoring, missing: list[Shard], rank: int, world_size: int) -> None:
    import torch

    if not torch.cuda.is_available():
        # N workers sharing the CPU: torch's default (every core each) oversubscribes it many times.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    job.score_shards(missing, rank=rank, world_size=world_size, device_rank=rank)


# --------------------------------------------------------------------- helpers
def _split_by_node(shards: list[Shard], rank: int, world_size: int) -> list[Shard]:
    """This rank's contiguous block of `shards`, as `datasets.distributed.split_dataset_by_node` splits
    a map-style dataset: the first `len % world_size` ranks take one more. Applied to the shard list, so
    a resumed run spreads only the missing shards over any number of processes; with fewer missing
    shards than ranks, the ranks left over get none, wait, and exit (split_dataset_by_node itself
    fails on such a split)."""
    per_rank, extra = divmod(len(shards), world_size)
    start = rank * per_rank + min(rank, extra)
    return list(shards[start : start + per_rank + (1 if rank < extra else 0)])


def _settings_fingerprint(scorer, rows_digest: str) -> str:
    """The scorer's fingerprint (model files or Hub revision, config, version) over these rows,
    blind to the execution-only config fields.

    The rows enter by their ids: a dataset's own fingerprint is not stable across processes when the
    rows were converted on the fly, and every rank must agree.
    """
    stand_in = SimpleNamespace(_fingerprint=rows_digest)
    defaults = type(scorer.config)()
    neutral = dataclasses.replace(scorer.config, **{f: getattr(defaults, f) for f in EXECUTION_FIELDS})
    return scorer.with_config(neutral).fingerprint(stand_in)


def _compare(stored: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Raise `SettingsMismatch` naming each setting that differs between a stored and this run's manifest."""
    differences = []
    if stored.get("rows") != current["rows"]:
        then, now = stored.get("rows", {}).get("count"), current["rows"]["count"]
        differences.append(f"input rows: {then} then, {now} now" if then != now
                           else f"input rows: the same count ({now}) but other rap_ids or another order")
    if stored.get("shard_rows") != current["shard_rows"]:
        differences.append(f"--shard-rows: {stored.get('shard_rows')} then, {current['shard_rows']} now")
    for name in sorted(set(stored.get("config", {})) | set(current["config"])):
        then, now = stored.get("config", {}).get(name), current["config"].get(name)
        if then != now:
            differences.append(f"{name}: {then!r} then, {now!r} now")
    for name, what in (("scorer", "scorer"), ("sampler", "sampler"), ("rap_hf", "rap-hf version")):
        if stored.get(name) != current[name]:
            differences.append(f"{what}: {stored.get(name)} then, {current[name]} now")
    # The model is compared by its files (or Hub revision), so a moved or re-linked folder still resumes.
    if stored.get("model_fingerprint") != current["model_fingerprint"]:
        then, now = stored.get("model"), current["model"]
        if then != now:
            differences.append(f"model: {then} then, {now} now")
        elif not differences:  # the fingerprint covers the config too: only then is it the files
            differences.append(f"model: the files (or Hub revision) of {now} changed")
    if differences:
        raise SettingsMismatch(
            f"{where} holds rows scored with other settings than this run's ({'; '.join(differences)}). Re-run "
            "with the original settings to resume, choose another --output, or pass --overwrite to start afresh."
        )


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)
