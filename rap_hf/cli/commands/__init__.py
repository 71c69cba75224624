"""The registry of `rap-hf` commands: `COMMANDS`, in the order `rap-hf --help` lists them.

Each module here holds one command (its arguments dataclass, if any, its flags and its `run`; see
`rap_hf.cli.command`). A new command is one new module and its line in `COMMANDS`;
`register_command` adds one from outside this package.
"""

from __future__ import annotations

from ..command import Command, ConfigCommand
from .convert import ConvertCommand
from .demo import DemoCommand
from .eval import EvalCommand
from .export import ExportCommand
from .push import PushCommand
from .quickstart import QuickstartCommand
from .score import ScoreCommand
from .select import SelectCommand
from .tiny_vlm import TinyVLMCommand
from .train import TrainCommand
from .verify import VerifyCommand
from .world import WorldCommand

COMMANDS: list[Command] = [
    QuickstartCommand(),
    WorldCommand(),
    TinyVLMCommand(),
    ConvertCommand(),
    ExportCommand(),
    VerifyCommand(),
    ScoreCommand(),
    SelectCommand(),
    TrainCommand(),
    EvalCommand(),
    PushCommand(),
    DemoCommand(),
]

# The built-in commands by name, as earlier releases offered them: name -> the line `rap-hf --help`
# prints, and name -> command for those whose flags come from dataclasses (see `command_parser`).
AVAILABLE = {command.name: command.help for command in COMMANDS}
CONFIG_COMMANDS = {command.name: command for command in COMMANDS if isinstance(command, ConfigCommand)}


def register_command(command: Command) -> Command:
    """Add `command` to `rap-hf`, after the built-in ones (`rap-hf --help` lists it, `main` runs it);
    returns it. Its name must be new."""
    if command_named(command.name) is not None:
        raise ValueError(f"rap-hf already has a command named {command.name!r}")
    COMMANDS.append(command)
    return command


def command_named(name: str) -> Command | None:
    """The command of `COMMANDS` called `name`, or None."""
    return next((command for command in COMMANDS if command.name == name), None)
