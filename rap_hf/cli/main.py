"""`rap-hf`: its parser, built from the registry of commands, and the one place a command is run.

`main` parses the command name (and the flags of an `ArgparseCommand`), runs the command, and turns
what escapes it into the exit statuses of `rap_hf.cli.command`: an error of `ONE_LINE_ERRORS` is one
line, `rap-hf COMMAND: error: ...`, and status 1; Ctrl-C is one line and status 130; argparse's
usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import __version__
from .command import ONE_LINE_ERRORS, ConfigCommand
from .commands import COMMANDS, command_named

if TYPE_CHECKING:
    from ..cli_args import ConfigArgumentParser


def command_parser(command: str) -> ConfigArgumentParser:
    """The parser of a command whose flags come from dataclasses (convert, score, select, eval,
    quickstart, train, demo). `.parse_args_and_config(argv)` returns one instance per dataclass, e.g.
    `(ConvertArguments,)` for convert, `(ScoreArguments, RAPConfig)` for score,
    `(TrainScriptArguments, RAPGRPOConfig, ModelConfig)` for train."""
    found = command_named(command)
    if not isinstance(found, ConfigCommand):
        raise ValueError(f"rap-hf {command} has no config dataclass; its flags are in build_parser()")
    return found.make_parser()


def build_parser() -> argparse.ArgumentParser:
    """`rap-hf` and its commands (`COMMANDS`, in order). A `ConfigCommand` is a name here (no flags,
    no -h): what follows it goes to its `run` (see `main`)."""
    parser = argparse.ArgumentParser(prog="rap-hf", description="RAP data selection for vision-language RL.")
    parser.add_argument("--version", action="version", version=f"rap-hf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `rap-hf` on argv (sys.argv[1:] when None); return the exit status. Errors of a run are one
    line, `rap-hf COMMAND: error: ...`, and status 1; usage errors exit with status 2 (argparse)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    command = command_named(args.command)
    own_flags = isinstance(command, ConfigCommand)
    if rest and not own_flags:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        # A config command parses `rest` itself: its usage errors exit with status 2 like argparse's.
        return command.run(rest) if own_flags else command.run(args)
    except ONE_LINE_ERRORS as error:
        print(f"rap-hf {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, and the shell's status for it (128 + SIGINT)
        print(f"rap-hf {args.command}: interrupted", file=sys.stderr)
        return 130
