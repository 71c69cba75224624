"""What rap-hf writes to disk and reads back by name, in one low module that the readers of command
lines (`rap_hf.data.io`) and the selection stage (`rap_hf.selection.layout`) both import, so neither
imports the other: a saved selection's folders and files, the scoring record's name, and
`load_saved`, which reads a saved dataset back (also one saved with no rows).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Written by sharded scoring (`rap-hf score`) inside its merged output: how the rows were scored (the
# model, the RAPConfig, the rows). `rap-hf select` keeps a copy next to a selection and the dataset
# card reads it (`rap_hf.hub`), without importing the scoring code.
SCORING_RECORD = "rap_scoring.json"

# The layout of a saved selection (`Selection.save_to_disk`, `rap-hf select --output`).
DATASET_FOLDER = "dataset"  # the kept rows (datasets' save_to_disk)
DECISIONS_FOLDER = "decisions"  # every input row with rap_keep and rap_reason (save_to_disk)
REPORT_JSON = "report.json"  # SelectionReport.to_dict()
REPORT_MARKDOWN = "report.md"  # SelectionReport.to_markdown()
CONFIG_FILE = "selection_config.json"  # the SelectionConfig, or null for another rule
PLOTS_FOLDER = "plots"  # SelectionReport.save_plots()


def is_selection_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by `Selection.save_to_disk` (or `rap-hf select --output`): its
    `dataset/` (kept rows) and `decisions/` (every row) folders are both inside."""
    return os.path.isdir(os.path.join(path, DATASET_FOLDER)) and os.path.isdir(os.path.join(path, DECISIONS_FOLDER))


def load_saved(path: str | os.PathLike):
    """`datasets.load_from_disk(path)`, also for a dataset (or a split of a `DatasetDict`) saved with
    no rows: `save_to_disk` writes one, with its columns, but `load_from_disk` fails on it with an
    `IndexError`; here it reads back as an empty dataset with the saved columns and features."""
    from datasets import Dataset, DatasetDict, DatasetInfo, Features, load_from_disk

    folder = Path(path)
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        if any(_saved_without_rows(folder / split) for split in splits):
            return DatasetDict({split: load_saved(folder / split) for split in splits})
    elif _saved_without_rows(folder):
        info = DatasetInfo.from_directory(str(folder))
        features = info.features or Features()
        split = json.loads((folder / "state.json").read_text()).get("_split")
        return Dataset.from_dict({name: [] for name in features}, features=features, info=info, split=split)
    return load_from_disk(str(folder))


def _saved_without_rows(folder: Path) -> bool:
    """Whether `folder` holds a dataset that `save_to_disk` wrote with no rows (no data files)."""
    state = folder / "state.json"
    return state.is_file() and not json.loads(state.read_text()).get("_data_files")
