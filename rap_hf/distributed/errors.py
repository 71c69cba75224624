"""The ways a sharded run ends short of a whole output, each a type the CLI maps to an exit status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .shards import Shard


class SettingsMismatch(ValueError):
    """Finished shards (or a finished output) were computed with other settings than this run's."""


class ScoringError(RuntimeError):
    """A sharded run cannot go on (a worker's error, shards that do not add up); one line for the CLI."""


class IncompleteRun(RuntimeError):
    """The run ended with shards missing (a worker died or failed); finished shards are kept.

    Attributes:
        missing: The shards still to score; the same command scores only them.
    """

    def __init__(self, message: str, missing: list[Shard]):
        super().__init__(message)
        self.missing = missing

    def __reduce__(self):
        return type(self), (str(self), self.missing)
