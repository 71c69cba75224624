"""`rap-hf convert`: canonical RAP rows (`to_rap_format`) from a folder, a data file or a Hub id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...data.column_mapping import ColumnMapping
from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


@dataclass
class ConvertArguments(ColumnMapping):
    """Input and output of `rap-hf convert`, and how the source columns map to canonical rows."""

    dataset: str = field(metadata={"help": "Rows to convert: a save_to_disk folder, a data file or a Hub id"})
    out: str = field(metadata={"help": "Folder to write the canonical rows to (datasets.save_to_disk)"})
    split: str | None = field(default=None, metadata={"help": "Split to convert (all splits when omitted)"})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for the conversion (datasets.map)"})


class ConvertCommand(ConfigCommand):
    name = "convert"
    help = "convert a dataset to canonical RAP rows (to_rap_format)"

    def make_parser(self) -> ConfigArgumentParser:
        return self.config_parser(ConvertArguments, config_types=())

    def run(self, argv: Sequence[str]) -> int:
        (args,) = self.make_parser().parse_args_and_config(argv)

        from ...data.io import load_rows
        from ...data.conversion import to_rap_format

        ds = load_rows(args.dataset, args.split)
        rows = to_rap_format(ds, **args.rap_format_kwargs(), num_proc=args.num_proc)
        rows.save_to_disk(args.out)
        print(f"Wrote {len(rows)} canonical rows to {args.out}")
        return 0
