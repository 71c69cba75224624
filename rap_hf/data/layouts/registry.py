"""The one registry of layouts: the published ones, in the order `preset="auto"` tries them, and any
registered since.

Everything that lists layouts reads it when it runs: auto-detection, `to_rap_format(preset=...)`,
`ColumnMapping`'s check, and the `--preset` choices and help of every command (read when its parser
is built). tests/test_layout_registry.py checks that docs/your-data.md lists the published layouts in this
order.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import easyr1, mathverse, mathvista, mm_eureka, mmmu_pro_vision, rap, scienceqa, trl, verl
from .base import Layout

AUTO = "auto"
"""The preset that detects the layout from the columns (the first layout that recognises them)."""

# The published layouts, in the order auto-detection tries them: the first that recognises a
# dataset's columns wins, so the catch-all `question` + `answer` layout comes after the specific ones. A new published
# layout is its module in this package and one line here.
PUBLISHED_LAYOUTS: tuple[Layout, ...] = (
    rap.LAYOUT,
    trl.LAYOUT,
    mm_eureka.LAYOUT,
    easyr1.LAYOUT,
    verl.LAYOUT,
    scienceqa.LAYOUT,
    mathverse.LAYOUT,
    mathvista.LAYOUT,
    mmmu_pro_vision.LAYOUT,  # no question column: after every layout that reads one
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in PUBLISHED_LAYOUTS}
"""Every registered layout by name, in auto-detection order (changed in place by `register_layout`)."""


def register_layout(layout: Layout, *, before: str | None = None) -> Layout:
    """Register `layout` under its name: a `--preset` choice, and tried by auto-detection after the
    layouts registered before it, or just before the layout named `before` (e.g. "mathvista", which
    recognises any `question` + `answer` columns). Returns the layout."""
    if not isinstance(layout, Layout):
        raise TypeError(f"register_layout takes a rap_hf.data.layouts.Layout, got {type(layout).__name__}")
    if layout.name == AUTO:
        raise ValueError(f"{AUTO!r} cannot name a layout: preset='auto' asks for detection")
    if layout.name in LAYOUTS:
        raise ValueError(f"A layout named {layout.name!r} is already registered (unregister_layout removes it)")
    if before is not None and before not in LAYOUTS:
        raise ValueError(f"before={before!r} is not a registered layout; registered: {', '.join(LAYOUTS)}")
    entries = list(LAYOUTS.values())
    entries.insert(entries.index(LAYOUTS[before]) if before is not None else len(entries), layout)
    LAYOUTS.clear()
    LAYOUTS.update((entry.name, entry) for entry in entries)
    return layout


def unregister_layout(name: str) -> Layout:
    """Remove the layout registered as `name` (see `get_layout` for the error); returns it."""
    layout = get_layout(name)
    del LAYOUTS[name]
    return layout


def layout_names() -> list[str]:
    """The registered layouts' names, in auto-detection order."""
    return list(LAYOUTS)


def get_layout(name: str) -> Layout:
    """The layout registered as `name`; a `ValueError` naming the choices otherwise."""
    if name not in LAYOUTS:
        raise ValueError(f"Unknown preset {name!r}; choose 'auto' or one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def detect_layout(columns: Sequence[str]) -> Layout | None:
    """The first registered layout that recognises `columns` (None when none does)."""
    return next((layout for layout in LAYOUTS.values() if layout.recognises(columns)), None)


def mapping_error(columns: Sequence[str]) -> ValueError:
    """The error for columns no layout recognises: what was found, what each layout needs, and the
    arguments that map columns by hand."""
    known = "\n".join(f"  - {layout.name}: needs {', '.join(layout.required)}" for layout in LAYOUTS.values())
    return ValueError(
        f"Cannot recognise the dataset layout. Columns found: {', '.join(columns) or '(none)'}.\n"
        f"Known presets:\n{known}\n"
        "Map your columns explicitly, e.g. to_rap_format(ds, question='my_question', answer='my_answer', "
        "images='my_image', id='my_id') (rap-hf: --question, --answer, --images, --id, --choices)."
    )
