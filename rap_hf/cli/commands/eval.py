"""`rap-hf eval`: answer accuracy of a model on a benchmark split (rows.jsonl and summary.json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...data.column_mapping import ColumnMapping
from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


@dataclass
class EvalArguments(ColumnMapping):
    """Model, benchmark and output of `rap-hf eval` (the column mapping applies to rows not canonical yet)."""

    model: str = field(metadata={"help": "The VLM to evaluate: a Hub id or a local folder (with --backend server: "
                                         "its name as the servers list it at /v1/models)"})
    dataset: str = field(metadata={"help": "Benchmark rows: a save_to_disk folder, a data file or a Hub id "
                                           "(converted to canonical rows if needed)"})
    output: str = field(metadata={"help": "Folder for rows.jsonl and summary.json"})
    split: str | None = field(default=None, metadata={
        "help": "Split to evaluate (default: 'test' when the dataset has several splits)"})


class EvalCommand(ConfigCommand):
    """Its flags: `EvalArguments` and `EvalConfig` (which `--config FILE.yaml` may set)."""

    name = "eval"
    help = "answer accuracy of a model on a canonical benchmark split (rows.jsonl + summary.json)"

    def make_parser(self) -> ConfigArgumentParser:
        from ...config import EvalConfig

        return self.config_parser((EvalArguments, EvalConfig), config_types=(EvalConfig,))

    def run(self, argv: Sequence[str]) -> int:
        args, config = self.make_parser().parse_args_and_config(argv)

        from ...evaluation import evaluate_model

        result = evaluate_model(args.model, args.dataset, split=args.split, config=config,
                                mapping=args.rap_format_kwargs())
        paths = result.save(args.output)
        print(result.table())
        print(f"Wrote {len(result.rows)} rows to {paths['rows']} and the summary to {paths['summary']}")
        return 0
