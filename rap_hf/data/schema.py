"""Canonical RAP rows and `to_rap_format`: the names this module has always offered, re-exported
from the modules that hold them now.

- `rap_hf.data.canonical`: the canonical columns, ids, and whether rows are canonical
  (`is_canonical`, `ensure_canonical`).
- `rap_hf.data.layouts`: the source layouts (`Layout`, one module per published layout) and their
  registry (`PRESETS`, `register_layout`).
- `rap_hf.data.column_mapping`: `ColumnMapping`, the mapping flags of every command.
- `rap_hf.data.conversion`: `to_rap_format`, and `as_canonical` (converted unless canonical); `rap_hf.data.conversion_report`: its warnings.
- `rap_hf.data.placeholders`, `rap_hf.data.answers`, `rap_hf.data.column_detection`: question text,
  options and answers, and which columns hold what.
"""

from __future__ import annotations

from .answers import OPTION_LETTERS, canonical_answer, parse_choices, render_question
from .canonical import (
    CANONICAL_COLUMNS,
    content_hash,
    ensure_canonical,
    images_feature,
    is_canonical,
    rap_ids_digest,
)
from .column_detection import (
    CHOICE_COLUMNS,
    DUPLICATE_IMAGE_COLUMNS,
    ID_COLUMNS,
    IMAGE_COLUMNS,
    NUMBERED_IMAGE_COLUMN,
    looks_like_images,
    numbered_image_columns,
)
from .column_mapping import ColumnMapping, PresetName
from .conversion import as_canonical, to_rap_format
from .conversion_report import logger
from .layouts import LAYOUTS as PRESETS
from .layouts import Layout, detect_layout, register_layout, unregister_layout
from .placeholders import strip_image_placeholders

Preset = Layout  # a preset is a registered layout
detect_preset = detect_layout

__all__ = [
    "CANONICAL_COLUMNS",
    "CHOICE_COLUMNS",
    "DUPLICATE_IMAGE_COLUMNS",
    "ID_COLUMNS",
    "IMAGE_COLUMNS",
    "NUMBERED_IMAGE_COLUMN",
    "OPTION_LETTERS",
    "PRESETS",
    "ColumnMapping",
    "Layout",
    "Preset",
    "PresetName",
    "as_canonical",
    "canonical_answer",
    "content_hash",
    "detect_layout",
    "detect_preset",
    "ensure_canonical",
    "images_feature",
    "is_canonical",
    "logger",
    "looks_like_images",
    "numbered_image_columns",
    "parse_choices",
    "rap_ids_digest",
    "register_layout",
    "render_question",
    "strip_image_placeholders",
    "to_rap_format",
    "unregister_layout",
]
