"""`to_rap_format`: any dataset in a known (or named) layout to canonical RAP rows.

The conversion goes in steps: check the columns the caller named, choose the layout (given, or the
first registered one that recognises the columns), resolve the source column of each canonical one,
plan what the conversion writes (`ConversionPlan`), read every row through the layout in one
`datasets.map`, then report what could not be carried over (`conversion_report`), drop source
copies nothing changed, make ids unique and put the canonical columns first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .canonical import CANONICAL_COLUMNS, images_feature, is_canonical
from .column_detection import DUPLICATE_IMAGE_COLUMNS, has_value, looks_like_images, undecoded
from .conversion_report import (
    LOGGER_NAME,
    ROW_FACTS,
    UNUSED_FACT,
    refusal,
    report_conversion,
    row_facts,
    warn_missing_answers,
)
from .image_sources import ImageSources
from .layouts import AUTO, Layout, SourceColumns, detect_layout, get_layout, mapping_error

logger = logging.getLogger(LOGGER_NAME)

# Rows of no recognised layout whose question and answer columns the caller named: every other
# column is found the way any layout finds it (numbered image columns, then `IMAGE_COLUMNS`, ...).
NAMED_COLUMNS = Layout("named columns", required=())


def to_rap_format(
    ds,
    preset: str = AUTO,
    question: str | None = None,
    answer: str | None = None,
    images: str | Sequence[str] | None = None,
    id: str | None = None,
    *,
    layout: str | Layout | None = None,
    choices: str | None = None,
    image_root: str | Sequence[str] | Mapping[str, str] | None = None,
    fetch_images: bool = False,
    num_proc: int | None = None,
):
    """Convert a dataset to canonical RAP rows, keeping every source column.

    Layouts recognised with `preset="auto"` (docs/your-data.md): canonical rows, TRL, MM-Eureka,
    EasyR1 (geometry3k, ThinkLite-VL), verl, ScienceQA, MathVerse and any `question` + `answer`
    layout (MathVista, MMMU and MMMU-Pro, ViRL39K, imagefolder metadata, your CSV), then any layout
    registered since (`rap_hf.data.layouts.register_layout`).
    Images come from numbered columns (`image_1` .. `image_N`, in numeric order, empty ones
    skipped), else the first of `IMAGE_COLUMNS` present (images, paths, bytes, lists of them, lists
    written as text); options from `choices` or `options`.

    Args:
        ds: A `datasets.Dataset` (or a `DatasetDict`, converted split by split).
        preset: "auto" (detect from the columns), or the name of a registered layout (`PRESETS`).
        question: Source column of the question text (overrides the preset).
        answer: Source column of the ground-truth answer.
        images: Source column(s) of the images, in order: one column or a list (a comma-separated
            string works too).
        id: Source column of a stable row id; without one, `rap_id` is a hash of the content.
        layout: Instead of `preset`: a registered layout's name or a `rap_hf.data.layouts.Layout`
            of your own (registered or not).
        choices: Source column of multiple-choice options, rendered into the question as
            `(A) ...` lines; an answer equal to an option (or its 0-based index) becomes its letter.
        image_root: Folder that relative image paths are resolved against (then its `images/`
            subfolder, where MathVista's and MathVerse's archives unpack). Default: the folder of
            the data file the rows were read from by `rap_hf.data.io.load_rows`; rows built another
            way (e.g. `datasets.load_dataset("csv", data_files=...)`, which does not record its file)
            keep relative paths as they are, with a warning, unless this is given. It may also hold
            re-root rules for absolute paths and URLs, `"OLD=NEW"` or a mapping `{OLD: NEW}` (a path
            under OLD is read under NEW), or a list of one folder and such rules.
        fetch_images: Download images given as http(s) URLs into the rows (each once, with retries
            and a cache: `rap_hf.data.remote_images`). Without it a URL is kept and its row fails
            alone when decoded, with a `rap_error` that says so.
        num_proc: Processes for the conversion `map`.

    Returns:
        The dataset with `rap_id`, `question`, `answer`, `images` first. A source column whose name a
        canonical column takes, and whose values the conversion changed, is kept as
        `source_<name>`; the columns the images came from are moved into `images` (not copied, so
        image bytes are not stored twice). Images stay undecoded (`Image(decode=False)`); an image
        file that does not exist keeps its path and fails its row alone when decoded.

    Raises:
        ValueError: the layout is not recognised (the message lists the columns found and the
            arguments that map them), a named column does not exist, a row cannot be read (the
            message names it), or, with `preset="auto"`, every image would be dropped while a
            column that looks like images was left unused (the message names it and `images=`).
    """
    from datasets import DatasetDict, Features

    if isinstance(ds, DatasetDict):
        return DatasetDict({split: to_rap_format(part, preset, question, answer, images, id, layout=layout,
                                                 choices=choices, image_root=image_root, fetch_images=fetch_images,
                                                 num_proc=num_proc)
                            for split, part in ds.items()})
    columns = list(ds.column_names)
    image_cols = _image_columns_argument(images, columns)
    _check_named_columns(columns, question=question, answer=answer, id=id, choices=choices, images=image_cols)
    wanted = _wanted_layout(preset, layout)
    chosen = _choose_layout(columns, wanted, mapped=bool(question and answer))
    source = _source_columns(chosen, columns, question=question, answer=answer, images=image_cols, id=id,
                             choices=choices)
    plan = ConversionPlan.for_dataset(ds, chosen, source, image_root, fetch=fetch_images, auto=wanted == AUTO)
    for column in source.images:
        ds = ds.cast_column(column, undecoded(ds.features[column]))
    features = plan.features(ds)
    if len(ds) == 0:
        # datasets' map returns an empty dataset as it is, without the new columns: build the empty
        # canonical dataset from the features the conversion would write.
        return _empty_canonical(ds, features, dropped=plan.temporary_columns)
    converted = ds.map(plan.convert_batch, batched=True, with_indices=True, features=Features(features),
                       remove_columns=[c for c in source.images if c != "images"], num_proc=num_proc,
                       desc="to_rap_format", load_from_cache_file=not fetch_images)  # a failed fetch is retried
    return plan.finish(converted)


# --------------------------------------------------------------------------- choosing the layout
def _image_columns_argument(images: str | Sequence[str] | None, columns: Sequence[str]) -> list[str] | None:
    if images is None:
        return None
    if isinstance(images, str):
        if images not in columns and "," in images:
            return [name.strip() for name in images.split(",") if name.strip()]
        return [images]
    return list(images)


def _check_named_columns(columns: Sequence[str], *, images: Sequence[str] | None, **named: str | None) -> None:
    """A column the caller named must exist."""
    for arg, value in [*named.items(), *(("images", name) for name in images or [])]:
        if value is not None and value not in columns:
            raise ValueError(f"{arg}={value!r} is not a column of the dataset. Columns found: {', '.join(columns)}")


def _wanted_layout(preset: str, layout: str | Layout | None) -> str | Layout:
    if layout is None:
        return preset
    if preset != AUTO:
        raise ValueError(f"Pass preset= or layout=, not both (got preset={preset!r} and layout={layout!r})")
    return layout


def _choose_layout(columns: Sequence[str], wanted: str | Layout, *, mapped: bool) -> Layout:
    """The layout to read `columns` with: `wanted` (a layout, a registered name, or auto: the first
    registered layout that recognises them). `mapped`: the caller named the question and answer
    columns, which is enough without a layout."""
    if isinstance(wanted, str) and wanted == AUTO:
        found = detect_layout(columns)
        if found is None and not mapped:
            raise mapping_error(columns)
        return found or NAMED_COLUMNS
    chosen = wanted if isinstance(wanted, Layout) else get_layout(wanted)
    missing = chosen.missing(columns)
    if missing and not mapped:
        kind = "Layout" if isinstance(wanted, Layout) else "Preset"
        raise ValueError(
            f"{kind} {chosen.name!r} needs columns {', '.join(chosen.required)}; missing {', '.join(missing)}. "
            f"Columns found: {', '.join(columns)}"
        )
    return chosen


def _source_columns(layout: Layout, columns: Sequence[str], **named: Any) -> SourceColumns:
    """The layout's source columns, refused when there is no question or no answer to read."""
    source = layout.source_columns(columns, **named)
    if source.question is None and source.messages is None and source.default_question is None:
        raise mapping_error(columns)
    if source.answer is None:
        raise ValueError(f"No answer column found. Columns found: {', '.join(columns)}; name it with --answer "
                         "COLUMN (answer='...' in Python).")
    return source


# --------------------------------------------------------------------------- converting
@dataclass
class ConversionPlan:
    """What one conversion writes, and the `datasets.map` function that writes it."""

    layout: Layout
    source: SourceColumns
    images: ImageSources
    """Where the rows' image paths point (the folder, re-root rules, whether URLs are fetched)."""
    emit_choices: bool
    """Options named by another column are also written as `choices`, where the scorer looks for them."""
    shadowed: list[str]
    """Source columns whose names canonical columns take: kept as `source_<name>` (dropped again
    when the conversion left every value unchanged)."""
    watched: dict[str, str]
    """Fact column -> an image-looking column the conversion leaves unused (never silently)."""
    duplicates: set[str]
    """Unused columns that hold the same pictures as a used one (noted, not warned about)."""
    auto: bool

    @classmethod
    def for_dataset(cls, ds, layout: Layout, source: SourceColumns, image_root: Any, *, fetch: bool = False,
                    auto: bool) -> ConversionPlan:
        """The plan for `ds`; refuses (in auto mode) when no image column was found while one looks like images."""
        columns = list(ds.column_names)
        used = source.used
        unused = [c for c in columns if c not in used and looks_like_images(ds, c)]
        if auto and not source.images and source.messages is None and unused:
            raise refusal(unused, "no image column of a known layout was found")
        from .io import source_folder

        return cls(
            layout=layout, source=source, images=ImageSources.parse(image_root, default_folder=source_folder(ds),
                                                                    fetch=fetch),
            emit_choices=source.choices is not None and source.choices != "choices" and "choices" not in columns,
            shadowed=[c for c in ("rap_id", "question", "answer") if c in columns],
            watched={UNUSED_FACT.format(k): c for k, c in enumerate(unused)},
            duplicates={d for c in source.images for d in DUPLICATE_IMAGE_COLUMNS.get(c, ())},
            auto=auto,
        )

    @property
    def produced(self) -> list[str]:
        return [*CANONICAL_COLUMNS, *(["choices"] if self.emit_choices else [])]

    @property
    def temporary_columns(self) -> list[str]:
        """Columns the map writes and the finished rows do not keep (before unchanged sources are known)."""
        return [*ROW_FACTS, *self.watched, *(f"source_{name}" for name in self.shadowed)]

    def features(self, ds) -> dict[str, Any]:
        """The features of the map's output: the kept source columns, the canonical ones, the facts."""
        from datasets import List, Value

        features = {name: feat for name, feat in ds.features.items() if name not in self.source.images}
        features.update({"rap_id": Value("string"), "question": Value("string"), "answer": Value("string"),
                         "images": images_feature()})
        if self.emit_choices:
            features["choices"] = List(Value("string"))
        for name in self.shadowed:
            features[f"source_{name}"] = ds.features[name]
        features.update({name: Value(dtype) for name, dtype in ROW_FACTS.items()})
        features.update({name: Value("bool") for name in self.watched})
        return features

    def convert_batch(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        """A batch of source rows -> the canonical columns and the facts the report counts."""
        out: dict[str, list] = {k: [] for k in (*self.produced, *ROW_FACTS, *self.watched)}
        for name in self.shadowed:
            out[f"source_{name}"] = list(batch[name])
        if self.images.fetch:
            self._fetch_urls(batch, len(indices))
        for i, index in enumerate(indices):
            try:
                row = self.layout.read_row(batch, i, self.source, self.images)
            except Exception as error:  # name the row: a bad one must not be a mystery in a million
                raise ValueError(
                    f"to_rap_format: row {index} cannot be read ({type(error).__name__}: {error}). "
                    "Fix or drop it (in Python, e.g. ds.filter(...)) and convert again."
                ) from error
            for name, value in (("rap_id", row.rap_id), ("question", row.question), ("answer", row.answer),
                                ("images", row.images)):
                out[name].append(value)
            if self.emit_choices:
                out["choices"].append(row.choices)
            for name, value in row_facts(row).items():
                out[name].append(value)
            for name, column in self.watched.items():
                out[name].append(has_value(batch[column][i]))
        return out

    def _fetch_urls(self, batch: dict[str, list], size: int) -> None:
        """Download the batch's image URLs together (many in flight), before its rows read them one by one."""
        collected = _URLCollector()
        looking = dataclasses.replace(self.images, fetcher=collected)
        for i in range(size):
            with contextlib.suppress(Exception):  # a row that cannot be read fails in the real pass
                self.layout.read_row(batch, i, self.source, looking)
        self.images.downloader().fetch_all(collected.urls)

    def finish(self, converted):
        """Report, then remove the facts and unchanged source copies, make ids unique, canonical first."""
        report_conversion(converted, self.watched, self.duplicates, self.source.images, self.source.messages,
                          auto=self.auto)
        failed = getattr(self.images.fetcher, "errors", None)  # this process's downloads (not num_proc workers')
        if failed:
            url, why = next(iter(failed.items()))
            logger.warning("%d image URLs could not be downloaded (e.g. %s: %s)", len(failed), url, why)
        converted = converted.remove_columns([*ROW_FACTS, *self.watched])
        converted = _drop_unchanged_sources(converted, self.shadowed)
        converted = _deduplicate_ids(converted)
        warn_missing_answers(converted)
        return _canonical_first(converted)


class _URLCollector:
    """Stands in for the downloader while a batch is read once to list its image URLs."""

    def __init__(self):
        self.urls: set[str] = set()

    def get(self, url: str) -> None:
        self.urls.add(url)


# --------------------------------------------------------------------------- finishing
def _canonical_first(ds):
    rest = [c for c in ds.column_names if c not in CANONICAL_COLUMNS]
    return ds.select_columns([*CANONICAL_COLUMNS, *rest])


def _empty_canonical(ds, features: Mapping[str, Any], dropped: Sequence[str]):
    """The conversion of `ds`, a dataset with no rows: its kept columns and the canonical ones, with
    the features a conversion writes (canonical columns first), and `ds`'s info (where the rows came
    from)."""
    from datasets import Dataset, Features

    kept = Features({name: feature for name, feature in features.items() if name not in dropped})
    info = ds.info.copy()
    info.features = kept
    empty = Dataset.from_dict({name: [] for name in kept}, features=kept, info=info, split=ds.split)
    return _canonical_first(empty)


def _drop_unchanged_sources(ds, shadowed: Sequence[str]):
    """Remove `source_<name>` copies that equal their canonical column everywhere."""
    import pyarrow.compute as pc

    drop = []
    table = ds.with_format("arrow")[:]  # zero-copy view of the columns
    for name in shadowed:
        source = table.column(f"source_{name}")
        canonical = table.column(name)
        try:
            same = pc.all(pc.fill_null(pc.equal(pc.cast(source, canonical.type), canonical), False)).as_py()
        except Exception:  # uncastable types: they differ
            same = False
        if same or len(ds) == 0:
            drop.append(f"source_{name}")
    return ds.remove_columns(drop) if drop else ds


def _deduplicate_ids(ds):
    """Make `rap_id` unique: repeats get `#2`, `#3`, ... in dataset order, with a warning."""
    ids = ds["rap_id"]
    counts = Counter(ids)
    repeated = {k for k, v in counts.items() if v > 1}
    if not repeated:
        return ds
    seen: Counter[str] = Counter()
    new_ids = []
    for rid in ids:
        seen[rid] += 1
        new_ids.append(rid if seen[rid] == 1 else f"{rid}#{seen[rid]}")
    logger.warning(
        "%d rap_id values occur more than once (e.g. %s); later occurrences were suffixed with #2, #3, ...",
        len(repeated), ", ".join(sorted(repeated)[:3]),
    )
    column_order = ds.column_names
    ds = ds.remove_columns("rap_id").add_column("rap_id", new_ids)
    return ds.select_columns(column_order)


def as_canonical(ds: Any, mapping: Mapping[str, Any] | Any | None = None, *,
                 on_convert: Callable[[], None] | None = None):
    """`ds` as canonical rows: converted with `to_rap_format` unless it already is canonical.

    Rows are converted when a canonical column is missing, or when `mapping` maps anything (a
    preset other than auto, a column, an image folder): a mapping the user gave is applied even to
    rows that have the canonical columns. Canonical rows with no mapping are returned as they are.

    Args:
        ds: A `Dataset` or `DatasetDict`.
        mapping: `to_rap_format` keyword arguments (`preset`, `question`, `answer`, `images`, `id`,
            `choices`, `image_root`), or a `ColumnMapping` (its `rap_format_kwargs()`).
        on_convert: Called once, before converting (e.g. to say so on the terminal).
    """
    from .column_mapping import ColumnMapping, is_explicit

    kwargs = mapping.rap_format_kwargs() if isinstance(mapping, ColumnMapping) else dict(mapping or {})
    if is_canonical(ds) and not is_explicit(kwargs):
        return ds
    if on_convert is not None:
        on_convert()
    return to_rap_format(ds, **kwargs)
