"""`rap-hf select`: the rows a scored dataset keeps (CDE -> ACE -> DRM), every row's decision, and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


@dataclass
class SelectArguments:
    """Input and output of `rap-hf select`."""

    input: str = field(metadata={"help": "Scored rows (the output of rap-hf score)"})
    output: str = field(metadata={"help": "Folder for dataset/, decisions/, report.json, report.md, plots/"})
    split: str | None = field(default=None, metadata={"help": "Split of the input (needed when it has several)"})


class SelectCommand(ConfigCommand):
    """Its flags: `SelectArguments` and `SelectionConfig` (which `--config FILE.yaml` may set)."""

    name = "select"
    help = "select rows of a scored dataset (CDE -> ACE -> DRM) and write the report"

    def make_parser(self) -> ConfigArgumentParser:
        from ...config import SelectionConfig

        return self.config_parser((SelectArguments, SelectionConfig), config_types=(SelectionConfig,))

    def run(self, argv: Sequence[str]) -> int:
        args, config = self.make_parser().parse_args_and_config(argv)

        from ...data.io import load_rows
        from ...selection import select

        selection = select(load_rows(args.input, args.split, single=True), config)
        out = selection.save_to_disk(args.output)
        # The record `rap-hf score` wrote (model, RAPConfig) goes with the selection: `rap-hf push subset`
        # reads the scoring settings for the card from it.
        import shutil

        from ...hub import SCORING_RECORD, find_scoring_record

        record = find_scoring_record(selection)
        if record is None:  # a record an earlier selection into this folder left would describe other rows
            (out / SCORING_RECORD).unlink(missing_ok=True)
        elif record.resolve() != (out / SCORING_RECORD).resolve():
            shutil.copyfile(record, out / SCORING_RECORD)
        print(selection.report.to_markdown())
        print(f"Wrote the {selection.report.kept} kept rows to {out / 'dataset'}, every row's decision to "
              f"{out / 'decisions'}, and the report to {out}/report.md, report.json and plots/")
        return 0
