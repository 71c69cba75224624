"""What a conversion could not carry over, said with counts: the report of `to_rap_format`.

While it converts, each row records facts (`row_facts`: image files that do not exist, relative
paths with no folder, answers that match no option, ambiguous integer answers, and whether each
unused image-looking column holds something there) in temporary columns; `report_conversion`
counts them into warnings that name an example row, and refuses, in auto mode, a conversion that
would drop every image. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .answers import OPTION_LETTERS, answer_index
from .canonical import CanonicalRow
from .image_sources import is_remote
from .images import is_unresolved_path, names_missing_file

# Conversion warnings keep the logger name they have always had, so logging set up for it still applies.
LOGGER_NAME = "rap_hf.data.schema"
logger = logging.getLogger(LOGGER_NAME)

# The temporary per-row fact columns and their `datasets.Value` types, removed once counted.
ROW_FACTS = {"__rap_missing": "int32", "__rap_relative": "int32", "__rap_remote": "int32",
             "__rap_unmatched": "bool", "__rap_ambiguous": "bool"}
UNUSED_FACT = "__rap_unused_{}"
"""Fact column k: whether the k-th unused image-looking column holds a value on the row."""


def row_facts(row: CanonicalRow) -> dict[str, Any]:
    """The facts of one converted row that the report counts (the `ROW_FACTS` columns)."""
    refs, choices = row.images, row.choices
    index = answer_index(row.source_answer)
    return {
        "__rap_missing": sum(names_missing_file(r) for r in refs if not is_unresolved_path(r)),
        "__rap_relative": sum(map(is_unresolved_path, refs)),
        "__rap_remote": sum(r.get("bytes") is None and is_remote(r.get("path")) for r in refs),
        "__rap_unmatched": bool(choices) and row.answer not in OPTION_LETTERS[: len(choices)],
        "__rap_ambiguous": bool(choices) and index is not None and 0 <= index < len(choices)
        and str(index) in choices and choices.index(str(index)) != index,
    }


def refusal(columns: Sequence[str], why: str) -> ValueError:
    """The error of a conversion that would drop every image while `columns` look like images."""
    flags = ", ".join(f"images={c!r} (rap-hf: --images {c})" for c in columns)
    return ValueError(
        f"to_rap_format would drop every image: {why}, and column{'s' if len(columns) > 1 else ''} "
        f"{', '.join(repr(c) for c in columns)} look{'' if len(columns) > 1 else 's'} like images. "
        f"Map the images explicitly: {flags}."
    )


def report_conversion(converted, watched: Mapping[str, str], duplicates: set[str], image_cols: Sequence[str],
                      messages_col: str | None, *, auto: bool) -> None:
    """Warn, with counts, about everything the conversion could not carry over; refuse (in auto mode)
    when no row kept an image that an unused column holds."""
    import pyarrow.compute as pc

    total = len(converted)
    if total == 0:
        return
    table = converted.select_columns(["rap_id", "images", *ROW_FACTS, *watched]).with_format("arrow")[:]
    counts = pc.list_value_length(table.column("images"))
    empty = pc.equal(counts, 0)
    without = pc.sum(empty).as_py() or 0
    unused = {column: pc.sum(table.column(name)).as_py() or 0 for name, column in watched.items()}
    unused = {column: n for column, n in unused.items() if n}
    source = (f"column{'s' if len(image_cols) > 1 else ''} {', '.join(image_cols)}" if image_cols else
              f"the messages in {messages_col!r}" if messages_col else "no image column")

    def example(mask) -> str:
        row = pc.index(mask, True).as_py()
        return f"row {row} (rap_id {table.column('rap_id')[row].as_py()!r})"

    if auto and without == total and unused:
        raise refusal(list(unused), f"every row ended with no image from {source}")
    for column, n in unused.items():
        # A known duplicate (MathVista's `image`, the path of `decoded_image`) loses nothing: noted only.
        log = logger.info if column in duplicates else logger.warning
        log(
            "column %r looks like images and holds values on %d of %d rows, but the conversion did not use it "
            "(images came from %s); map it with images=%r (rap-hf: --images %s)",
            column, n, total, source, column, column,
        )
    if without:
        logger.warning(
            "%d of %d rows have no image (images from %s; e.g. %s); scoring marks them with rap_error",
            without, total, source, example(empty),
        )
    def warn_rows(mask, message: str) -> None:
        """Warn, when any row is in `mask`: `message` with its count, the total and an example row."""
        count = pc.sum(mask).as_py() or 0
        if count:
            logger.warning(message, count, total, example(mask))

    missing = table.column("__rap_missing")
    has_missing = pc.greater(missing, 0)
    if pc.any(has_missing).as_py():
        row = pc.index(has_missing, True).as_py()
        path = next((r["path"] for r in table.column("images")[row].as_py() if names_missing_file(r)
                     and not is_unresolved_path(r)), "(found since)")
        logger.warning(
            "%d of %d rows name image files that do not exist (%d files; e.g. %s: %s); they keep their paths "
            "and fail alone when decoded (rap_error)",
            pc.sum(has_missing).as_py(), total, pc.sum(missing).as_py(), example(has_missing), path,
        )
    warn_rows(pc.greater(table.column("__rap_relative"), 0),
              "%d of %d rows name images by relative paths and no folder is known to resolve them against (the "
              "rows did not come from a data file through rap_hf.data.io.load_rows; e.g. %s); pass image_root= "
              "(rap-hf: --image-root) with the folder they are relative to")
    warn_rows(pc.greater(table.column("__rap_remote"), 0),
              "%d of %d rows have images at http(s) URLs that were not downloaded (e.g. %s); they fail alone when "
              "decoded (rap_error). Convert with fetch_images=True (rap-hf: --fetch-images) to download them; "
              "if it was given, the downloads failed: converting again retries them")
    warn_rows(table.column("__rap_unmatched"),
              "%d of %d multiple-choice rows have an answer that is no option letter, option text or option index "
              "(e.g. %s); it was kept as written")
    warn_rows(table.column("__rap_ambiguous"),
              "%d of %d rows have an integer answer that is also the text of another option (e.g. %s); it was "
              "read as a 0-based option index (ScienceQA's convention): store the answer as text to match an "
              "option's text")


def warn_missing_answers(ds) -> None:
    """Warn, with counts, about rows whose answer is empty (they are kept)."""
    import pyarrow.compute as pc

    answers = ds.with_format("arrow")[:].column("answer")
    empty = pc.sum(pc.equal(answers, "")).as_py() or 0
    if empty:
        logger.warning(
            "%d of %d rows have an empty answer; scoring will mark them with rap_error instead of dropping them",
            empty, len(ds),
        )
