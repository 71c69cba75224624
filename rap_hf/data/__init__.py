"""Canonical rows, adapters from common layouts, exporters, and the embedded visual world."""

from .canonical import CANONICAL_COLUMNS
from .conversion import to_rap_format
from .layouts import LAYOUTS as PRESETS

__all__ = ["CANONICAL_COLUMNS", "PRESETS", "to_rap_format"]
