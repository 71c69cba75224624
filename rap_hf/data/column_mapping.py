"""`ColumnMapping`: which source columns give the canonical ones, as every command's flags.

`rap-hf convert`, `score`, `eval` and `quickstart --dataset` take its fields as flags; its
`--preset` choices and help come from the layout registry when a parser is built, so a layout
registered after import (`register_layout`) is a choice with no other edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigMixin
from ..flags import RegistryFlag
from .layouts import AUTO, PUBLISHED_LAYOUTS, get_layout, layout_names

PresetName = Literal[(AUTO, *(layout.name for layout in PUBLISHED_LAYOUTS))]  # type: ignore[valid-type]
"""The published presets, for type hints; `ColumnMapping.preset` also takes layouts registered since."""


def preset_flag() -> dict[str, Any]:
    """`--preset`'s choices and help, from the layout registry as it is now."""
    names = layout_names()
    return {"choices": [AUTO, *names],
            "help": f"Source layout: {AUTO} (detect from the columns) or {', '.join(names)}. The column flags below "
                    "override it."}


@dataclass(kw_only=True)
class ColumnMapping(ConfigMixin):
    """Which source columns give the canonical ones (the arguments of `to_rap_format`).

    Every command that reads rows (`rap-hf convert`, `score`, `eval`, `quickstart --dataset`) takes
    these fields as its flags; `rap_format_kwargs()` gives them as `to_rap_format` keyword arguments.
    """

    preset: str = field(default=AUTO, metadata=RegistryFlag(preset_flag))
    question: str | None = field(default=None, metadata={"help": "Source column of the question text."})
    answer: str | None = field(default=None, metadata={
        "help": "Source column of the ground-truth answer (an option's text, letter or 0-based index with options)."})
    images: str | None = field(default=None, metadata={
        "help": "Source column(s) of the images, comma-separated for several in order (e.g. image_1,image_2): "
                "images, paths, bytes or lists of them."})
    id: str | None = field(default=None, metadata={
        "help": "Source column of a stable row id (default: the first of id, pid, qid, question_id, ...; else a "
                "content hash)."})
    choices: str | None = field(default=None, metadata={
        "help": "Source column of the multiple-choice options (a list, a list written as text, or a dict), rendered "
                "into the question as (A) ... lines."})
    image_root: list[str] | None = field(default=None, metadata={
        "help": "Folder relative image paths are resolved against (default: the folder of the data file the rows "
                "were read from; its images/ subfolder is also tried), and/or OLD=NEW to read absolute paths or URLs "
                "under OLD from NEW instead (e.g. --image-root /cluster/share/MM-Eureka=/data/mm-eureka). Repeat it for "
                "several.", "action": "extend"})
    fetch_images: bool = field(default=False, metadata={
        "help": "Download images given as http(s) URLs into the rows (each once, with retries and a cache in "
                "~/.cache/rap_hf/images or $RAP_HF_IMAGE_CACHE); without it such rows fail alone, with a rap_error."})

    def __post_init__(self) -> None:
        if isinstance(self.image_root, str):
            self.image_root = [self.image_root]
        if self.preset != AUTO:
            get_layout(self.preset)  # a name no layout is registered under is an error now, not at conversion

    @property
    def explicit(self) -> bool:
        """Whether anything differs from the default (auto-detect every column)."""
        return is_explicit(self.rap_format_kwargs())

    def rap_format_kwargs(self) -> dict[str, Any]:
        """The mapping as `to_rap_format` keyword arguments (`images` split at commas)."""
        images = self.images
        if images is not None and "," in images:
            images = [name.strip() for name in images.split(",") if name.strip()]
        return {"preset": self.preset, "question": self.question, "answer": self.answer, "images": images,
                "id": self.id, "choices": self.choices, "image_root": self.image_root,
                "fetch_images": self.fetch_images}


def is_explicit(kwargs: Mapping[str, Any]) -> bool:
    """Whether `to_rap_format` keyword arguments map anything: a preset other than auto, a column, an
    image folder (any value other than the default of its argument)."""
    defaults = {"preset": AUTO, "layout": None, "fetch_images": False}
    return any(value != defaults.get(name) for name, value in kwargs.items())
