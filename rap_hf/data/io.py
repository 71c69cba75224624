"""Reading a dataset named on the command line: a `save_to_disk` folder, data files, or a Hub id.

Rows read from a local data file remember the folder it lies in (`source_folder`): relative image
paths in them (a CSV's `image_path`, an imagefolder's `metadata.csv` `file_name`, MM-Eureka's
message paths) are written relative to that file, not to the working directory, and
`to_rap_format` resolves them against it unless it is given another `image_root`.

A reference that cannot be found fails at once, before `datasets` would try the Hub
(`rap_hf.references.check_reference`), and a dataset saved with no rows reads back as an empty
dataset (`load_saved`), which `datasets.load_from_disk` cannot do.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from .saved import SCORING_RECORD, load_saved  # noqa: F401  (SCORING_RECORD: re-exported, it lived here)


def load_rows(ref: str, split: str | None = None, *, single: bool = False):
    """Load `ref` as a `Dataset` (or `DatasetDict` when `split` is None and there are several).

    `ref` may be a folder written by `save_to_disk`, a local Parquet/JSON(L)/CSV/Arrow file, or
    anything `datasets.load_dataset` accepts (a Hub id, a folder of data files). With `single=True`,
    a dataset of several splits and no `split` is an error that lists the splits. A folder written by
    `rap-hf select --output` holds two datasets, so it is an error that names them.

    Raises:
        FileNotFoundError: at once, without asking the Hub, when `ref` looks like a local path that
            does not exist, or, offline, is neither on disk nor in the Hub cache (one line naming it
            and the nearest fix; see `rap_hf.references.check_reference`).
    """
    from datasets import DatasetDict, load_dataset

    from ..references import check_reference
    from .saved import DATASET_FOLDER, DECISIONS_FOLDER, is_selection_folder

    ref = check_reference(os.fspath(ref), "dataset")
    if is_selection_folder(ref):
        # Neither of its datasets is the obvious choice (kept rows to train or evaluate on, every row
        # to select again), and datasets would otherwise try to read the folder as loose data files.
        raise ValueError(
            f"{ref!r} is a selection folder (`rap-hf select --output`): pass {os.path.join(ref, DATASET_FOLDER)!r} "
            f"for the kept rows or {os.path.join(ref, DECISIONS_FOLDER)!r} for every row with its decision"
        )
    if os.path.isdir(ref) and (
        os.path.exists(os.path.join(ref, "dataset_info.json")) or os.path.exists(os.path.join(ref, "dataset_dict.json"))
    ):
        loaded = load_saved(ref)
    elif os.path.isfile(ref):
        extension = os.path.splitext(ref)[1].lstrip(".").lower()
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv", "arrow": "arrow"}.get(extension)
        if builder is None:
            raise ValueError(f"Cannot read {ref!r}: use a .parquet, .json, .jsonl, .csv or .arrow file, or a dataset "
                             "folder")
        loaded = _from_file(load_dataset(builder, data_files=ref), ref)
    elif os.path.isdir(ref):
        # A folder of data files (or an imagefolder, whose images datasets resolves itself).
        loaded = _from_file(load_dataset(ref), ref)
    else:
        loaded = load_dataset(ref)
    if isinstance(loaded, DatasetDict):
        if split is not None:
            if split not in loaded:
                raise ValueError(f"{ref!r} has no split {split!r}; splits: {', '.join(loaded)}")
            return loaded[split]
        if len(loaded) == 1:
            return next(iter(loaded.values()))
        if single:
            raise ValueError(f"{ref!r} has several splits ({', '.join(loaded)}); choose one with --split")
    elif split is not None and split != "train":
        raise ValueError(f"{ref!r} is a single dataset; it has no split {split!r}")
    return loaded


def source_folder(ds) -> str | None:
    """The folder of the local data file `ds` was read from by `load_rows`, or None (a Hub dataset,
    a `save_to_disk` folder, a dataset built in memory or by `datasets.load_dataset` directly).

    `load_rows` records the file as the dataset's `info.homepage` (a `file://` URL), which
    `select`, `filter`, `map` and `save_to_disk` carry along with the rows.
    """
    homepage = getattr(getattr(ds, "info", None), "homepage", None) or ""
    if not homepage.startswith("file://"):
        return None
    path = unquote(urlparse(homepage).path)
    return path if os.path.isdir(path) else os.path.dirname(path)


def _from_file(loaded, ref: str):
    """`loaded` with `ref` (a local file or folder) recorded as where its rows came from."""
    from datasets import DatasetDict

    url = Path(os.path.abspath(ref)).as_uri()
    for part in loaded.values() if isinstance(loaded, DatasetDict) else [loaded]:
        if not part.info.homepage:
            part.info.homepage = url
    return loaded
