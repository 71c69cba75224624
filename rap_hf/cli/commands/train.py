"""`rap-hf train`: GRPO on a selection (`RAPGRPOTrainer`) from a YAML recipe plus flags.

Its parser and its run are `rap_hf.training.script`'s (the flags are TRL's and transformers' fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


class TrainCommand(ConfigCommand):
    name = "train"
    help = "GRPO training on a selection from a YAML recipe (RAPGRPOTrainer; --help lists every flag)"

    def make_parser(self) -> ConfigArgumentParser:
        from ...training.script import make_parser

        return make_parser()

    def run(self, argv: Sequence[str]) -> int:
        from ...training.script import parse_args, train

        # `train` prints where the checkpoint is, once (on the main process of a multi-process launch).
        train(*parse_args(argv))
        return 0
