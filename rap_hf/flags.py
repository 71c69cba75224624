"""Field metadata for flags whose choices come from a registry (layouts for `--preset`, executors for
`--engine`): read when a command's parser is built, so an entry registered after import is a choice."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class RegistryFlag(Mapping[str, Any]):
    """A field's metadata whose `choices` and `help` come from a registry when they are read: the CLI
    copies a field's metadata when it builds a parser, not when the config's module is imported, so an
    entry registered in between (a layout, an executor) is a choice of the flag with no other edit.

    Args:
        values: Returns the metadata now, e.g. `{"choices": [...], "help": "..."}`.
    """

    def __init__(self, values: Callable[[], dict[str, Any]]):
        self.values = values

    def __getitem__(self, key: str) -> Any:
        return self.values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __len__(self) -> int:
        return len(self.values())

    def copy(self) -> dict[str, Any]:
        return dict(self.values())
