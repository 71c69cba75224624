"""A new `rap-hf` command is one command object and one registry line: it is listed, parsed and run
like the built-in ones, its errors and exit statuses handled by `rap_hf.cli.main`."""

import argparse
import dataclasses

import pytest

from rap_hf.cli import (
    AVAILABLE,
    COMMANDS,
    EXIT_FAILED,
    EXIT_USAGE,
    ArgparseCommand,
    ConfigCommand,
    command_parser,
    main,
    register_command,
)
from rap_hf.cli_args import ConfigArgumentParser


class EchoCommand(ArgparseCommand):
    """A command with argparse flags: it prints its words, or fails in one line on --fail."""

    name = "echo"
    help = "print the words given (a command added by a test)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("words", nargs="+", help="What to print")
        parser.add_argument("--upper", action="store_true", help="In capitals")
        parser.add_argument("--fail", action="store_true", help="Raise a ValueError instead")

    def run(self, args: argparse.Namespace) -> int:
        if args.fail:
            raise ValueError("asked to fail")
        text = " ".join(args.words)
        print(text.upper() if args.upper else text)
        return 0


@dataclasses.dataclass
class GreetArguments:
    """Whom `rap-hf greet` greets, and how often."""

    who: str = dataclasses.field(default="world", metadata={"help": "The one to greet"})
    times: int = dataclasses.field(default=1, metadata={"help": "How many greetings to print"})


class GreetCommand(ConfigCommand):
    """A command whose flags are the fields of a dataclass."""

    name = "greet"
    help = "greet someone (a config command added by a test)"

    def make_parser(self) -> ConfigArgumentParser:
        return self.config_parser(GreetArguments)

    def run(self, argv) -> int:
        (args,) = self.make_parser().parse_args_and_config(argv)
        for _ in range(args.times):
            print(f"hello {args.who}")
        return 0


@pytest.fixture
def registered():
    """Register commands for one test, and leave the registry as it was."""
    before = list(COMMANDS)
    yield register_command
    COMMANDS[:] = before


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_a_new_command_is_one_registry_line(registered, capsys):
    registered(EchoCommand())

    assert main(["echo", "two", "words"]) == 0
    assert capsys.readouterr().out == "two words\n"
    assert main(["echo", "loud", "--upper"]) == 0
    assert capsys.readouterr().out == "LOUD\n"
    # Its errors are one line and status 1, its usage errors status 2: main handles both.
    assert main(["echo", "x", "--fail"]) == EXIT_FAILED
    assert capsys.readouterr().err == "rap-hf echo: error: asked to fail\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["echo"])
    assert exit_info.value.code == EXIT_USAGE
    assert "rap-hf echo: error: the following arguments are required: words" in capsys.readouterr().err
    # `rap-hf --help` lists it after the built-in commands, with its help; its own --help has its flags.
    listed = _help(capsys)
    assert "print the words given (a command added by a test)" in listed
    assert listed.index("demo") < listed.index("echo")
    assert "--upper" in _help(capsys, "echo")


def test_a_new_command_with_a_config_dataclass_takes_its_fields_as_flags(registered, capsys):
    registered(GreetCommand())

    assert main(["greet", "--who", "RAP", "--times", "2"]) == 0
    assert capsys.readouterr().out == "hello RAP\nhello RAP\n"
    assert main(["greet"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert isinstance(command_parser("greet"), ConfigArgumentParser)
    own_help = _help(capsys, "greet")
    assert "The one to greet" in own_help and "--times" in own_help and "GreetArguments" in own_help
    assert "greet someone (a config command added by a test)" in _help(capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["greet", "--times", "many"])
    assert exit_info.value.code == EXIT_USAGE


def test_the_registry_keeps_its_order_and_refuses_a_name_twice(registered):
    assert [command.name for command in COMMANDS] == list(AVAILABLE)
    with pytest.raises(ValueError, match="already has a command named 'score'"):
        registered(type("Again", (EchoCommand,), {"name": "score"})())
    assert [command.name for command in COMMANDS] == list(AVAILABLE)
