"""Command-line flags from dataclasses: the one place where rap-hf turns a config into flags.

`ConfigArgumentParser` is TRL's `TrlParser` (a `transformers.HfArgumentParser`) with three changes,
so that every command (`rap-hf score`, `select`, `eval`, `quickstart`, `train`, `demo`) reads its
dataclasses the same way, and a field added to a config is a flag of its command at once:

- Each field `some_name` is `--some_name` and `--some-name` (as HfArgumentParser does), its type
  read with `typing.get_type_hints`: `int`, `float`, `str`, `X | None` (`none` or `null` give None
  for non-text types, as TRL reads them), `Literal[...]` and enums as choices, `list[X]` as several
  values. A bool is `--flag` (True), `--flag true|false` and `--no-flag` (False), whatever its
  default; HfArgumentParser only offers `--no-flag` when the default is True.
- `--config FILE.yaml` sets fields of the dataclasses named by `config_types`; flags given on the
  command line override it, and a key that is not one of those fields is an error naming it. An
  `env:` mapping in the file sets environment variables (TrlParser's convention).
- Help is written once per field: its `metadata["help"]`, then the default (not for None); the
  flags of each dataclass under a heading of their own.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import re
import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any, get_type_hints

from trl import TrlParser

# A help text is an argparse %-format string: `%%` and `%(name)s` are already written for it
# (transformers' help texts use them), any other `%` is a literal percent sign.
_PERCENT = re.compile(r"%%|%\(\w+\)[a-z]|%")


def string_to_bool(value: str | bool) -> bool:
    """`true`/`false` (also yes/no, t/f, y/n, 1/0; any case) -> bool, the spellings TRL's parser reads."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false (yes/no, 1/0), got {value!r}")


class BoolFlag(argparse.Action):
    """A bool field: `--flag` sets True, `--flag VALUE` sets the value, `--no-flag` sets False."""

    def __init__(self, option_strings: Sequence[str], dest: str, negatives: Sequence[str] = (),
                 default: Any = False, required: bool = False, help: str | None = None,
                 metavar: str | None = "BOOL") -> None:
        # const None tells a bare flag from one given a value (argparse does not convert const).
        super().__init__(option_strings, dest, nargs="?", const=None, default=default, type=string_to_bool,
                         required=required, help=help, metavar=metavar)
        self.negatives = tuple(negatives)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if option_string in self.negatives:
            if values is not None:
                raise argparse.ArgumentError(self, f"{option_string} takes no value")
            values = False
        elif values is None:
            values = True
        setattr(namespace, self.dest, values)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag with its help and its default (left out when None: unset says it), bool flags as
    `--flag [BOOL], --no-flag`."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, BoolFlag):
            return ", ".join([f"{option} [{action.metavar}]" for option in action.option_strings
                              if option not in action.negatives] + list(action.negatives))
        return super()._format_action_invocation(action)


def _escape_help(text: str) -> str:
    return _PERCENT.sub(lambda match: "%%" if match.group() == "%" else match.group(), text)


def _names(classes: Sequence[type]) -> str:
    names = [cls.__name__ for cls in classes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


class ConfigArgumentParser(TrlParser):
    """The flags of one command, from its dataclasses; `parse_args_and_config` returns their instances.

    Args:
        dataclass_types: The dataclasses whose fields are the command's flags, in the order
            `parse_args_and_config` returns them. Field names must not repeat across them.
        config_types: Those whose fields `--config FILE.yaml` may set (all of them by default);
            empty: no `--config` flag.
        **kwargs: For `argparse.ArgumentParser` (`prog`, `description`, `usage`, ...). Without a
            `usage`, it is the required flags and `[--FLAG VALUE ...]`, so a usage error stays short
            for commands with hundreds of flags.
    """

    def __init__(self, dataclass_types: type | Iterable[type], *, config_types: Iterable[type] | None = None,
                 **kwargs: Any) -> None:
        dataclass_types = (dataclass_types,) if isinstance(dataclass_types, type) else tuple(dataclass_types)
        self.config_types = dataclass_types if config_types is None else tuple(config_types)
        kwargs.setdefault("formatter_class", HelpFormatter)
        custom_usage = "usage" in kwargs
        super().__init__(dataclass_types, **kwargs)
        if self.config_types:
            self.add_argument("--config", metavar="FILE.yaml",
                              help=f"YAML file of {_names(self.config_types)} fields; flags override its values")
        if not custom_usage:
            required = " ".join(f"{a.option_strings[0]} {a.metavar or a.dest.upper()}"
                                for a in self._actions if a.required)
            config = " [--config FILE.yaml]" if self.config_types else ""
            self.usage = " ".join(filter(None, [self.prog, "[-h]", required])) + config + " [--FLAG VALUE ...]"

    # ------------------------------------------------------------------ building the flags
    def _add_dataclass_arguments(self, dtype: type) -> None:
        """Resolved types and escaped help on copies of the fields (the dataclass stays as it is)."""
        heading = getattr(dtype, "_argument_group_name", None) or dtype.__name__
        doc = (dtype.__doc__ or "").strip()
        described = doc and not doc.startswith(f"{dtype.__name__}(")  # not the signature dataclass writes
        group = self.add_argument_group(heading, doc.split("\n")[0] if described else None)
        try:
            hints = get_type_hints(dtype)
        except NameError as error:
            raise RuntimeError(f"Type hints of {dtype.__name__} could not be resolved: {error}") from error
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            resolved = copy.copy(f)
            resolved.type = hints[f.name]
            if resolved.metadata.get("help"):
                resolved.metadata = types.MappingProxyType({**f.metadata, "help": _escape_help(f.metadata["help"])})
            self._parse_dataclass_field(group, resolved)

    @staticmethod
    def _parse_dataclass_field(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                               field: dataclasses.Field) -> None:
        if field.type is bool or field.type == bool | None:
            kwargs = dict(field.metadata)
            aliases = kwargs.pop("aliases", [])
            aliases = [aliases] if isinstance(aliases, str) else list(aliases)
            for key in ("nargs", "const", "type"):  # BoolFlag's own (transformers' metadata sets nargs and const)
                kwargs.pop(key, None)
            dashed = field.name.replace("_", "-")
            options = [f"--{field.name}"] + ([f"--{dashed}"] if dashed != field.name else [])
            negatives = [f"--no_{field.name}", f"--no-{dashed}"]  # HfArgumentParser's spellings of --no
            default = False if field.default is dataclasses.MISSING else field.default
            parser.add_argument(*options, *aliases, *negatives, action=BoolFlag, dest=field.name,
                                negatives=negatives, default=default, **kwargs)
        else:
            TrlParser._parse_dataclass_field(parser, field)

    # ------------------------------------------------------------------ parsing
    def parse_args_and_config(self, args: Sequence[str] | None = None) -> tuple[Any, ...]:
        """argv (sys.argv[1:] when None) -> one instance per dataclass, in order.

        Values come from the command line, then `--config FILE.yaml`, then the fields' defaults.
        A bad flag or value exits with a usage error (status 2); an unknown YAML key, and what the
        dataclasses themselves refuse, raise `ValueError`.
        """
        args = list(sys.argv[1:] if args is None else args)
        config_path, args = self._pop_config(args)
        if config_path is not None:
            self.set_defaults_with_config(**self._read_config(config_path))
        namespace = self.parse_args(args)
        if getattr(namespace, "config", None) is not None:  # an abbreviation of --config reached argparse
            self.error("write --config in full")
        return tuple(dtype(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(dtype) if f.init})
                     for dtype in self.dataclass_types)

    def _pop_config(self, args: list[str]) -> tuple[str | None, list[str]]:
        """(the --config path or None, args without it); only options before a `--` count."""
        if not self.config_types:
            return None, args
        path, rest, i = None, [], 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                rest.extend(args[i:])
                break
            if arg == "--config" or arg.startswith("--config="):
                if path is not None:
                    self.error("--config given more than once")
                if arg == "--config":
                    if i + 1 == len(args):
                        self.error("argument --config: expected one argument")
                    path, i = args[i + 1], i + 2
                else:
                    path, i = arg.split("=", 1)[1], i + 1
                continue
            rest.append(arg)
            i += 1
        return path, rest

    def _read_config(self, path: str) -> dict[str, Any]:
        import yaml

        with open(path) as f:
            values = yaml.safe_load(f)
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a YAML mapping of field: value, got {type(values).__name__}")
        env = values.pop("env", None) or {}
        if not isinstance(env, dict):
            raise ValueError(f"{path}: `env` must be a mapping of environment variables")
        known = {f.name for dtype in self.config_types for f in dataclasses.fields(dtype) if f.init}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown {_names(self.config_types)} fields {', '.join(map(str, unknown))}")
        for key, value in env.items():
            os.environ[str(key)] = str(value)
        return values
