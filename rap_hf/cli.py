"""The `rap-hf` command line: a thin layer over the library, one subcommand per step.

Every step reads and writes ordinary `datasets` folders (or files), so steps compose in the shell
and each output can be opened with `datasets.load_from_disk`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

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


def _cmd_convert(args: argparse.Namespace) -> int:
    from .data.io import load_rows
    from .data.schema import to_rap_format

    ds = load_rows(args.dataset, args.split)
    rows = to_rap_format(ds, args.preset, question=args.question, answer=args.answer, images=args.images,
                         id=args.id, choices=args.choices, image_root=args.image_root, num_proc=args.num_proc)
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


def _cmd_score(args: argparse.Namespace) -> int:
    from .config import RAPConfig
    from .data.io import load_rows
    from .data.schema import CANONICAL_COLUMNS, to_rap_format
    from .distributed import ShardedScoring, process_state, run, run_local
    from .scoring import RAPScorer

    config = RAPConfig(**_config_values(args, RAPConfig))
    # Rank and world size under `accelerate launch` / torchrun; one process of one otherwise.
    state = process_state(cpu=True if (config.device or "").startswith("cpu") else None)
    if args.num_proc and args.num_proc > 1 and state.num_processes > 1:
        raise ValueError("--num-proc starts local workers itself: leave it out under accelerate launch / torchrun")
    # The main process loads (and converts) first, so the others reuse its datasets cache files.
    with state.main_process_first():
        ds = load_rows(args.dataset, args.split, single=True)
        if not all(c in ds.column_names for c in CANONICAL_COLUMNS):
            if state.is_main_process:
                print(f"Converting {args.dataset} to canonical RAP rows (preset auto)")
            ds = to_rap_format(ds)
    job = ShardedScoring(RAPScorer(args.model, config), ds, args.output, shard_rows=args.shard_rows,
                         map_batch_size=args.map_batch_size, keep_shards=args.keep_shards)
    try:
        if args.num_proc and args.num_proc > 1:
            summary = run_local(job, args.num_proc, overwrite=args.overwrite)
        else:
            summary = run(job, overwrite=args.overwrite, state=state)
    finally:
        if state.num_processes > 1:
            # Leave the process group before exiting: otherwise its threads can still be running at
            # interpreter exit, and a rank may abort ("terminate called without an active exception").
            state.destroy_process_group()
    if summary is not None:  # the main process; the others only wrote shards
        print(summary.line())
    return 0


def _config_values(args: argparse.Namespace, config_cls) -> dict:
    """Config fields from --config YAML, overridden by the flags given on the command line."""
    import dataclasses

    values: dict = {}
    if getattr(args, "config", None):
        import yaml

        with open(args.config) as f:
            loaded = yaml.safe_load(f) or {}
        known = {f.name for f in dataclasses.fields(config_cls)}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ValueError(f"{args.config}: unknown {config_cls.__name__} fields {', '.join(unknown)}")
        values.update(loaded)
    for f in dataclasses.fields(config_cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return values


def _add_config_flags(parser: argparse.ArgumentParser, config_cls, skip: Sequence[str] = ()) -> None:
    """One flag per field of a config dataclass (but `skip`), with its help; unset flags keep YAML or
    defaults."""
    import dataclasses

    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        help_text = (f.metadata.get("help", "") + f" (default: {f.default!r})").replace("%", "%%")
        if kind.split(" ")[0] == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif kind.startswith("Literal"):
            choices = [c.strip(" '\"") for c in kind[len("Literal["):-1].split(",")]
            parser.add_argument(flag, dest=f.name, choices=choices, default=None, help=help_text)
        else:
            cast = {"int": int, "float": float}.get(kind.split(" ")[0], str)
            parser.add_argument(flag, dest=f.name, type=cast, default=None, help=help_text)


def _cmd_select(args: argparse.Namespace) -> int:
    from .config import SelectionConfig
    from .data.io import load_rows
    from .selection import select

    config = SelectionConfig(**_config_values(args, SelectionConfig))
    selection = select(load_rows(args.input, args.split, single=True), config)
    out = selection.save_to_disk(args.output)
    print(selection.report.to_markdown())
    print(f"Wrote the {selection.report.kept} kept rows to {out / 'dataset'}, every row's decision to "
          f"{out / 'decisions'}, and the report to {out}/report.md, report.json and plots/")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.script import parse_args, train

    # TRL's parser owns every flag of `train` (--config, the recipe's fields and --help). `train`
    # prints where the checkpoint is, once (on the main process of a multi-process launch).
    train(*parse_args(args.train_argv))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(args.demo_argv)


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


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import QuickstartConfig, run_quickstart

    run_quickstart(QuickstartConfig(**_config_values(args, QuickstartConfig)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rap-hf", description="RAP data selection for vision-language RL.")
    parser.add_argument("--version", action="version", version=f"rap-hf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("world", help=AVAILABLE["world"])
    p.add_argument("--out", required=True, help="Folder to write (datasets.save_to_disk)")
    p.add_argument("--n", type=int, default=500, help="Total rows, train and test together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--image-size", type=int, default=84)
    p.set_defaults(func=_cmd_world)

    from .config import RAPConfig, SelectionConfig
    from .testing import TINY_VLM_KINDS

    p = sub.add_parser("tiny-vlm", help=AVAILABLE["tiny-vlm"])
    p.add_argument("--kind", choices=TINY_VLM_KINDS, default="qwen2_5_vl")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-hidden", type=int)
    p.add_argument("--text-layers", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--vocab-size", type=int)
    p.set_defaults(func=_cmd_tiny_vlm)

    p = sub.add_parser("convert", help=AVAILABLE["convert"])
    p.add_argument("--dataset", required=True, help="A save_to_disk folder, a data file, or a Hub id")
    p.add_argument("--split", help="Split to convert (all splits when omitted)")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="auto", help="auto, rap, trl, mm_eureka, easyr1 or mathvista")
    for name in ("question", "answer", "images", "id", "choices"):
        p.add_argument(f"--{name}", help=f"Source column of the {name}")
    p.add_argument("--image-root", help="Folder relative image paths are resolved against")
    p.add_argument("--num-proc", type=int)
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("export", help=AVAILABLE["export"])
    p.add_argument("--dataset", required=True, help="Canonical rows (a save_to_disk folder or data file)")
    p.add_argument("--split")
    p.add_argument("--to", choices=("trl", "easyr1", "verl"), required=True)
    p.add_argument("--out", required=True, help="A folder for trl, a .parquet file for easyr1 and verl")
    p.add_argument("--on-error", choices=("raise", "drop"), default="raise",
                   help="What to do with rows whose images cannot be decoded")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", help=AVAILABLE["verify"])
    p.add_argument("--response", required=True)
    p.add_argument("--answer", required=True)
    p.add_argument("--choices", help='Options as a JSON list, e.g. \'["red", "blue"]\'')
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("score", help=AVAILABLE["score"])
    p.add_argument("--model", required=True, help="The base VLM to score with: a Hub id or a local folder")
    p.add_argument("--dataset", required=True, help="Rows to score: a save_to_disk folder, a data file or a Hub id")
    p.add_argument("--split", help="Split of the dataset (needed when it has several)")
    p.add_argument("--output", required=True, help="Folder for the scored dataset (datasets.save_to_disk)")
    p.add_argument("--config", help="YAML file of RAPConfig fields; flags override it")
    p.add_argument("--map-batch-size", type=int, default=16, help="Rows per scorer call (datasets.map batch)")
    p.add_argument("--num-proc", type=int,
                   help="Local worker processes, one per GPU (rank r on cuda:r); under accelerate launch leave it out")
    p.add_argument("--shard-rows", type=int,
                   help="Rows per shard file in OUTPUT.shards/ (default 256; a resumed run keeps the size it started "
                        "with). A crash loses at most the shards in progress.")
    p.add_argument("--keep-shards", action="store_true", help="Keep OUTPUT.shards/ after merging into OUTPUT")
    p.add_argument("--overwrite", action="store_true",
                   help="Discard OUTPUT and OUTPUT.shards/ of an earlier run and score afresh (otherwise a re-run "
                        "resumes, and refuses if its settings differ)")
    _add_config_flags(p, RAPConfig)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("select", help=AVAILABLE["select"])
    p.add_argument("--input", required=True, help="Scored rows (the output of rap-hf score)")
    p.add_argument("--split", help="Split of the input (needed when it has several)")
    p.add_argument("--output", required=True, help="Folder for dataset/, decisions/, report.json, report.md, plots/")
    p.add_argument("--config", help="YAML file of SelectionConfig fields; flags override it")
    _add_config_flags(p, SelectionConfig)
    p.set_defaults(func=_cmd_select)

    # No flags of its own and no -h: argv after `train` goes, untouched, to TRL's parser (see main).
    p = sub.add_parser("train", help=AVAILABLE["train"], add_help=False)
    p.set_defaults(func=_cmd_train)

    from .evaluation import add_eval_arguments, run_eval_command

    p = add_eval_arguments(sub.add_parser("eval", help=AVAILABLE["eval"]))
    p.set_defaults(func=run_eval_command)

    p = sub.add_parser("push", help=AVAILABLE["push"])
    kinds = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    subset = kinds.add_parser("subset", help="a selection (rap-hf select --output) as a dataset repository")
    subset.add_argument("--selection", required=True, help="Folder written by rap-hf select --output")
    subset.add_argument("--source-dataset", help="Hub id of the dataset the rows came from")
    subset.add_argument("--source-revision", help="Its revision (commit or tag)")
    subset.add_argument("--scorer-model", help="Hub id of the model that scored the rows")
    subset.add_argument("--scoring-config", help="The RAPConfig YAML the rows were scored with (for the card)")
    checkpoint = kinds.add_parser("checkpoint", help="a trained model folder as a model repository")
    checkpoint.add_argument("--folder", required=True, help="rap-hf train's output, or a checkpoint-N folder")
    checkpoint.add_argument("--eval-summary", help="summary.json written by rap-hf eval (model-index results)")
    checkpoint.add_argument("--base-model", help="Hub id of the model that was trained")
    checkpoint.add_argument("--training-dataset", help="Hub id of the training subset (e.g. pushed with push subset)")
    space = kinds.add_parser("space", help="spaces_demo/ as a Gradio Space")
    space.add_argument("--space-dir", help="The Space folder (default: spaces_demo/ of this checkout)")
    for kind in (subset, checkpoint, space):
        kind.add_argument("--repo-id", required=True, help="namespace/name on the Hub")
        kind.add_argument("--local-dir", help="Write the repository tree to this new folder instead of uploading")
        kind.add_argument("--private", action="store_true", help="Create the repository as private")
        kind.add_argument("--message", help="Commit message")
        if kind is not space:
            kind.add_argument("--license", help="License id for the card metadata (e.g. apache-2.0)")
    p.set_defaults(func=_cmd_push)

    # Its flags belong to rap_hf.demo.main, which also serves spaces_demo/app.py.
    p = sub.add_parser("demo", help=AVAILABLE["demo"], add_help=False)
    p.set_defaults(func=_cmd_demo)

    from .quickstart import QuickstartConfig

    p = sub.add_parser("quickstart", help=AVAILABLE["quickstart"],
                       description="Runs every RAP stage for real and writes report.json, report.md, plots, the "
                                   "subset, the checkpoints and the Hub trees to --out. The first run warms up the "
                                   "embedded scorer (cached afterwards).")
    p.add_argument("--out", dest="output_dir", help=QuickstartConfig.help()["output_dir"] + " (default: rap-quickstart)")
    _add_config_flags(p, QuickstartConfig, skip=("output_dir",))
    p.set_defaults(func=_cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_argv = rest
    elif args.command == "demo":
        args.demo_argv = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotImplementedError) as error:
        print(f"rap-hf {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
