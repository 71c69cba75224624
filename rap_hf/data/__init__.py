"""Canonical rows, adapters from common layouts, exporters, and the embedded visual world."""

from .schema import CANONICAL_COLUMNS, PRESETS, to_rap_format

__all__ = ["CANONICAL_COLUMNS", "PRESETS", "to_rap_format"]
