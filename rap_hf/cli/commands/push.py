"""`rap-hf push subset|checkpoint|space`: publish to the Hub in one commit, with its card (or write the
repository tree to a folder with --local-dir)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..command import ArgparseCommand


class PushCommand(ArgparseCommand):
    name = "push"
    help = "publish a subset, a checkpoint or the Space to the Hub in one commit, with its card"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ...cli_args import HelpFormatter

        kinds = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
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
        checkpoint.add_argument("--training-dataset",
                                help="Hub id of the training subset (e.g. pushed with push subset)")
        space = kinds.add_parser("space", help="spaces_demo/ as a Gradio Space", formatter_class=HelpFormatter)
        space.add_argument("--space-dir", help="The Space folder (default: spaces_demo/ of this checkout)")
        for kind in (subset, checkpoint, space):
            kind.add_argument("--repo-id", required=True, help="namespace/name on the Hub")
            kind.add_argument("--local-dir", help="Write the repository tree to this new folder instead of uploading")
            kind.add_argument("--private", action="store_true", help="Create the repository as private")
            kind.add_argument("--message", help="Commit message")
            if kind is not space:
                kind.add_argument("--license", help="License id for the card metadata (e.g. apache-2.0)")

    def run(self, args: argparse.Namespace) -> int:
        from ... import hub

        # The token comes from HF_TOKEN or `hf auth login`, never from a flag (shell history keeps flags).
        where = dict(local_dir=args.local_dir, private=args.private or None, commit_message=args.message)
        if args.what == "subset":
            from ...selection import Selection

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
            result = hub.push_checkpoint(args.folder, args.repo_id, eval_results=summary,
                                         base_model=args.base_model, training_dataset=args.training_dataset,
                                         license=args.license, **where)
        else:
            result = hub.push_space(args.repo_id, space_dir=args.space_dir, **where)
        if args.local_dir:
            print(f"Wrote the repository tree of {args.repo_id} to {result} (nothing uploaded)")
        else:
            print(f"Pushed {args.what} to {args.repo_id}: {getattr(result, 'commit_url', result)}")
        return 0
