"""One bad row fails alone: run a step on a batch, and on failure retry it row by row.

Two kinds of failure are not a row's: `RunError` (a server that went away, an API key refused) is
re-raised at once, since every row would fail the same way; `PartialFailure` says the batch ran and
names the rows that failed, so only those get an error and nothing is computed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


class RunError(Exception):
    """An error of the whole run, not of a row: `batch_or_alone` re-raises it instead of retrying."""


class RunStopped(RunError):
    """The run cannot go on for now for a reason outside it (its servers are gone): finished work is
    kept, and the same command resumes once the cause is gone (`rap-hf score` exits with 3)."""


class PartialFailure(Exception):
    """A batch that ran, with some rows failed: `results` has None for them, `errors` their reasons.

    Args:
        results: One result per row of the batch (None where the row failed).
        errors: {position in the batch: why that row failed}.
    """

    def __init__(self, results: list, errors: Mapping[int, str]):
        super().__init__(f"{len(errors)} of {len(results)} rows failed")
        self.results = results
        self.errors = dict(errors)


def batch_or_alone(rows: Sequence[Any], compute: Callable[[Sequence[Any]], list], what: str) -> list:
    """`compute(rows)`, one result per row; if the batch fails, each row is retried alone, so one bad
    row fails by itself (result None, `row.error` set) and the others still get their result."""
    try:
        return compute(rows)
    except RunError:
        raise
    except PartialFailure as failure:
        for position, why in failure.errors.items():
            rows[position].error = f"{what} failed: {why}"
        return failure.results
    except Exception:
        pass  # retried row by row below, which records each failing row's error
    results = []
    for row in rows:
        try:
            results.append(compute([row])[0])
        except RunError:
            raise
        except PartialFailure as failure:
            row.error = f"{what} failed: {failure.errors[0]}"
            results.append(None)
        except Exception as error:
            row.error = f"{what} failed: {type(error).__name__}: {error}"
            results.append(None)
    return results
