"""The executors `rap-hf score --engine` chooses from: one entry each, in the order `--help` lists them."""

from __future__ import annotations

from .executor import Executor
from .ranks import RankExecutor
from .ray_engine import RayExecutor

EXECUTORS: dict[str, type[Executor]] = {executor.name: executor for executor in (RankExecutor, RayExecutor)}


def register_executor(executor: type[Executor]) -> type[Executor]:
    """Make `executor` a choice of `rap-hf score --engine` under its `name` (usable as a decorator)."""
    if not executor.name:
        raise ValueError(f"{executor.__name__} needs a name: it is its --engine value")
    EXECUTORS[executor.name] = executor
    return executor


def executor_for(name: str) -> type[Executor]:
    """The executor registered as `name`, or a one-line error listing the registered ones."""
    if name not in EXECUTORS:
        raise ValueError(f"Unknown --engine {name!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


def engine_help() -> str:
    """`--engine`'s help: each registered executor's name and what it runs on."""
    choices = [f"'{name}' ({executor.help})" for name, executor in EXECUTORS.items()]
    return "What runs the shards: " + (" or ".join([", ".join(choices[:-1]), choices[-1]]) if len(choices) > 1
                                       else choices[0])
