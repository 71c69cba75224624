"""One bad row fails alone: run a step on a batch, and on failure retry it row by row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def batch_or_alone(rows: Sequence[Any], compute: Callable[[Sequence[Any]], list], what: str) -> list:
    """`compute(rows)`, one result per row; if the batch fails, each row is retried alone, so one bad
    row fails by itself (result None, `row.error` set) and the others still get their result."""
    try:
        return compute(rows)
    except Exception:
        pass  # retried row by row below, which records each failing row's error
    results = []
    for row in rows:
        try:
            results.append(compute([row])[0])
        except Exception as error:
            row.error = f"{what} failed: {type(error).__name__}: {error}"
            results.append(None)
    return results
