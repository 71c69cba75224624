"""The layout of a saved selection: a folder of the kept rows (`dataset/`), every row with its
decision (`decisions/`), the report (`report.json`, `report.md`), the `SelectionConfig` and the
plots. Its names live in `rap_hf.data.saved`, below this stage and the command-line readers.
`Selection.save_to_disk` and `load_from_disk` write and read it through `write_selection` and
`read_selection`; the CLI, the Space and `rap-hf train` read it through these names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SelectionConfig
from ..data.saved import (
    CONFIG_FILE,
    DATASET_FOLDER,
    DECISIONS_FOLDER,
    PLOTS_FOLDER,
    REPORT_JSON,
    REPORT_MARKDOWN,
    load_saved,
)
from .report import SelectionReport

if TYPE_CHECKING:  # pragma: no cover
    from .result import Selection


def write_selection(selection: Selection, folder: str | Path) -> Path:
    """Write `selection` in this layout into `folder` (created if needed); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    selection.dataset.save_to_disk(str(folder / DATASET_FOLDER))
    selection.decisions.save_to_disk(str(folder / DECISIONS_FOLDER))
    selection.report.to_json(folder / REPORT_JSON)
    (folder / REPORT_MARKDOWN).write_text(selection.report.to_markdown())
    config = selection.config.to_dict() if selection.config is not None else None
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    selection.report.save_plots(folder / PLOTS_FOLDER)
    return folder


def read_selection(folder: str | Path) -> tuple[Any, Any, SelectionReport, SelectionConfig | None]:
    """(kept rows, decisions, report, config) of a selection saved in `folder` by `write_selection`."""
    from datasets import load_from_disk


    folder = Path(folder)
    # The report is needed too (not only what `is_selection_folder` looks for): it is loaded back.
    missing = [name for name in (DATASET_FOLDER, DECISIONS_FOLDER, REPORT_JSON) if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a saved selection (no {', '.join(missing)}); write one with "
                                "Selection.save_to_disk or `rap-hf select --output`")
    report = SelectionReport.from_dict(json.loads((folder / REPORT_JSON).read_text()))
    config_path = folder / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.exists() else None
    decisions = load_saved(folder / DECISIONS_FOLDER)  # a selection of no rows too (datasets cannot)
    # datasets cannot load a saved dataset of no rows; the kept rows are then none of the decisions.
    dataset = decisions.select([]) if report.kept == 0 else load_from_disk(str(folder / DATASET_FOLDER))
    return dataset, decisions, report, SelectionConfig(**config) if config else None
