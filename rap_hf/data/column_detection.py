"""Which source columns hold what: the candidate names of ids, images and options, and the checks
that tell an image column from a text one.

Layouts (`rap_hf.data.layouts`) pick their columns from these candidates, first present wins; the
conversion report uses `looks_like_images` and `has_value` to name an image column that a
conversion left unused, so that no picture is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .images import looks_like_image_path, parse_listed

# Id columns, first present wins: MathVista `pid`, ViRL39K `qid`, MathVerse `sample_index`, ...
ID_COLUMNS = ("rap_id", "id", "pid", "qid", "question_id", "uid", "sample_id", "sample_index", "problem_id",
              "idx", "index")
# Image columns by name, first present wins (numbered `image_1` .. `image_N` columns come before them).
IMAGE_COLUMNS = ("images", "decoded_image", "image", "img", "imgs", "image_path", "image_paths", "image_file",
                 "image_files", "file_name", "file_names")
CHOICE_COLUMNS = ("choices", "options")
# MMMU's `image_1` .. `image_7` (also `img_2`, `image 3`, `picture_4`), taken in numeric order.
NUMBERED_IMAGE_COLUMN = re.compile(r"^(?:image|img|picture)[ _-]?(\d+)$", re.IGNORECASE)
# Columns that hold the same pictures as an image column, so not using them loses nothing:
# MathVista's `image` is the relative path of its `decoded_image`.
DUPLICATE_IMAGE_COLUMNS = {"decoded_image": ("image",)}


def first_present(candidates: Sequence[str], columns: Sequence[str]) -> str | None:
    """The first candidate present in `columns` (a dotted name counts when its struct column is)."""
    return next((c for c in candidates if c.split(".", 1)[0] in columns), None)


def field_value(batch: dict[str, list], path: str, i: int) -> Any:
    """`batch[path][i]`, following a dotted path into struct columns (None where a field is missing)."""
    head, *fields = path.split(".")
    value = batch[head][i]
    for name in fields:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def numbered_image_columns(columns: Sequence[str]) -> list[str]:
    """`image_1` .. `image_N` (any N, also `img_2`, `image 3`) in numeric order."""
    numbered = [(int(m.group(1)), c) for c in columns if (m := NUMBERED_IMAGE_COLUMN.match(c))]
    return [c for _, c in sorted(numbered)]


def _image_typed(feature) -> bool:
    """An `Image` feature, a list of them, raw bytes, or a `{"bytes", "path"}` struct."""
    from datasets import Image, List, Sequence as HFSequence, Value

    if isinstance(feature, Image):
        return True
    if isinstance(feature, (List, HFSequence)):
        return _image_typed(feature.feature)
    if isinstance(feature, Value):
        return feature.dtype in ("binary", "large_binary")
    return isinstance(feature, dict) and {"bytes", "path"} <= set(feature)


def _text_typed(feature) -> bool:
    from datasets import List, Sequence as HFSequence, Value

    if isinstance(feature, (List, HFSequence)):
        return _text_typed(feature.feature)
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def looks_like_images(ds, column: str, sample: int = 200) -> bool:
    """Whether a column holds images: typed as images or bytes, or text naming image files (paths,
    `file://` URLs, lists of them, lists written as text), judged on its first `sample` values."""
    feature = ds.features[column]
    if _image_typed(feature):
        return True
    if not _text_typed(feature) or len(ds) == 0:
        return False
    values = ds.select_columns([column])[: min(sample, len(ds))][column]
    texts = []
    for value in values:
        texts.extend(value if isinstance(value, (list, tuple)) else [value])
    texts = [t for t in texts if isinstance(t, str) and t.strip() and t.strip() != "[]"]
    return bool(texts) and 2 * sum(map(looks_like_image_path, texts)) >= len(texts)


def has_value(value: Any) -> bool:
    """Whether a cell of an image-like column holds anything (an image, bytes, a path, a list of them)."""
    if value is None:
        return False
    if isinstance(value, str):
        listed = parse_listed(value)
        return has_value(listed) if isinstance(listed, (list, tuple)) else bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(has_value(v) for v in value)
    if isinstance(value, dict):
        return value.get("bytes") is not None or bool(value.get("path"))
    if isinstance(value, (bytes, bytearray)):
        return bool(value)
    return True


def undecoded(feature):
    """The same feature with every `Image` set to `decode=False` (no pixels decoded in maps)."""
    from datasets import Image, List, Sequence as HFSequence

    if isinstance(feature, Image):
        return Image(decode=False)
    if isinstance(feature, List):
        return List(undecoded(feature.feature), length=feature.length)
    if isinstance(feature, HFSequence):
        return HFSequence(undecoded(feature.feature), length=feature.length)
    if isinstance(feature, dict):
        return {k: undecoded(v) for k, v in feature.items()}
    return feature
