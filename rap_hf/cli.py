"""The `rap-hf` command line: a thin layer over the library, one subcommand per step.

Every step reads and writes ordinary `datasets` folders (or files), so steps compose in the shell
and each output can be opened with `datasets.load_from_disk`.

Commands with a config (`convert`, `score`, `select`, `eval`, `quickstart`, `train`, `demo`) take
their flags from dataclasses, through `rap_hf.cli_args.ConfigArgumentParser` (see `command_parser`):
a field added to a config is a flag of its command, with its help, spelled `--some-name` or
`--some_name`. The commands that read rows (`convert`, `score`, `eval`, `quickstart`) share one
column-mapping vocabulary, `rap_hf.data.schema.ColumnMapping` (`--preset --question --answer
--images --id --choices --image-root`). The small commands without a config (`world`, `tiny-vlm`,
`export`, `verify`, `push`) declare their few flags with argparse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .data.schema import ColumnMapping

if TYPE_CHECKING:
    from .cli_args import ConfigArgumentParser

# Exit statuses of `rap-hf score` (the other commands use 0, 1 and 2): 0 only when OUTPUT holds every
# row; 128 + N when stopped by signal N (130 Ctrl-C, 143 SIGTERM), finished shards kept.
EXIT_OK = 0
EXIT_FAILED = 1  # an error, one line (or every row failed: the output holds only rap_error)
EXIT_USAGE = 2  # a flag argparse refused
EXIT_INCOMPLETE = 3  # shards missing (a worker died): finished ones kept, the same command scores the rest
EXIT_BUSY = 4  # another run is writing the same output
# Errors a command reports in one line (`rap-hf COMMAND: error: ...`, status 1) rather than a traceback.
ONE_LINE_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotImplementedError, OSError, ImportError)

AVAILABLE = {
    "quickstart": "the whole pipeline on the embedded world (world -> warm-up -> scoring -> selection -> GRPO -> "
                  "evaluation -> report)",
    "world": "write the embedded visual world (train/test) to a folder",
    "tiny-vlm": "write a tiny random-weight VLM (Qwen2.5-VL, Qwen2-VL, LLaVA) to a folder",
    "convert": "convert a dataset to canonical RAP rows (to_rap_format)",
    "export": "export canonical rows for TRL, EasyR1 or verl",
    "verify": "check one response against a ground-truth answer",
    "score": "add RAP's score columns (rollout CDE, ACE, logit-CDE) to a dataset; sharded, resumable, accelerate-ready",
    "select": "select rows of a scored dataset (CDE -> ACE -> DRM) and write the report",
    "train": "GRPO training on a selection from a YAML recipe (RAPGRPOTrainer; --help lists every flag)",
    "eval": "answer accuracy of a model on a canonical benchmark split (rows.jsonl + summary.json)",
    "push": "publish a subset, a checkpoint or the Space to the Hub in one commit, with its card",
    "demo": "serve the Gradio Space locally (the embedded world by default; --help lists its flags)",
}
QUICKSTART_DESCRIPTION = (
    "Runs every RAP stage for real and writes report.json, report.md, plots, the subset, the checkpoints and the "
    "Hub trees to --out. The first run warms up the embedded scorer (cached afterwards)."
)


# --------------------------------------------------------------------------- commands' own flags
# What a command reads, writes and how it runs; its config dataclass (RAPConfig, ...) holds the rest.
# Those that read rows take the ColumnMapping fields too (--preset --question --answer --images --id
# --choices --image-root), for rows that are not canonical yet.
@dataclass
class ConvertArguments(ColumnMapping):
    """Input and output of `rap-hf convert`, and how the source columns map to canonical rows."""

    dataset: str = field(metadata={"help": "Rows to convert: a save_to_disk folder, a data file or a Hub id"})
    out: str = field(metadata={"help": "Folder to write the canonical rows to (datasets.save_to_disk)"})
    split: str | None = field(default=None, metadata={"help": "Split to convert (all splits when omitted)"})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for the conversion (datasets.map)"})


@dataclass
class ScoreArguments(ColumnMapping):
    """Input, output and processes of `rap-hf score` (the column mapping applies to rows not canonical yet)."""

    model: str = field(metadata={"help": "The base VLM to score with: a Hub id or a local folder"})
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
    engine: str = field(default="processes", metadata={
        "choices": ["processes", "ray"],
        "help": "What runs the shards: 'processes' (this process, --num-proc local workers, or the ranks of "
                "accelerate launch / torchrun) or 'ray' (one Ray task per shard on a Ray cluster: many nodes, "
                "pre-emptible workers; pip install 'rap-hf[ray]')"})
    ray_address: str | None = field(default=None, metadata={
        "help": "With --engine ray: the cluster to join ('auto' on a node of a running cluster); default: start "
                "a local one with --num-proc CPUs (all of them when omitted)"})
    ray_max_retries: int = field(default=3, metadata={
        "help": "With --engine ray: how often a shard whose worker or node died is scored again elsewhere"})


@dataclass
class SelectArguments:
    """Input and output of `rap-hf select`."""

    input: str = field(metadata={"help": "Scored rows (the output of rap-hf score)"})
    output: str = field(metadata={"help": "Folder for dataset/, decisions/, report.json, report.md, plots/"})
    split: str | None = field(default=None, metadata={"help": "Split of the input (needed when it has several)"})


@dataclass
class EvalArguments(ColumnMapping):
    """Model, benchmark and output of `rap-hf eval` (the column mapping applies to rows not canonical yet)."""

    model: str = field(metadata={"help": "The VLM to evaluate: a Hub id or a local folder"})
    dataset: str = field(metadata={"help": "Benchmark rows: a save_to_disk folder, a data file or a Hub id "
                                           "(converted to canonical rows if needed)"})
    output: str = field(metadata={"help": "Folder for rows.jsonl and summary.json"})
    split: str | None = field(default=None, metadata={
        "help": "Split to evaluate (default: 'test' when the dataset has several splits)"})


def command_parser(command: str) -> ConfigArgumentParser:
    """The parser of a command whose flags come from dataclasses (convert, score, select, eval,
    quickstart, train, demo). `.parse_args_and_config(argv)` returns one instance per dataclass, e.g.
    `(ConvertArguments,)` for convert, `(ScoreArguments, RAPConfig)` for score,
    `(TrainScriptArguments, RAPGRPOConfig, ModelConfig)` for train."""
    from .cli_args import ConfigArgumentParser

    prog = f"rap-hf {command}"
    if command == "convert":
        return ConfigArgumentParser(ConvertArguments, config_types=(), prog=prog, description=AVAILABLE[command])
    if command == "score":
        from .config import RAPConfig

        return ConfigArgumentParser((ScoreArguments, RAPConfig), config_types=(RAPConfig,), prog=prog,
                                    description=AVAILABLE[command])
    if command == "select":
        from .config import SelectionConfig

        return ConfigArgumentParser((SelectArguments, SelectionConfig), config_types=(SelectionConfig,), prog=prog,
                                    description=AVAILABLE[command])
    if command == "eval":
        from .config import EvalConfig

        return ConfigArgumentParser((EvalArguments, EvalConfig), config_types=(EvalConfig,), prog=prog,
                                    description=AVAILABLE[command])
    if command == "quickstart":
        from .quickstart.config import QuickstartConfig

        return ConfigArgumentParser(QuickstartConfig, prog=prog, description=QUICKSTART_DESCRIPTION)
    if command == "train":
        from .training.script import make_parser

        return make_parser()
    if command == "demo":
        from .demo import make_parser

        return make_parser()
    raise ValueError(f"rap-hf {command} has no config dataclass; its flags are in build_parser()")


# --------------------------------------------------------------------------- commands
def _cmd_world(args: argparse.Namespace) -> int:
    from .data.synthetic import make_visual_world

    world = make_visual_world(args.n, seed=args.seed, test_fraction=args.test_fraction, image_size=args.image_size)
    world.save_to_disk(args.out)
    sizes = ", ".join(f"{split}: {len(part)}" for split, part in world.items())
    print(f"Wrote the visual world ({sizes}) to {args.out}")
    return 0


def _cmd_tiny_vlm(args: argparse.Namespace) -> int:
    from .testing import build_tiny_vlm

    overrides = {k: v for k, v in (("text_hidden", args.text_hidden), ("text_layers", args.text_layers),
                                    ("image_size", args.image_size), ("vocab_size", args.vocab_size)) if v is not None}
    path = build_tiny_vlm(args.kind, args.out, seed=args.seed, **overrides)
    print(f"Wrote a tiny {args.kind} model to {path}")
    return 0


def _cmd_convert(argv: Sequence[str]) -> int:
    (args,) = command_parser("convert").parse_args_and_config(argv)

    from .data.io import load_rows
    from .data.schema import to_rap_format

    ds = load_rows(args.dataset, args.split)
    rows = to_rap_format(ds, **args.rap_format_kwargs(), num_proc=args.num_proc)
    rows.save_to_disk(args.out)
    print(f"Wrote {len(rows)} canonical rows to {args.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .data import exporters
    from .data.io import load_rows

    ds = load_rows(args.dataset, args.split, single=True)
    if args.to == "trl":
        out = exporters.to_trl(ds, on_error=args.on_error)
        out.save_to_disk(args.out)
    else:
        out = exporters.to_easyr1(ds, on_error=args.on_error) if args.to == "easyr1" else exporters.to_verl(
            ds, on_error=args.on_error)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out.to_parquet(args.out)
    print(f"Wrote {len(out)} rows in {args.to} layout to {args.out}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import extract_answer, is_correct, is_formatted

    choices = json.loads(args.choices) if args.choices else None
    result = {
        "extracted": extract_answer(args.response),
        "correct": is_correct(args.response, args.answer, choices),
        "formatted": is_formatted(args.response),
    }
    print(json.dumps(result))
    return 0


def _cmd_score(argv: Sequence[str]) -> int:
    # Parsed before the slow imports, so --help and flag errors come at once.
    args, config = command_parser("score").parse_args_and_config(argv)

    from .data.io import load_rows
    from .data.schema import CANONICAL_COLUMNS, to_rap_format
    from .distributed import IncompleteRun, OutputBusy, ScoringError, ShardedScoring, process_state, run, run_local
    from .references import check_reference
    from .scoring import RAPScorer

    # A mistyped --model fails now, in one line, not once the rows are converted and a shard folder made.
    args.model = check_reference(args.model, "model")
    # Rank and world size under `accelerate launch` / torchrun; one process of one otherwise.
    state = process_state(cpu=True if (config.device or "").startswith("cpu") else None)
    if args.num_proc and args.num_proc > 1 and state.num_processes > 1:
        raise ValueError("--num-proc starts local workers itself: leave it out under accelerate launch / torchrun")
    # The main process loads (and converts) first, so the others reuse its datasets cache files.
    with state.main_process_first():
        ds = load_rows(args.dataset, args.split, single=True)
        if args.explicit or not all(c in ds.column_names for c in CANONICAL_COLUMNS):
            if state.is_main_process:
                print(f"Converting {args.dataset} to canonical RAP rows (preset {args.preset})")
            ds = to_rap_format(ds, **args.rap_format_kwargs())
    if len(ds) == 0:  # before anything is written
        split = f" (split {args.split})" if args.split else ""
        raise ValueError(f"the dataset has no rows: {args.dataset}{split} holds nothing to score")
    job = ShardedScoring(RAPScorer(args.model, config), ds, args.output, shard_rows=args.shard_rows,
                         map_batch_size=args.map_batch_size, keep_shards=args.keep_shards)
    try:
        with _stopped_by_sigterm(), job.cleaned_up_on_failure():
            if args.engine == "ray":
                from .distributed.ray_engine import run_ray

                summary = run_ray(job, address=args.ray_address, num_cpus=args.num_proc,
                                  max_retries=args.ray_max_retries, overwrite=args.overwrite)
            elif args.num_proc and args.num_proc > 1:
                summary = run_local(job, args.num_proc, overwrite=args.overwrite)
            else:
                summary = run(job, overwrite=args.overwrite, state=state)
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
        # The main process's decisions reach every rank (executors.run): one of them says why.
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
    from .distributed import describe_shards

    try:
        missing = job.missing()
    except Exception:  # the plan cannot be read (the manifest's settings differ): say nothing of shards
        return ""
    return f" ({describe_shards(missing)} still to score)" if missing else ""


def _cmd_select(argv: Sequence[str]) -> int:
    args, config = command_parser("select").parse_args_and_config(argv)

    from .data.io import load_rows
    from .selection import select

    selection = select(load_rows(args.input, args.split, single=True), config)
    out = selection.save_to_disk(args.output)
    # The record `rap-hf score` wrote (model, RAPConfig) goes with the selection: `rap-hf push subset`
    # reads the scoring settings for the card from it.
    import shutil

    from .hub import SCORING_RECORD, find_scoring_record

    record = find_scoring_record(selection)
    if record is None:  # a record an earlier selection into this folder left would describe other rows
        (out / SCORING_RECORD).unlink(missing_ok=True)
    elif record.resolve() != (out / SCORING_RECORD).resolve():
        shutil.copyfile(record, out / SCORING_RECORD)
    print(selection.report.to_markdown())
    print(f"Wrote the {selection.report.kept} kept rows to {out / 'dataset'}, every row's decision to "
          f"{out / 'decisions'}, and the report to {out}/report.md, report.json and plots/")
    return 0


def _cmd_train(argv: Sequence[str]) -> int:
    from .training.script import parse_args, train

    # `train` prints where the checkpoint is, once (on the main process of a multi-process launch).
    train(*parse_args(argv))
    return 0


def _cmd_eval(argv: Sequence[str]) -> int:
    args, config = command_parser("eval").parse_args_and_config(argv)

    from .evaluation import evaluate_model

    result = evaluate_model(args.model, args.dataset, split=args.split, config=config,
                            mapping=args.rap_format_kwargs())
    paths = result.save(args.output)
    print(result.table())
    print(f"Wrote {len(result.rows)} rows to {paths['rows']} and the summary to {paths['summary']}")
    return 0


def _cmd_demo(argv: Sequence[str]) -> int:
    from .demo import main as demo_main
    from .demo import parse_args
    from .references import check_reference

    # A mistyped --dataset or --model fails here, in one line, instead of on the page once it is served.
    config = parse_args(argv)
    if config.dataset is not None:
        check_reference(config.dataset, "dataset")
    if config.model is not None:
        check_reference(config.model, "model")
    # rap_hf.demo.main parses (with command_parser("demo")'s parser): spaces_demo/app.py calls it too.
    return demo_main(argv)


def _cmd_quickstart(argv: Sequence[str]) -> int:
    (config,) = command_parser("quickstart").parse_args_and_config(argv)

    from .quickstart import run_quickstart

    run_quickstart(config)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from . import hub

    # The token comes from HF_TOKEN or `hf auth login`, never from a flag (shell history keeps flags).
    where = dict(local_dir=args.local_dir, private=args.private or None, commit_message=args.message)
    if args.what == "subset":
        from .selection import Selection

        scoring = None
        if args.scoring_config:
            import yaml

            scoring = yaml.safe_load(Path(args.scoring_config).read_text())
        selection = Selection.load_from_disk(args.selection)
        hub.refuse_empty_subset(selection, args.repo_id, where=f"the selection in {args.selection}")
        result = hub.push_subset(selection, args.repo_id, source_dataset=args.source_dataset,
                                 source_revision=args.source_revision, license=args.license,
                                 scorer=scoring, scorer_model=args.scorer_model, **where)
    elif args.what == "checkpoint":
        summary = json.loads(Path(args.eval_summary).read_text()) if args.eval_summary else None
        result = hub.push_checkpoint(args.folder, args.repo_id, eval_results=summary, base_model=args.base_model,
                                     training_dataset=args.training_dataset, license=args.license, **where)
    else:
        result = hub.push_space(args.repo_id, space_dir=args.space_dir, **where)
    if args.local_dir:
        print(f"Wrote the repository tree of {args.repo_id} to {result} (nothing uploaded)")
    else:
        print(f"Pushed {args.what} to {args.repo_id}: {getattr(result, 'commit_url', result)}")
    return 0


# Parsed by command_parser(name) from argv after the command; build_parser only lists them.
CONFIG_COMMANDS = {"convert": _cmd_convert, "score": _cmd_score, "select": _cmd_select, "train": _cmd_train,
                   "eval": _cmd_eval, "demo": _cmd_demo, "quickstart": _cmd_quickstart}


def build_parser() -> argparse.ArgumentParser:
    """`rap-hf` and its commands. A command of `CONFIG_COMMANDS` is a name here (no flags, no -h):
    what follows it goes to `command_parser(name)` (see `main`)."""
    from .cli_args import HelpFormatter
    from .testing import TINY_VLM_KINDS

    parser = argparse.ArgumentParser(prog="rap-hf", description="RAP data selection for vision-language RL.")
    parser.add_argument("--version", action="version", version=f"rap-hf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        if name in CONFIG_COMMANDS:
            p = sub.add_parser(name, help=AVAILABLE[name], add_help=False)
            p.set_defaults(func=CONFIG_COMMANDS[name], own_flags=True)
        else:
            p = sub.add_parser(name, help=AVAILABLE[name], description=AVAILABLE[name], formatter_class=HelpFormatter)
        return p

    command("quickstart")

    p = command("world")
    p.add_argument("--out", required=True, help="Folder to write (datasets.save_to_disk)")
    p.add_argument("--n", type=int, default=500, help="Total rows, train and test together")
    p.add_argument("--seed", type=int, default=0, help="Seed of everything: tasks, shapes, colours, positions, split")
    p.add_argument("--test-fraction", type=float, default=0.2, help="Share of the rows in the held-out test split")
    p.add_argument("--image-size", type=int, default=84, help="Side of the square images, in pixels")
    p.set_defaults(func=_cmd_world)

    p = command("tiny-vlm")
    p.add_argument("--kind", choices=TINY_VLM_KINDS, default="qwen2_5_vl", help="The model family")
    p.add_argument("--out", required=True, help="Folder to write the model and processor to")
    p.add_argument("--seed", type=int, default=0, help="Seed of the tokenizer corpus and the weights")
    p.add_argument("--text-hidden", type=int, help="Hidden size of the text model (default: 64)")
    p.add_argument("--text-layers", type=int, help="Layers of the text model (default: 2)")
    p.add_argument("--image-size", type=int, help="Images reach the vision tower at about this squared pixels "
                                                  "(default: 56)")
    p.add_argument("--vocab-size", type=int, help="Vocabulary size (default: 640)")
    p.set_defaults(func=_cmd_tiny_vlm)

    command("convert")

    p = command("export")
    p.add_argument("--dataset", required=True, help="Canonical rows (a save_to_disk folder or data file)")
    p.add_argument("--split", help="Split of the rows (needed when they have several)")
    p.add_argument("--to", choices=("trl", "easyr1", "verl"), required=True, help="The layout to write")
    p.add_argument("--out", required=True, help="A folder for trl, a .parquet file for easyr1 and verl")
    p.add_argument("--on-error", choices=("raise", "drop"), default="raise",
                   help="What to do with rows whose images cannot be decoded")
    p.set_defaults(func=_cmd_export)

    p = command("verify")
    p.add_argument("--response", required=True, help="The model's response, its final answer in \\boxed{}")
    p.add_argument("--answer", required=True, help="The ground-truth answer")
    p.add_argument("--choices", help='Options as a JSON list, e.g. \'["red", "blue"]\'')
    p.set_defaults(func=_cmd_verify)

    for name in ("score", "select", "train", "eval"):
        command(name)

    p = command("push")
    kinds = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    subset = kinds.add_parser("subset", help="a selection (rap-hf select --output) as a dataset repository",
                              formatter_class=HelpFormatter)
    subset.add_argument("--selection", required=True, help="Folder written by rap-hf select --output")
    subset.add_argument("--source-dataset", help="Hub id of the dataset the rows came from")
    subset.add_argument("--source-revision", help="Its revision (commit or tag)")
    subset.add_argument("--scorer-model", help="Hub id of the model that scored the rows")
    subset.add_argument("--scoring-config", help="The RAPConfig YAML the rows were scored with (for the card)")
    checkpoint = kinds.add_parser("checkpoint", help="a trained model folder as a model repository",
                                  formatter_class=HelpFormatter)
    checkpoint.add_argument("--folder", required=True, help="rap-hf train's output, or a checkpoint-N folder")
    checkpoint.add_argument("--eval-summary", help="summary.json written by rap-hf eval (model-index results)")
    checkpoint.add_argument("--base-model", help="Hub id of the model that was trained")
    checkpoint.add_argument("--training-dataset", help="Hub id of the training subset (e.g. pushed with push subset)")
    space = kinds.add_parser("space", help="spaces_demo/ as a Gradio Space", formatter_class=HelpFormatter)
    space.add_argument("--space-dir", help="The Space folder (default: spaces_demo/ of this checkout)")
    for kind in (subset, checkpoint, space):
        kind.add_argument("--repo-id", required=True, help="namespace/name on the Hub")
        kind.add_argument("--local-dir", help="Write the repository tree to this new folder instead of uploading")
        kind.add_argument("--private", action="store_true", help="Create the repository as private")
        kind.add_argument("--message", help="Commit message")
        if kind is not space:
            kind.add_argument("--license", help="License id for the card metadata (e.g. apache-2.0)")
    p.set_defaults(func=_cmd_push)

    command("demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `rap-hf` on argv (sys.argv[1:] when None); return the exit status. Errors of a run are one
    line, `rap-hf COMMAND: error: ...`, and status 1; usage errors exit with status 2 (argparse)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    own_flags = getattr(args, "own_flags", False)
    if rest and not own_flags:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        # A config command parses `rest` itself: its usage errors exit with status 2 like argparse's.
        return args.func(rest) if own_flags else args.func(args)
    except ONE_LINE_ERRORS as error:
        print(f"rap-hf {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, and the shell's status for it (128 + SIGINT)
        print(f"rap-hf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
