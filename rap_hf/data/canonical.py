"""The canonical RAP row: its columns, its ids, and the one decision "is this canonical yet?".

Canonical columns (docs/method.md, "Inputs"): `rap_id` (str, stable), `question` (str, image
placeholders resolved, choices rendered in), `answer` (str; the option letter for multiple choice),
`images` (`List(Image(decode=False))`). Every later stage reads these four; `is_canonical` says
whether rows have them, `ensure_canonical` refuses rows that do not, and `as_canonical` converts
rows unless they already are canonical: the one place that decides, for every caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .images import ImageRef

CANONICAL_COLUMNS = ("rap_id", "question", "answer", "images")


@dataclass
class CanonicalRow:
    """One source row read by a layout (`rap_hf.data.layouts.Layout.read_row`)."""

    rap_id: str
    question: str
    answer: str
    images: list[ImageRef]
    choices: list[str] | None = None
    """The options rendered into the question (None without options)."""
    source_answer: Any = None
    """The answer as the source wrote it (the conversion report checks how it was read)."""


def images_feature():
    """The canonical `images` feature: a list of undecoded images."""
    from datasets import Image, List

    return List(Image(decode=False))


def rap_ids_digest(rap_ids) -> str:
    """SHA-256 of the row ids in order: whether two runs see the same rows (a dataset's own
    fingerprint is not stable across processes when rows were converted on the fly)."""
    return hashlib.sha256("\n".join(str(i) for i in rap_ids).encode()).hexdigest()


def content_hash(question: str, answer: str, images: Sequence[ImageRef]) -> str:
    """A stable id from a row's content (used when the source has no id column)."""
    digest = hashlib.sha1()
    digest.update(question.encode())
    digest.update(b"\0")
    digest.update(answer.encode())
    for ref in images:
        digest.update(b"\0")
        if ref.get("bytes") is not None:
            digest.update(hashlib.sha1(ref["bytes"]).digest())
        else:
            digest.update(str(ref.get("path")).encode())
    return "h-" + digest.hexdigest()[:16]


def missing_canonical_columns(rows: Any) -> list[str]:
    """The canonical columns `rows` lacks; `rows` is a dataset, a batch (a dict of columns) or column names."""
    names: Iterable[str] = rows.column_names if hasattr(rows, "column_names") else rows
    present = set(names or ())
    return [c for c in CANONICAL_COLUMNS if c not in present]


def is_canonical(ds: Any) -> bool:
    """Whether `ds` (a `Dataset`, every split of a `DatasetDict`, or a batch) has the canonical columns."""
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        return all(is_canonical(part) for part in ds.values())
    return not missing_canonical_columns(ds)


def ensure_canonical(ds: Any, where: str = "this function") -> None:
    """Raise a clear error when `ds` (a dataset or a batch) lacks canonical columns."""
    missing = missing_canonical_columns(ds)
    if missing:
        raise ValueError(
            f"{where} needs canonical RAP rows; missing columns {', '.join(missing)}. "
            "Convert the dataset first: `rap-hf convert` (or rap_hf.to_rap_format(ds))."
        )
