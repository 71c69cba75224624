"""The data the Space shows: the scored rows, the model that scored them, and where they come from.

`DemoData.load` opens a scored folder, a `rap-hf select` folder, a published subset (on the Hub or
written with `local_dir=`) or, with no dataset, the embedded visual world scored by the tiny scorer
shipped with the package (scored on the first start, cached, loaded in seconds afterwards).
A saved selection brings its own settings (`saved_selection`), so the page opens at them
(`opening_values`, read before the rows load). `Loader` loads in a thread, so the page is served at
once and shows progress while the embedded world is scored.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RAPConfig, SelectionConfig
from ..selection import read_outcomes

# Columns `select` reads; a new sample is decided among the loaded rows on these alone.
SELECT_COLUMNS = ("rap_id", "rap_image_correct", "rap_text_correct", "rap_image_formatted", "rap_text_formatted",
                  "rap_ace", "rap_error")


@dataclass
class DemoData:
    """The scored rows the Space shows, and the model that scored them (for attention maps and new
    samples; None when only a dataset was given).

    `selection` is what the Space selects with: the mode and ACE setting of every re-selection and the
    thresholds it opens at (`initial_values`). A `rap-hf select` folder (or a published subset) brings
    its own (`selection_config.json`), so the Overview opens on that selection's counts; otherwise
    the paper's defaults."""

    scored: Any
    model: str | None
    config: RAPConfig = field(default_factory=RAPConfig)
    source: str = ""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    _scorer: Any = field(default=None, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        missing = [c for c in SELECT_COLUMNS[:5] if c not in self.scored.column_names]
        if missing:
            raise ValueError(f"The Space needs scored rows; missing columns {', '.join(missing)}. Score them "
                             "first: `rap-hf score --model MODEL --dataset DATASET --output DIR`, then pass --dataset DIR.")
        self._index = {rap_id: i for i, rap_id in enumerate(self.scored["rap_id"])}

    @classmethod
    def load(cls, dataset: str | None = None, model: str | None = None, *, progress=None,
             recipe=None) -> DemoData:
        """`dataset`: a scored folder (`rap-hf score` output, a `rap-hf select` folder, or any
        `save_to_disk` folder) or a Hub dataset id; None: the embedded world of `recipe` (an
        `EmbeddedRecipe`; the default one if None), built on first use."""
        if dataset is None:
            from ..embedded import DEFAULT_RECIPE, embedded_scored, embedded_scorer

            recipe = recipe or DEFAULT_RECIPE
            scored = embedded_scored(recipe, progress=progress, show_progress=True)
            model = model or str(embedded_scorer(recipe))
            return cls(scored, model, recipe.rap_config(),
                       source="the embedded visual world, scored by the embedded tiny scorer (rap_hf.embedded)")
        scored = _load_rows(dataset)
        rollouts = read_outcomes(scored).num_rollouts
        settings, rule = saved_selection(dataset)
        note = ""
        if settings is not None:
            note = f" (opened at the selection's own settings: {settings.mode} mode)"
        elif rule is not None:  # a baseline or a rule of one's own: RAP's settings cannot reproduce it
            note = f" (selected by the {rule} rule; the Space selects with RAP, paper mode)"
        return cls(scored, model, RAPConfig(num_rollouts=rollouts or 5),
                   source=f"{dataset}" + (f", scored by {model}" if model else "") + note,
                   selection=settings or SelectionConfig())

    def initial_values(self) -> tuple[float, float, bool, int]:
        """(lambda_c, lambda_a, DRM size automatic, DRM size k): where the Overview's controls start
        (`overview(data, *data.initial_values())` shows a saved selection's own counts)."""
        return _values(self.selection)

    def row(self, rap_id: str) -> dict[str, Any]:
        if rap_id not in self._index:
            raise ValueError(f"No row with rap_id {rap_id!r} in the loaded dataset")
        return self.scored[self._index[rap_id]]

    def scorer(self):
        if self.model is None:
            raise ValueError("No model loaded: start the Space with --model (or RAP_MODEL) to score new samples "
                             "and to see attention maps")
        if self._scorer is None:
            from ..scoring import RAPScorer

            self._scorer = RAPScorer(self.model, self.config)
        return self._scorer


def _load_rows(reference: str):
    """Every scored row of `reference`: a `save_to_disk` folder, a `rap-hf select` folder (its
    `decisions/`), or a `push_subset` repository, on the Hub or written with `local_dir=` (its
    "decisions" configuration)."""
    import datasets

    from ..selection import DECISIONS_FOLDER, is_selection_folder

    path = Path(reference)
    if path.exists():
        if is_selection_folder(path):  # every row is in its decisions, the kept ones and the others
            path = path / DECISIONS_FOLDER
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
            return loaded
    errors = []
    for config in ("decisions", None):
        try:
            rows = datasets.load_dataset(reference, config, split="train")
        except (ValueError, FileNotFoundError) as error:
            errors.append(f"{config or 'default'}: {error}")
            continue
        return _with_published_images(rows, reference) if config == "decisions" else rows
    raise ValueError(f"Could not load {reference!r} as a saved folder or a dataset repository ({'; '.join(errors)})")


def saved_selection(reference: str) -> tuple[SelectionConfig | None, str | None]:
    """(settings, rule name) of the selection saved at `reference`: a `rap-hf select` folder
    (`selection_config.json`, `report.json`) or a `push_subset` tree on disk (`rap_report.json`).
    Settings are None for a rule without a `SelectionConfig` (a baseline) and for anything else
    (scored rows, a Hub id); the rule name is None when no selection is saved there."""
    from ..selection import CONFIG_FILE, REPORT_JSON, is_selection_folder

    path = Path(reference)
    if is_selection_folder(path):
        config = _json(path / CONFIG_FILE)
        mode = (_json(path / REPORT_JSON) or {}).get("mode")
    elif (path / "rap_report.json").is_file():  # a published subset, written with local_dir=
        report = _json(path / "rap_report.json") or {}
        mode = report.get("mode")
        config = report.get("selection_config") if mode in ("paper", "reference") else None
    else:
        return None, None
    if not isinstance(config, dict):
        return None, mode
    try:
        return SelectionConfig(**config), mode
    except (TypeError, ValueError):  # written by another version: the Space's defaults
        return None, mode


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _with_published_images(decisions, reference: str):
    """A published subset's decisions carry no images (the kept rows do, once): join them back by
    `rap_id`; rows that were dropped get none."""
    import datasets

    from ..data.canonical import images_feature

    if "images" in decisions.column_names:
        return decisions
    kept = datasets.load_dataset(reference, split="train").select_columns(["rap_id", "images"])
    kept = kept.cast_column("images", images_feature())  # undecoded: bytes, as everywhere else
    by_id = dict(zip(kept["rap_id"], kept["images"]))
    return decisions.add_column("images", [by_id.get(i, []) for i in decisions["rap_id"]], feature=images_feature())


def opening_values(dataset: str | None) -> tuple[float, float, bool, int]:
    """(lambda_c, lambda_a, DRM size automatic, DRM size k) the Overview's controls open at for
    `dataset`: a saved selection's own settings (read from its files at once, before its rows are
    loaded: the page is built with them), else the paper's defaults."""
    settings = saved_selection(dataset)[0] if dataset else None
    return _values(settings or SelectionConfig())


def _values(config: SelectionConfig) -> tuple[float, float, bool, int]:
    return float(config.cde_threshold), float(config.ace_threshold), config.drm_k is None, int(config.drm_k or 0)


class Loader:
    """Loads the `DemoData` in a thread, so the page is served while the embedded world is built."""

    def __init__(self, dataset: str | None = None, model: str | None = None, recipe=None) -> None:
        self.dataset = dataset
        self.data: DemoData | None = None
        self.error: str | None = None
        self.status = "Starting"
        self._thread = threading.Thread(target=self._load, args=(dataset, model, recipe), daemon=True)
        self._thread.start()

    def _progress(self, stage: str, done: int, total: int) -> None:
        what = {"warm-up": "Warming up the embedded scorer (first start only; cached afterwards)",
                "scoring": "Scoring the embedded world with it"}.get(stage, stage)
        self.status = f"{what}: {done} / {total}"

    def _load(self, dataset: str | None, model: str | None, recipe) -> None:
        try:
            self.data = DemoData.load(dataset, model, progress=self._progress, recipe=recipe)
            self.status = "Ready"
        except Exception as error:  # shown on the page, not lost in a thread
            self.error = f"{type(error).__name__}: {error}"
            self.status = f"Failed: {self.error}"

    def wait(self, timeout: float | None = None) -> DemoData:
        self._thread.join(timeout)
        if self.data is None:
            raise RuntimeError(self.error or "The Space's data is not loaded yet")
        return self.data

