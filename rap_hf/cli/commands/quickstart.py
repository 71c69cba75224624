"""`rap-hf quickstart`: every RAP stage on the embedded world (or a dataset), and its report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser

QUICKSTART_DESCRIPTION = (
    "Runs every RAP stage for real and writes report.json, report.md, plots, the subset, the checkpoints and the "
    "Hub trees to --out. The first run warms up the embedded scorer (cached afterwards)."
)


class QuickstartCommand(ConfigCommand):
    """Its flags are the fields of `QuickstartConfig`."""

    name = "quickstart"
    help = ("the whole pipeline on the embedded world (world -> warm-up -> scoring -> selection -> GRPO -> "
            "evaluation -> report)")
    description = QUICKSTART_DESCRIPTION

    def make_parser(self) -> ConfigArgumentParser:
        from ...quickstart.config import QuickstartConfig

        return self.config_parser(QuickstartConfig)

    def run(self, argv: Sequence[str]) -> int:
        (config,) = self.make_parser().parse_args_and_config(argv)

        from ...quickstart import run_quickstart

        run_quickstart(config)
        return 0
