"""The layout registry: a new layout is one `Layout` and one registration, and everything that lists
layouts (auto-detection, `preset=`, `ColumnMapping`, the `--preset` flag, the manual) follows it."""

import re
from pathlib import Path

import pytest
from datasets import Dataset
from PIL import Image as PILImage

from rap_hf import to_rap_format
from rap_hf.data.canonical import CANONICAL_COLUMNS, is_canonical
from rap_hf.data.conversion import as_canonical
from rap_hf.data.layouts import (
    LAYOUTS,
    PUBLISHED_LAYOUTS,
    Layout,
    detect_layout,
    layout_names,
    register_layout,
    unregister_layout,
)
from rap_hf.data.schema import PRESETS, ColumnMapping

YOUR_DATA = Path(__file__).resolve().parents[1] / "docs" / "your-data.md"  # the manual's page on layouts

# A made-up published layout: the question in `q`, the answer in `a`, the picture in `pic`.
TINY = Layout("tiny", required=("q", "a", "pic"), question="q", answer=("a",), images=("pic",))


def _tiny_rows() -> Dataset:
    return Dataset.from_dict({"q": ["<image> How many cubes?", "What colour is it?"], "a": ["3", "red"],
                              "pic": [PILImage.new("RGB", (8, 8), "red"), PILImage.new("RGB", (8, 8), "blue")]})


@pytest.fixture
def tiny_registered():
    register_layout(TINY)  # the one line a new layout needs
    yield TINY
    unregister_layout(TINY.name)


def test_a_registered_layout_is_detected_converted_and_a_preset_choice(tiny_registered):
    ds = _tiny_rows()
    assert detect_layout(ds.column_names) is TINY
    rows = to_rap_format(ds)
    assert rows.column_names[:4] == list(CANONICAL_COLUMNS)
    assert rows["question"] == ["How many cubes?", "What colour is it?"] and rows["answer"] == ["3", "red"]
    assert [len(images) for images in rows["images"]] == [1, 1] and "pic" not in rows.column_names
    assert to_rap_format(ds, preset="tiny")["question"] == rows["question"]
    assert ColumnMapping(preset="tiny").rap_format_kwargs()["preset"] == "tiny"
    assert "tiny" in PRESETS and layout_names()[-1] == "tiny"

    from rap_hf.cli import command_parser

    parser = command_parser("convert")  # built now: its choices come from the registry as it is now
    (flag,) = [action for action in parser._actions if "--preset" in action.option_strings]
    assert list(flag.choices) == ["auto", *layout_names()] and "tiny" in flag.choices
    assert "mathvista, mmmu_pro_vision, tiny." in flag.help
    (args,) = parser.parse_args_and_config(["--dataset", "d", "--out", "o", "--preset", "tiny"])
    assert args.preset == "tiny"


def test_unregistering_removes_it_everywhere():
    register_layout(TINY)
    unregister_layout("tiny")
    assert "tiny" not in LAYOUTS and detect_layout(_tiny_rows().column_names) is None
    with pytest.raises(ValueError, match="Unknown preset 'tiny'"):
        ColumnMapping(preset="tiny")
    from rap_hf.cli import command_parser

    (flag,) = [a for a in command_parser("convert")._actions if "--preset" in a.option_strings]
    assert "tiny" not in flag.choices
    assert list(LAYOUTS.values()) == list(PUBLISHED_LAYOUTS)


def test_an_unregistered_layout_instance_converts():
    rows = to_rap_format(_tiny_rows(), layout=TINY)
    assert rows["question"] == ["How many cubes?", "What colour is it?"] and rows["answer"] == ["3", "red"]
    assert "tiny" not in LAYOUTS
    with pytest.raises(ValueError, match="Layout 'tiny' needs columns q, a, pic; missing pic"):
        to_rap_format(_tiny_rows().remove_columns("pic"), layout=TINY)
    with pytest.raises(ValueError, match="not both"):
        to_rap_format(_tiny_rows(), preset="mathvista", layout=TINY)


def test_register_refuses_clashes_and_can_go_before_the_catch_all():
    with pytest.raises(ValueError, match="already registered"):
        register_layout(Layout("mathvista", required=("question", "answer")))
    with pytest.raises(ValueError, match="auto"):
        register_layout(Layout("auto", required=()))
    quiz = Layout("quiz", required=("question", "answer", "level"), question="question")
    register_layout(quiz, before="mathvista")
    try:
        assert layout_names()[-3:-1] == ["quiz", "mathvista"]
        assert detect_layout(["question", "answer", "level", "image"]) is quiz
    finally:
        unregister_layout("quiz")
    assert list(LAYOUTS.values()) == list(PUBLISHED_LAYOUTS)


def test_the_manual_lists_every_layout_in_auto_detection_order():
    text = YOUR_DATA.read_text()
    start = text.index('- Presets (`preset="auto"` tries them in this order)')
    bullet = text[start:text.index("\n- ", start + 1)]
    listed = [name for name in re.findall(r"`(\w+)`", bullet) if name in LAYOUTS]
    assert listed == [layout.name for layout in PUBLISHED_LAYOUTS] == list(LAYOUTS)


def test_as_canonical_converts_unless_canonical(world):
    canonical = world["train"]
    assert is_canonical(canonical) and as_canonical(canonical) is canonical
    called = []
    again = as_canonical(canonical, {"preset": "rap"}, on_convert=lambda: called.append(True))
    assert called == [True] and again["rap_id"] == canonical["rap_id"]  # a mapping was given: applied
    rows = as_canonical(_tiny_rows(), {"question": "q", "answer": "a", "images": "pic"})
    assert is_canonical(rows) and not is_canonical(_tiny_rows())
    assert as_canonical(rows, ColumnMapping()) is rows
