"""The sharded scoring job: what to score, what is finished, and the merge.

`ShardedScoring` plans fixed row ranges of the input ("shards"), scores the missing ones with a
given scorer, writes each one atomically (a temporary name, then a rename, then its record: see
`records.py`) into `OUT.shards/`, and merges them in input order into one `save_to_disk` folder at
`OUT`. How the shards are spread over processes is the executors' business (`executor.py` and its
subclasses), as datatrove keeps the executor apart from the step.

Shards are planned over the whole input, not per rank, so an interrupted run resumes with any
number of processes. What the shards were computed with (model, RAPConfig, input rows, shard size)
is kept in `OUT.shards/manifest.json`; a resume with other settings is refused. The process that
prepares and merges holds `OUT.shards/run.lock` (`lock.py`) meanwhile, so a second run on the same
output refuses at once instead of racing the first. With several nodes, OUT must be on storage they
all share.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..data.saved import SCORING_RECORD
from ..data.canonical import rap_ids_digest
from .errors import IncompleteRun, ScoringError
from .lock import OutputLock
from .manifest import MANIFEST, build_manifest, compare_manifests
from .records import ShardRecord, damage, file_checksum, write_atomically
from .shards import Shard, describe_shards, plan_shards
from .summary import ScoringSummary

DEFAULT_SHARD_ROWS = 256
# Held by the process that prepares and merges (lock.py): one run per output at a time.
LOCK = "run.lock"
# What belongs in OUT.shards/ besides the lock; anything else there was left by a killed process.
RUN_FILES = ("shard-*.arrow", "shard-*.json", MANIFEST)
# Written inside the merged output: how its rows were scored. A re-run that finds it has nothing to do.
RECORD = SCORING_RECORD


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
        # Absolute on the driver: workers elsewhere (Ray's run in their own folder) must write where it reads.
        self.output = Path(os.path.abspath(output))
        self.shard_dir = self.output.with_name(self.output.name + ".shards")
        self.requested_shard_rows = shard_rows
        self.map_batch_size = map_batch_size
        self.keep_shards = keep_shards
        self.lock = OutputLock(self.shard_dir / LOCK, output=self.output)
        # True once this process has taken the output (its lock, or none where locks are unsupported).
        self.owns_output = False
        self._manifest: dict[str, Any] | None = None
        self._rap_ids: list[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers (spawned, or Ray's) get the plan, never the lock: only the process that took it holds it.
        state = dict(self.__dict__)
        state["lock"] = OutputLock(self.shard_dir / LOCK, output=self.output)
        state["owns_output"] = False
        state["_rap_ids"] = None
        return state

    # ----------------------------------------------------------------- plan
    @property
    def shard_rows(self) -> int:
        return self.manifest()["shard_rows"]

    def manifest(self) -> dict[str, Any]:
        """What the shards are computed with; equal manifests mean reusable shards."""
        if self._manifest is None:
            rows = {"count": len(self.rows), "rap_id_sha256": rap_ids_digest(self._ids())}
            shard_rows = self.requested_shard_rows
            if shard_rows is None:
                earlier = self._stored_manifest()
                shard_rows = earlier["shard_rows"] if earlier else DEFAULT_SHARD_ROWS
            self._manifest = build_manifest(self.scorer, rows, shard_rows)
        return self._manifest

    def shards(self) -> list[Shard]:
        return plan_shards(len(self.rows), self.shard_rows)

    def _ids(self) -> list[str]:
        if self._rap_ids is None:
            self._rap_ids = [str(i) for i in self.rows["rap_id"]]
        return self._rap_ids

    def _ids_digest(self, shard: Shard) -> str:
        return rap_ids_digest(self._ids()[shard.start : shard.stop])

    # ----------------------------------------------------------------- state on disk
    def finished(self, shard: Shard) -> bool:
        """Whether `shard` has its record: written last, so never true of a half-written shard. A
        cheap test (one stat) for polling; `damaged` checks the bytes."""
        return (self.shard_dir / shard.record_name).exists()

    def missing(self) -> list[Shard]:
        return [s for s in self.shards() if not self.finished(s)]

    def rows_on_disk(self) -> int:
        """Rows in finished shards: what an interrupted run keeps for the next one."""
        if not self.shard_dir.exists():
            return 0
        return sum(s.rows for s in self.shards() if self.finished(s))

    def damaged(self) -> list[tuple[Shard, str]]:
        """Each shard on disk that does not match its record or this run (records.py), with why."""
        settings = self.manifest()["model_fingerprint"]
        found = []
        for shard in self.shards():
            shard_file, record_file = self.shard_dir / shard.name, self.shard_dir / shard.record_name
            if not (shard_file.exists() or record_file.exists()):
                continue
            why = damage(shard_file, record_file, start=shard.start, stop=shard.stop, settings=settings,
                         rap_id_sha256=self._ids_digest(shard))
            if why:
                found.append((shard, why))
        return found

    def discard_damaged(self) -> list[tuple[Shard, str]]:
        """Delete every damaged shard (file and record), saying why, so it is scored again."""
        found = self.damaged()
        for shard, why in found:
            print(f"Shard {shard.index} (rows {shard.start}-{shard.stop - 1}) is damaged, {why}: deleted, it will "
                  "be scored again", file=sys.stderr, flush=True)
            (self.shard_dir / shard.name).unlink(missing_ok=True)
            (self.shard_dir / shard.record_name).unlink(missing_ok=True)
        return found

    def check_start(self, device_rank: int | None = None) -> None:
        """Load the model and score the first row in memory, writing nothing: a run that cannot start
        (a model that does not load or is not a vision-language model, a device that is not there, a
        processor that fails on the rows) fails before it leaves anything in OUTPUT.shards/."""
        self.scorer(self.rows[:1], rank=device_rank)

    @contextlib.contextmanager
    def cleaned_up_on_failure(self):
        """Within the block, a failure (or Ctrl-C) before any shard is finished removes the shard folder
        this run created, so the corrected command is not refused as a resume with other settings. A
        folder another run holds (this one was refused its lock) is never touched."""
        existed = self.shard_dir.exists()
        try:
            yield
        except BaseException:
            if (not existed and self.owns_output and self.shard_dir.exists()
                    and not any(self.shard_dir.glob("shard-*"))):
                shutil.rmtree(self.shard_dir, ignore_errors=True)
            raise
        finally:
            self.finish()

    def _stored_manifest(self) -> dict[str, Any] | None:
        record = self.output / RECORD
        if record.exists():
            return json.loads(record.read_text())["manifest"]
        manifest = self.shard_dir / MANIFEST
        return json.loads(manifest.read_text()) if manifest.exists() else None

    def check_manifest(self, rank: int = 0) -> None:
        """Every rank, after the main process prepared: the manifest it wrote is there and matches."""
        manifest = self.shard_dir / MANIFEST
        if not manifest.exists():
            raise ScoringError(f"rank {rank} does not see {manifest}, written by rank 0: with several nodes, "
                               "--output must be on storage that every node shares")
        compare_manifests(json.loads(manifest.read_text()), self.manifest(), self.shard_dir)

    def is_complete(self) -> bool:
        """True when `output` holds a finished run; raises if its settings differ from this run's."""
        self._check_output_is_not_input()
        if not self.output.exists():
            if (self.shard_dir / MANIFEST).exists():
                compare_manifests(json.loads((self.shard_dir / MANIFEST).read_text()), self.manifest(), self.shard_dir)
            return False
        if (self.output / RECORD).exists():
            compare_manifests(self._stored_manifest(), self.manifest(), self.output)
            return True
        if any(self.output.iterdir()):
            raise FileExistsError(f"{self.output} exists and was not written by sharded scoring; choose another "
                                  "--output, or pass --overwrite to replace it")
        return False

    def start(self, *, overwrite: bool = False) -> bool:
        """Main process only, first of all (before any model loads): take the output's lock, so a
        second run on the same output stops at once (`OutputBusy`). Returns True when the output is
        already complete (finished earlier, or by the run that held the lock before us): nothing to
        do, and the lock is released again."""
        if not overwrite and self.is_complete():  # before creating anything beside a finished output
            return True
        self._check_output_is_not_input()
        created = not self.shard_dir.exists()
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        self.owns_output = True
        if not overwrite and self.is_complete():
            self.finish()
            if created:
                shutil.rmtree(self.shard_dir, ignore_errors=True)
            return True
        return False

    def finish(self) -> None:
        """Release the output's lock (the executors call it when they end, however they end)."""
        self.lock.release()

    def prepare(self, *, overwrite: bool = False) -> None:
        """Main process only, after `start` and before any rank scores: start afresh or resume, delete
        damaged shards, write the manifest."""
        if not self.owns_output:
            raise ScoringError("ShardedScoring.prepare() needs the output's lock: call start() first")
        if overwrite:
            if self.output.is_dir():
                shutil.rmtree(self.output)
            elif self.output.exists():
                self.output.unlink()
            self._clear_shard_dir(keep=())
            self._manifest = None
        for leftover in self.output.parent.glob(f".{self.output.name}.merging-*"):  # a merge that was killed
            shutil.rmtree(leftover)
        if self.output.exists() and not any(self.output.iterdir()):
            self.output.rmdir()  # an empty folder (made by hand, or a run that never merged) is no output
        # Temporary files of killed processes (a shard never published, datasets' own) go.
        self._clear_shard_dir(keep=RUN_FILES)
        manifest = self.shard_dir / MANIFEST
        if not manifest.exists():
            write_atomically(manifest, json.dumps(self.manifest(), indent=2, sort_keys=True))
        self.discard_damaged()

    def _clear_shard_dir(self, keep: tuple[str, ...]) -> None:
        for path in self.shard_dir.iterdir():
            if path.name == LOCK or any(path.match(pattern) for pattern in keep):
                continue
            path.unlink() if path.is_file() or path.is_symlink() else shutil.rmtree(path)

    def _check_output_is_not_input(self) -> None:
        output = self.output.resolve()
        for cache in getattr(self.rows, "cache_files", None) or []:
            folder = Path(cache["filename"]).resolve().parent
            if folder == output or output in folder.parents or folder == self.shard_dir.resolve():
                raise ValueError(f"--output {self.output} is where the input rows are read from; choose another folder")

    # ----------------------------------------------------------------- work
    def score_one(self, shard: Shard, progress=None, device_rank: int | None = None) -> ShardRecord:
        """Score one shard into a temporary file, check it, publish it (a hard link) and write its record.

        `progress(n)` is called after each batch of n rows. If another process finished the shard
        meanwhile, its file is kept and this one's is discarded: finished shards are never rewritten.
        """
        import datasets

        part = self.rows.select(range(shard.start, shard.stop))
        final, record_file = self.shard_dir / shard.name, self.shard_dir / shard.record_name
        temporary = self.shard_dir / f".tmp-{final.stem}-{os.getpid()}.arrow"
        scorer = self.scorer

        def step(batch: dict[str, list]) -> dict[str, list]:
            out = scorer(batch, rank=device_rank)
            if progress is not None:
                progress(len(batch["rap_id"]))
            return out

        # The scorer's own `map` schema (features fixed up front, stale score columns dropped), with
        # the batches counted into the caller's progress instead of one bar per shard.
        features, stale = scorer.map_schema(part)
        bars_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        started = time.perf_counter()
        try:
            scored = part.map(step, batched=True, batch_size=self.map_batch_size, features=features,
                              remove_columns=stale or None, cache_file_name=str(temporary),
                              # Given, so datasets never hashes `step` (it would pickle the model).
                              new_fingerprint=f"{self.manifest()['model_fingerprint'][:40]}-{shard.index}")
            del scored
        finally:
            if bars_on:
                datasets.enable_progress_bars()
        record = self._record(shard, temporary, time.perf_counter() - started)
        try:
            # A hard link publishes the file only if no other writer did (a Ray task run again while
            # its first attempt lives on, an orphaned worker): finished shards are never rewritten.
            os.link(temporary, final)
        except FileExistsError:
            temporary.unlink()
            if not record_file.exists():  # published whole by a writer that died before its record
                record = self._record(shard, final, record.seconds)
                record.write(record_file)
            return ShardRecord.read(record_file)
        except OSError:  # a file system without hard links: a rename, which may replace a rival's file
            os.replace(temporary, final)
        else:
            temporary.unlink()
        record.write(record_file)
        return record

    def _record(self, shard: Shard, path: Path, seconds: float) -> ShardRecord:
        """The record of a freshly written shard file, after checking it holds exactly its rows."""
        from datasets import Dataset

        written = Dataset.from_file(str(path))
        ids = [str(i) for i in written["rap_id"]]
        if ids != self._ids()[shard.start : shard.stop]:
            raise ScoringError(f"shard {shard.index} was written with {len(ids)} rows, not input rows "
                               f"{shard.start}-{shard.stop - 1}, so it was not published: please report this bug")
        errors = sum(1 for e in written["rap_error"] if e) if "rap_error" in written.column_names else 0
        del written
        return ShardRecord(index=shard.index, start=shard.start, stop=shard.stop, rap_id_sha256=rap_ids_digest(ids),
                           settings=self.manifest()["model_fingerprint"], bytes=path.stat().st_size,
                           checksum=file_checksum(path), errors=errors, seconds=round(seconds, 3))

    def merge(self):
        """Check every shard against its record, then concatenate them in input order into `output`
        (written aside, then renamed: a kill while merging leaves the shards and no output, and the
        next run merges). A damaged or missing shard raises `IncompleteRun`; nothing is merged."""
        from datasets import Dataset, concatenate_datasets, load_from_disk

        manifest = self.manifest()
        shards = self.shards()
        damaged = self.discard_damaged()
        if missing := self.missing():
            why = f" ({damaged[0][1]})" if damaged else ""
            raise IncompleteRun(f"{describe_shards(missing)} of {len(shards)} could not be merged: missing or "
                                f"damaged{why}. Nothing was merged; run the same command to score them again.",
                                missing)
        parts = [Dataset.from_file(str(self.shard_dir / s.name)) for s in shards]
        merged = concatenate_datasets(parts)
        if rap_ids_digest(merged["rap_id"]) != manifest["rows"]["rap_id_sha256"]:
            raise ScoringError(f"The shards in {self.shard_dir} do not add up to the input rows; "
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
        else:  # what killed or retried workers left is not part of the result
            self._clear_shard_dir(keep=RUN_FILES)
        return load_from_disk(str(self.output))

    def complete_summary(self, seconds: float) -> ScoringSummary:
        """The summary of a run that found `output` already complete (it scored nothing)."""
        from datasets import load_from_disk

        return self.summary(load_from_disk(str(self.output)), seconds, 0, already_complete=True)

    def summary(self, merged, seconds: float, rows_scored: int, already_complete: bool = False) -> ScoringSummary:
        return ScoringSummary.of(merged, self.output, seconds, rows_scored, already_complete)
