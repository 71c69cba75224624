"""Symbolic and numeric equality through math-verify, for the answers that plain text and plain
numbers cannot settle ("0.5" against "\\frac{1}{2}", "2\\sqrt{3}" against "\\sqrt{12}").

Parses and verdicts are cached per distinct string: the M rollouts of a row often repeat an answer.
Safe off the main thread: math-verify's timeouts use `signal.alarm`, which only works there, so
elsewhere it runs without a timeout.
"""

from __future__ import annotations

import threading
from functools import lru_cache


def _timeout() -> int | None:
    # math-verify times out through signal.alarm, which raises outside the main thread.
    return 5 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=1 << 14)
def _parse(text: str) -> tuple:
    from math_verify import parse

    try:
        return tuple(parse(f"${text}$", parsing_timeout=_timeout()))
    except Exception:  # a parser failure is "does not parse", never an error of the grader
        return ()


@lru_cache(maxsize=1 << 16)
def _verify(gold: str, prediction: str) -> bool:
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(prediction)
    if not gold_parsed or not pred_parsed:
        return False
    try:
        return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=_timeout()))
    except Exception:
        return False


def math_equal(prediction: str, gold: str) -> bool:
    """Symbolic/numeric equality of two answers through math-verify (False when either fails to parse)."""
    return _verify(gold.strip().strip("$"), prediction.strip().strip("$"))
