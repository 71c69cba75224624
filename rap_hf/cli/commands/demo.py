"""`rap-hf demo`: serve the Gradio Space locally (the embedded world by default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..command import ConfigCommand

if TYPE_CHECKING:
    from ...cli_args import ConfigArgumentParser


class DemoCommand(ConfigCommand):
    """Its flags are the fields of `DemoConfig`; its parser is `rap_hf.demo.make_parser` (spaces_demo/app.py's)."""

    name = "demo"
    help = "serve the Gradio Space locally (the embedded world by default; --help lists its flags)"

    def make_parser(self) -> ConfigArgumentParser:
        from ...demo import make_parser

        return make_parser()

    def run(self, argv: Sequence[str]) -> int:
        from ...demo import main as demo_main
        from ...demo import parse_args
        from ...references import check_reference

        # A mistyped --dataset or --model fails here, in one line, instead of on the page once it is served.
        config = parse_args(argv)
        if config.dataset is not None:
            check_reference(config.dataset, "dataset")
        if config.model is not None:
            check_reference(config.model, "model")
        # rap_hf.demo.main parses (with command_parser("demo")'s parser): spaces_demo/app.py calls it too.
        return demo_main(argv)
