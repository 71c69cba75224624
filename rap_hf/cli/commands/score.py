"""`rap-hf score`: RAP's score columns added to a dataset, in shards, resumable, on any number of processes.

Its exit statuses (`rap_hf.cli.command`): 0 when OUTPUT holds every row, 1 on an error, 3 when shards
are missing, 4 when another run writes the same output, 128 + N when stopped by signal N (SIGTERM is
turned into an exception here, so a stopped run ends like Ctrl-C: finished shards kept, one line).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...flags import RegistryFlag
from ...data.column_mapping import ColumnMapping
from ..command import EXIT_BUSY, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, ONE_LINE_ERRORS, ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


def engine_flag() -> dict:
    """`--engine`'s choices and help: the executors registered now (`rap_hf.distributed.registry`)."""
    from ...distributed.registry import EXECUTORS, engine_help

    return {"choices": list(EXECUTORS), "help": engine_help()}


@dataclass
class ScoreArguments(ColumnMapping):
    """Input, output and processes of `rap-hf score` (the column mapping applies to rows not canonical yet)."""

    model: str = field(metadata={"help": "The base VLM to score with: a Hub id or a local folder (with --backend "
                                         "server: its name as the servers list it at /v1/models)"})
    dataset: str = field(metadata={"help": "Rows to score: a save_to_disk folder, a data file or a Hub id"})
    output: str = field(metadata={"help": "Folder for the scored dataset (datasets.save_to_disk)"})
    split: str | None = field(default=None, metadata={"help": "Split of the dataset (needed when it has several)"})
    map_batch_size: int = field(default=16, metadata={"help": "Rows per scorer call (datasets.map batch)"})
    num_proc: int | None = field(default=None, metadata={
        "help": "Local worker processes, one per GPU (rank r on cuda:r); under accelerate launch leave it out"})
    shard_rows: int | None = field(default=None, metadata={
        "help": "Rows per shard file in OUTPUT.shards/ (default 256; a resumed run keeps the size it started "
                "with). A crash loses at most the shards in progress."})
    keep_shards: bool = field(default=False, metadata={"help": "Keep OUTPUT.shards/ after merging into OUTPUT"})
    overwrite: bool = field(default=False, metadata={
        "help": "Discard OUTPUT and OUTPUT.shards/ of an earlier run and score afresh (otherwise a re-run "
                "resumes, and refuses if its settings differ)"})
    engine: str = field(default="processes", metadata=RegistryFlag(engine_flag))
    ray_address: str | None = field(default=None, metadata={
        "help": "With --engine ray: the cluster to join ('auto' on a node of a running cluster); default: start "
                "a local one with --num-proc CPUs (all of them when omitted)"})
    ray_max_retries: int = field(default=3, metadata={
        "help": "With --engine ray: how often a shard whose worker or node died is scored again elsewhere"})


class ScoreCommand(ConfigCommand):
    """Its flags: `ScoreArguments` and `RAPConfig` (which `--config FILE.yaml` may set)."""

    name = "score"
    help = ("add RAP's score columns (rollout CDE, ACE, logit-CDE) to a dataset; sharded, resumable, "
            "accelerate-ready")

    def make_parser(self) -> ConfigArgumentParser:
        from ...config import RAPConfig  # looked up now: a test may stand a grown RAPConfig in for it

        return self.config_parser((ScoreArguments, RAPConfig), config_types=(RAPConfig,))

    def run(self, argv: Sequence[str]) -> int:
        # Parsed before the slow imports, so --help and flag errors come at once.
        args, config = self.make_parser().parse_args_and_config(argv)

        from ...data.conversion import as_canonical
        from ...data.io import load_rows
        from ...distributed import (IncompleteRun, OutputBusy, ScoringError, ShardedScoring, executor_for,
                                    process_state)
        from ...references import check_reference
        from ...scoring import RAPScorer

        # A mistyped --model fails now, in one line, not once the rows are converted and a shard folder made.
        # Through servers, --model is the name they list, checked when they are (before anything is written).
        if not config.uses_server:
            args.model = check_reference(args.model, "model")
        elif config.local_model is not None:
            config.local_model = check_reference(config.local_model, "local_model")
        # Rank and world size under `accelerate launch` / torchrun; one process of one otherwise.
        state = process_state(cpu=True if (config.device or "").startswith("cpu") else None)
        executor = executor_for(args.engine).from_arguments(args, state)

        def say_converting() -> None:
            if state.is_main_process:
                print(f"Converting {args.dataset} to canonical RAP rows (preset {args.preset})")

        # The main process loads (and converts) first, so the others reuse its datasets cache files.
        with state.main_process_first():
            ds = as_canonical(load_rows(args.dataset, args.split, single=True), args, on_convert=say_converting)
        if len(ds) == 0:  # before anything is written
            split = f" (split {args.split})" if args.split else ""
            raise ValueError(f"the dataset has no rows: {args.dataset}{split} holds nothing to score")
        scorer = RAPScorer(args.model, config)
        if state.is_main_process and (skipped := scorer.skipped_steps()):  # once, not by every worker
            print(f"rap-hf score: {skipped}", file=sys.stderr)
        job = ShardedScoring(scorer, ds, args.output, shard_rows=args.shard_rows,
                             map_batch_size=args.map_batch_size, keep_shards=args.keep_shards)
        try:
            with _stopped_by_sigterm(), job.cleaned_up_on_failure():
                summary = executor.run(job, overwrite=args.overwrite)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (pre-emption; torchrun stopping the ranks)
            if state.is_main_process:
                what = "interrupted" if not isinstance(stop, _Stopped) else f"stopped by {stop.signal.name}"
                print(f"rap-hf score: {what}; {job.rows_on_disk()} of {len(ds)} rows are scored and safe in "
                      f"{job.shard_dir}{_still_to_score(job)}: run the same command to resume", file=sys.stderr)
            return 128 + (stop.signal if isinstance(stop, _Stopped) else signal.SIGINT)
        except (IncompleteRun, OutputBusy) as error:
            if state.is_main_process:
                print(f"rap-hf score: {error}", file=sys.stderr)
            return EXIT_INCOMPLETE if isinstance(error, IncompleteRun) else EXIT_BUSY
        except (ScoringError, *ONE_LINE_ERRORS) as error:
            # The main process's decisions reach every rank (Executor.agree): one of them says why.
            if state.is_main_process:
                print(f"rap-hf score: error: {error}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            if state.num_processes > 1:
                # Leave the process group before exiting: otherwise its threads can still be running at
                # interpreter exit, and a rank may abort ("terminate called without an active exception").
                state.destroy_process_group()
        if summary is not None:  # the main process; the others only wrote shards
            print(summary.report())
            if summary.all_failed:
                return EXIT_FAILED
        return EXIT_OK


class _Stopped(KeyboardInterrupt):
    """SIGTERM turned into an exception, so a stopped run ends like Ctrl-C: finished shards kept, one line."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal = signal.Signals(signum)


@contextlib.contextmanager
def _stopped_by_sigterm():
    def stop(signum, frame):
        raise _Stopped(signum)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _still_to_score(job) -> str:
    from ...distributed import describe_shards

    try:
        missing = job.missing()
    except Exception:  # the plan cannot be read (the manifest's settings differ): say nothing of shards
        return ""
    return f" ({describe_shards(missing)} still to score)" if missing else ""
