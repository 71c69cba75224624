"""The checks config dataclasses share: a number in its range, a mapping given as JSON, each refused
in one line that names the field, the value and the command-line flag."""

from __future__ import annotations

import numbers
from typing import Any


def check_range(config: Any, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, why: str = "", flag: str | None = None) -> None:
    """Refuse `config.<name>` outside [low, high] (an open end with `low_open` / `high_open`; None: no
    bound; a None value is not checked) in one line naming the field, its range, the value and the
    command-line flag (`--some-name` unless `flag` says otherwise)."""
    value = getattr(config, name)
    if value is None:
        return
    if low is not None and high is not None:
        span = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        span = f"{'>' if low_open else '>='} {low:g}"
    else:
        span = f"{'<' if high_open else '<='} {high:g}"
    where = f"{flag_name(name, flag)} on the command line"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number {span}{why}, got {value!r} ({where})")
    inside = (low is None or (value > low if low_open else value >= low)) and (
        high is None or (value < high if high_open else value <= high))
    if not inside:
        raise ValueError(f"{name} must be {span}{why}, got {value} ({where})")


def flag_name(name: str, flag: str | None = None) -> str:
    """The command-line flag of a config field: `--some-name` (every rap-hf command also reads `--some_name`)."""
    return flag or "--" + name.replace("_", "-")


def parse_mapping(value: Any, name: str) -> dict | None:
    """A mapping field given as a mapping (Python, YAML) or as JSON text (a command-line flag)."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name} must be a JSON object, e.g. '{{\"size\": {{\"longest_edge\": 1003520}}}}': "
                             f"{error}") from error
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be a mapping, got {value!r}")
    return value
