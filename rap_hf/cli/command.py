"""What a `rap-hf` command is: a name, one line of help, its flags, and `run`, which returns an exit status.

Two kinds, by where the flags come from:

- `ConfigCommand`: flags from dataclasses, through `rap_hf.cli_args.ConfigArgumentParser`
  (`make_parser`). `rap-hf` lists only its name; everything after the name goes to `run(argv)`,
  which parses it, so its usage errors exit with status 2 like argparse's.
- `ArgparseCommand`: a few flags declared with argparse (`add_arguments`); `rap-hf`'s own parser
  reads them and `run(args)` gets the `argparse.Namespace`.

A new command is one module of `rap_hf/cli/commands/` holding such a class, and its line in the
registry (`rap_hf.cli.commands.COMMANDS`). The exit statuses every command returns are here too.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..cli_args import ConfigArgumentParser

# Exit statuses of `rap-hf score` (the other commands use 0, 1 and 2): 0 only when OUTPUT holds every
# row; 128 + N when stopped by signal N (130 Ctrl-C, 143 SIGTERM), finished shards kept.
EXIT_OK = 0
EXIT_FAILED = 1  # an error, one line (or every row failed: the output holds only rap_error)
EXIT_USAGE = 2  # a flag argparse refused
EXIT_INCOMPLETE = 3  # shards missing (a worker died): finished ones kept, the same command scores the rest
EXIT_BUSY = 4  # another run is writing the same output
# Errors a command reports in one line (`rap-hf COMMAND: error: ...`, status 1) rather than a traceback.
ONE_LINE_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotImplementedError, OSError, ImportError)


class Command:
    """One `rap-hf` command. A subclass sets `name` and `help` (the line `rap-hf --help` prints for it)
    and defines `run`; `ConfigCommand` and `ArgparseCommand` say how its flags are read."""

    name: ClassVar[str]
    help: ClassVar[str]

    def add_to(self, commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add this command to the `rap-hf` parser's list of commands."""
        raise NotImplementedError

    def run(self, args: argparse.Namespace | Sequence[str]) -> int:
        """Run the command; return its exit status. An error of `ONE_LINE_ERRORS` that escapes is
        reported by `rap_hf.cli.main` in one line, with status 1."""
        raise NotImplementedError


class ConfigCommand(Command):
    """A command whose flags are the fields of dataclasses: `run(argv)` gets the arguments after its
    name and parses them with `make_parser()` (before any slow import, so --help answers at once)."""

    description: ClassVar[str | None] = None  # the paragraph of its --help; `help` when None

    def add_to(self, commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        # A name only (no flags, no -h): what follows it on the command line goes to `run`.
        return commands.add_parser(self.name, help=self.help, add_help=False)

    def make_parser(self) -> ConfigArgumentParser:
        """The parser of this command's flags; `.parse_args_and_config(argv)` returns one instance per
        dataclass."""
        raise NotImplementedError

    def config_parser(self, dataclass_types: type | Iterable[type],
                      config_types: Iterable[type] | None = None) -> ConfigArgumentParser:
        """A `ConfigArgumentParser` of `dataclass_types` for `rap-hf NAME`, with this command's
        description; `config_types` are those `--config FILE.yaml` may set (all when None)."""
        from ..cli_args import ConfigArgumentParser

        return ConfigArgumentParser(dataclass_types, config_types=config_types, prog=f"rap-hf {self.name}",
                                    description=self.description or self.help)

    def run(self, argv: Sequence[str]) -> int:
        raise NotImplementedError


class ArgparseCommand(Command):
    """A command with a few flags of its own, declared with argparse in `add_arguments`: `rap-hf`'s
    parser reads them, and `run(args)` gets the namespace."""

    def add_to(self, commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        from ..cli_args import HelpFormatter

        parser = commands.add_parser(self.name, help=self.help, description=self.help, formatter_class=HelpFormatter)
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's flags on `parser` (`rap-hf NAME`'s)."""
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError
