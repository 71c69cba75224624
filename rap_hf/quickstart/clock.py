"""The stages of the quickstart study, and the clock that times them and prints a line per stage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STAGES = ("world", "warm-up", "scoring", "selection", "training", "evaluation", "publishing")


class StageClock:
    """Times the stages and prints a line as each starts and ends."""

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.echo = echo
        self.seconds: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        number = f"[{STAGES.index(name) + 1}/{len(STAGES)}]"
        self.echo(f"{number} {what} ...")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        note = f" ({self.notes[name]})" if name in self.notes else ""
        self.echo(f"{number} {what}: done in {self.seconds[name]:.1f} s{note}")

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 2)

