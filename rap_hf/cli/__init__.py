"""The `rap-hf` command line: a thin layer over the library, one subcommand per step.

Every step reads and writes ordinary `datasets` folders (or files), so steps compose in the shell
and each output can be opened with `datasets.load_from_disk`.

One module per command in `rap_hf/cli/commands/` (its arguments dataclass, its flags, its `run`),
one list of them (`rap_hf.cli.commands.COMMANDS`), and one place that runs them and turns errors
into exit statuses (`rap_hf.cli.main`). Commands with a config (`convert`, `score`, `select`, `eval`,
`quickstart`, `train`, `demo`) take their flags from dataclasses, through
`rap_hf.cli_args.ConfigArgumentParser` (see `command_parser`): a field added to a config is a flag of
its command, with its help, spelled `--some-name` or `--some_name`. The commands that read rows
(`convert`, `score`, `eval`, `quickstart`) share one column-mapping vocabulary,
`rap_hf.data.column_mapping.ColumnMapping` (`--preset --question --answer --images --id --choices
--image-root`). The small commands without a config (`world`, `tiny-vlm`, `export`, `verify`,
`push`) declare their few flags with argparse.
"""

from .command import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    ONE_LINE_ERRORS,
    ArgparseCommand,
    Command,
    ConfigCommand,
)
from .commands import AVAILABLE, COMMANDS, CONFIG_COMMANDS, register_command
from .commands.convert import ConvertArguments
from .commands.eval import EvalArguments
from .commands.quickstart import QUICKSTART_DESCRIPTION
from .commands.score import ScoreArguments
from .commands.select import SelectArguments
from .main import build_parser, command_parser, main

__all__ = [
    "AVAILABLE", "COMMANDS", "CONFIG_COMMANDS", "EXIT_BUSY", "EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE",
    "ONE_LINE_ERRORS", "QUICKSTART_DESCRIPTION", "ArgparseCommand", "Command",
    "ConfigCommand", "ConvertArguments", "EvalArguments", "ScoreArguments", "SelectArguments", "build_parser",
    "command_parser", "main", "register_command",
]
