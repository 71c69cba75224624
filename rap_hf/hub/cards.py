"""What the dataset and model cards share: their templates, tags, metadata values and the way a
value or a model is shown.

The cards are rendered from the Jinja templates in `rap_hf/model_cards/` (package data: they ship
with every install). A card never shows a path of the machine that wrote it: models are named by
their Hub id or their folder's name (`describe_model`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "model_cards"

DATASET_TAGS = ["rap", "data-selection", "vision-language", "multimodal-reasoning", "grpo"]
MODEL_TAGS = ["rap", "grpo", "trl", "vision-language", "multimodal-reasoning"]
HUB_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                       (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def card_template(name: str, template: str | Path | None) -> Path:
    """The template to render: `template` when given, else `name` of the shipped templates. Called
    before any work, so that a mistyped template fails at once."""
    path = Path(template) if template is not None else TEMPLATES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"Card template {path} not found. The card templates ship with rap-hf (rap_hf/model_cards/): reinstall "
            "it (pip install --force-reinstall rap-hf), or, in Python, pass template= with your own Jinja template "
            "(it must start with the '---\\n{{ card_data }}\\n---' front matter)."
        )
    return path


def size_category(n: int) -> str:
    """The Hub's `size_categories` value for n rows."""
    for limit, label in HUB_SIZE_CATEGORIES:
        if n < limit:
            return label
    return "n>1B" if n < 10_000_000_000 else "n>1T"


def license_metadata(license: str | None) -> dict[str, str]:
    """A Hub license id as given ("cc-by-4.0"); free text ("CC BY 4.0") as `other` with a
    `license_name` slug, since the Hub refuses metadata with an unknown license id."""
    if not license:
        return {}
    if re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        return {"license": license}
    slug = re.sub(r"[^a-z0-9]+", "-", license.lower()).strip("-") or "custom"
    return {"license": "other", "license_name": slug}


def shown(value: Any) -> str:
    """`value` as a card's Markdown table cell shows it: one line, no stray column separator."""
    value = getattr(value, "value", value)  # enums (e.g. SchedulerType.CONSTANT) as their plain value
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _hub_id(ref: str | None) -> str | None:
    """`ref` when it looks like a Hub repo id, else None (local paths never go into public cards)."""
    if ref and re.fullmatch(r"[\w.-]+/[\w.-]+", ref) and not ref.startswith((".", "/")) and not Path(ref).exists():
        return ref
    return None


def describe_model(ref: str | Path | None) -> tuple[str | None, str | None]:
    """(Hub id, name to show) of a model reference, for cards: never a machine path.

    A Hub id is itself. A local folder is the Hub id it was saved from when it tells (a Hub cache
    snapshot `models--org--name/snapshots/...`, or `_name_or_path` / `name_or_path` in its
    config.json), else its folder's name (the last part of `_name_or_path` when that is a path).
    (None, None) for no reference."""
    if ref is None or not str(ref).strip():
        return None, None
    ref = str(ref).strip()
    hub = _hub_id(ref)
    if hub:
        return hub, hub
    path = Path(ref).expanduser()
    for part in reversed(path.parts):  # huggingface_hub's cache layout: models--{org}--{name}
        cached = re.fullmatch(r"models--([\w.-]+?)--([\w.-]+)", part)
        if cached:
            return f"{cached[1]}/{cached[2]}", f"{cached[1]}/{cached[2]}"
    name = path.name or path.resolve().name
    config = path / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            data = {}
        for key in ("_name_or_path", "name_or_path"):
            value = str(data.get(key) or "").strip() if isinstance(data, dict) else ""
            if not value:
                continue
            hub = _hub_id(value)
            if hub:
                return hub, hub
            name = Path(value.rstrip("/\\")).name or name
            break
    return None, name or None
