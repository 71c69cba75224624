"""Turning what users pass to `RAPGRPOTrainer` into the one dataset TRL trains on.

Accepted: a `Selection` (its kept rows), canonical RAP rows (converted with `to_trl`), or rows
already in TRL's layout (a conversational `prompt` column plus `images`). With online replacement,
the replacement pool is prepared the same way, ordered hardest first, and appended after the
training rows; a `rap_train_index` column then tells the trainer which row each rollout came from.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Literal

import numpy as np

from ..data.canonical import CANONICAL_COLUMNS, is_canonical, rap_ids_digest

logger = logging.getLogger(__name__)

INDEX_COLUMN = "rap_train_index"


def _is_selection(data: Any) -> bool:
    from ..selection import Selection

    return isinstance(data, Selection)


def _row_names(ds, rows: np.ndarray, limit: int = 5) -> str:
    ids = ds.select(rows[:limit])["rap_id"] if "rap_id" in ds.column_names else rows[:limit].tolist()
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(str(i) for i in ids) + more


def empty_training_message(where: str, report=None, *, then: str | None = None) -> str:
    """One line: there is nothing to train on in `where`, why (the selection report's `why_none_kept`
    when there is a report), and what to do (`then`, default: select again)."""
    why = report.why_none_kept if report is not None else None
    then = then or ("Then select again with the change (`rap-hf select`, or rap_hf.select) and train on the rows "
                    "it keeps.")
    if why:
        return f"Nothing to train on: {where} kept no row. {why} {then}"
    return (f"Nothing to train on: {where} has no rows. Give rows to train on (a `rap-hf select` folder that kept "
            "some, canonical RAP rows or TRL rows).")


def refuse_empty_training(data: Any, what: str = "train_dataset") -> None:
    """Raise `ValueError` in one line when there is nothing to train on: a `Selection` that kept no row,
    or a dataset without rows. Called before any model is loaded; a stream cannot be counted and passes."""
    from datasets import Dataset

    if _is_selection(data):
        if len(data.dataset) == 0:
            raise ValueError(empty_training_message(f"the Selection given as {what} ({data.report.mode} mode)",
                                                    data.report))
    elif isinstance(data, Dataset) and len(data) == 0:
        if "rap_keep" in data.column_names:  # the kept rows of a selection, without its report
            raise ValueError(f"Nothing to train on: {what} has no rows (the rows a selection kept, and it kept "
                             "none). Its report (report.md, or Selection.report) says why; select again with the "
                             "change (`rap-hf select`, or rap_hf.select) and train on the rows it keeps.")
        raise ValueError(empty_training_message(what))


def selection_training_rows(folder: str | os.PathLike):
    """The kept rows of a folder written by `rap-hf select --output` (or `Selection.save_to_disk`).

    Refuses a selection that kept no row in one line that says why (from its report) and what to do:
    `rap-hf train` calls this before it loads the model. (`datasets` cannot even load a saved dataset
    without rows.)"""
    from datasets import load_from_disk

    from ..selection import DATASET_FOLDER, REPORT_JSON, SelectionReport

    report_path = os.path.join(folder, REPORT_JSON)
    if os.path.exists(report_path):
        with open(report_path) as f:
            report = SelectionReport.from_dict(json.load(f))
        if report.kept == 0:
            raise ValueError(empty_training_message(
                f"the selection in {os.fspath(folder)}", report,
                then="Then select again with the change (`rap-hf select --input SCORED --output DIR ...`) and "
                     "train on that folder (--dataset DIR)."))
    return load_from_disk(os.path.join(folder, DATASET_FOLDER))


def _check_answers(ds, what: str) -> None:
    if "answer" not in ds.column_names:
        raise ValueError(
            f"{what} has no `answer` column, which the RAP rewards grade against (columns: "
            f"{', '.join(ds.column_names)}). Convert the rows first (`rap-hf convert --answer COLUMN`, or "
            "rap_hf.to_rap_format), or train with rewards that do not need answers (--reward_funcs, or reward_funcs=)."
        )
    answers = ds.select_columns(["answer"]).with_format("arrow")[:].column(0).to_pylist()
    missing = np.flatnonzero([a is None or not str(a).strip() for a in answers])
    if len(missing):
        raise ValueError(
            f"{what}: {len(missing)} row(s) have no ground-truth answer ({_row_names(ds, missing)}); every "
            "rollout of such a row would score 0. Fill in or drop those rows before training."
        )


def to_training_rows(data: Any, *, format_prompt: str | None, system_prompt: str | None,
                     needs_answer: bool, role: Literal["train", "pool", "eval"] = "train"):
    """A `Selection`, canonical rows or TRL rows -> TRL rows (`prompt`, `images`, `answer`, ...).

    Raises when answers are missing (if the rewards need them) or when training rows include ones
    that selection dropped; warns when training rows carry no RAP decision at all. Pool rows are
    ordered hardest first.
    """
    from datasets import Dataset

    from ..data.exporters import to_trl

    what = {"train": "train_dataset", "pool": "replacement_pool", "eval": "eval_dataset"}[role]
    is_pool = role == "pool"
    if role == "train":
        refuse_empty_training(data, what)  # an empty replacement pool is not an error: the trainer warns

    if _is_selection(data):
        data = data.replacement_pool() if is_pool else data.dataset
    if not isinstance(data, Dataset):
        from datasets import IterableDataset

        if is_pool or not isinstance(data, IterableDataset):
            raise TypeError(
                f"{what} must be a datasets.Dataset or a rap_hf Selection, got {type(data).__name__}"
                + (" (online replacement needs random access to rows)" if is_pool else "")
            )
        # A stream cannot be checked or converted up front: it must already be TRL rows.
        logger.warning("%s is streamed: its rows are used as they come (TRL layout, answers unchecked).", what)
        return data
    columns = set(data.column_names)
    if role == "train":
        if "rap_keep" not in columns:
            logger.warning(
                "%s carries no RAP decisions (no `rap_keep` column): it was not chosen with `rap-hf select` "
                "(rap_hf.select), so "
                "this is plain GRPO on all %d rows.", what, len(data),
            )
        else:
            dropped = np.flatnonzero(~np.asarray(data["rap_keep"], dtype=bool))
            if len(dropped):
                raise ValueError(
                    f"{what} holds {len(dropped)} row(s) that selection dropped (rap_keep=False: "
                    f"{_row_names(data, dropped)}). Train on the kept rows: the `rap-hf select` folder itself "
                    "(--dataset DIR, not its decisions/); in Python selection.dataset or the Selection, not "
                    "selection.decisions."
                )
    if is_pool:
        if len(data) == 0:  # nothing to convert (the trainer warns); `combine_with_pool` aligns its columns
            return data
        data = hardest_first(data)
    if "prompt" in columns:
        if needs_answer:
            _check_answers(data, what)
        if not {"images", "image"} & columns:
            logger.warning("%s has no `images` column: the model trains without pictures.", what)
        return data
    if is_canonical(data):
        if needs_answer:
            _check_answers(data, what)
        return to_trl(data, format_prompt=format_prompt, system_prompt=system_prompt)
    raise ValueError(
        f"{what} is neither canonical RAP rows ({', '.join(CANONICAL_COLUMNS)}) nor TRL rows (a `prompt` "
        f"column); it has {', '.join(data.column_names)}. Convert it first: `rap-hf convert` (or "
        "rap_hf.to_rap_format)."
    )


def hardest_first(pool):
    """Order pool rows hardest first: higher `rap_difficulty`, then larger `rap_cde` (more visual
    dependence), then `rap_id`. Rows without scores keep their order, after the scored ones."""
    n = len(pool)
    if "rap_difficulty" not in pool.column_names or n == 0:
        return pool

    from ..data.columns import float_column

    difficulty = float_column(pool, "rap_difficulty")
    cde = float_column(pool, "rap_cde") if "rap_cde" in pool.column_names else np.zeros(n)
    ids = np.asarray(pool["rap_id"] if "rap_id" in pool.column_names else np.arange(n).astype(str))
    # lexsort sorts by the last key first; NaN (unscored) sorts after every number.
    order = np.lexsort((ids, np.nan_to_num(-cde, nan=np.inf), np.nan_to_num(-difficulty, nan=np.inf)))
    return pool.select(order)


def combine_with_pool(train, pool):
    """Training rows first, then pool rows not already among them, with `rap_train_index`.

    Returns (combined dataset, number of training rows, dataset indices of the pool rows).
    """
    from datasets import concatenate_datasets

    if "rap_id" in train.column_names and "rap_id" in pool.column_names:
        taken = set(train["rap_id"])
        duplicate = np.flatnonzero([rid in taken for rid in pool["rap_id"]])
        if len(duplicate):
            logger.warning("Dropping %d replacement pool row(s) that are already training rows (%s).",
                           len(duplicate), _row_names(pool, duplicate))
            pool = pool.select(np.setdiff1d(np.arange(len(pool)), duplicate))
    missing = [c for c in train.column_names if c not in pool.column_names]
    if missing:
        # Training rows keep every column; pool rows get None where they have no value.
        if len(pool):  # (an empty pool has no rows to say this of: the trainer says it is empty)
            logger.warning("The replacement pool lacks columns %s: its rows carry None there.", missing)
        for column in missing:
            pool = pool.add_column(column, [None] * len(pool), feature=train.features[column])
    pool = pool.select_columns(train.column_names)
    try:
        pool = pool.cast(train.features)
    except (ValueError, TypeError) as error:
        raise ValueError(f"The replacement pool's columns do not match the training rows' types: {error}") from error
    combined = concatenate_datasets([train, pool])
    combined = combined.add_column(INDEX_COLUMN, np.arange(len(combined)).tolist())
    return combined, len(train), list(range(len(train), len(combined)))


def rows_digest(ds) -> str:
    """The rows' ids in order, hashed (their count when there are no ids): what a resumed run
    checks so that a checkpoint's slots are applied to the same rows."""
    return rap_ids_digest(ds["rap_id"] if "rap_id" in ds.column_names else [len(ds)])
