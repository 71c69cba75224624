"""Source layouts as adapters: each published layout is one small module holding a `Layout` (which
columns hold the question, the answer, the images, ...), registered once in `registry`.

`to_rap_format` reads a dataset through the layout it is given (`layout=`, a name or your own
`Layout`), or the first registered one that recognises its columns (`preset="auto"`).
"""

from .base import Layout, SourceColumns
from .registry import (
    AUTO,
    LAYOUTS,
    PUBLISHED_LAYOUTS,
    detect_layout,
    get_layout,
    layout_names,
    mapping_error,
    register_layout,
    unregister_layout,
)

__all__ = [
    "AUTO",
    "LAYOUTS",
    "PUBLISHED_LAYOUTS",
    "Layout",
    "SourceColumns",
    "detect_layout",
    "get_layout",
    "layout_names",
    "mapping_error",
    "register_layout",
    "unregister_layout",
]
