"""to_rap_format: presets, explicit mappings, ids, source columns, undecoded images, errors."""

import json
import logging

import pytest
from conftest import png_bytes
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from rap_hf import to_rap_format
from rap_hf.data.images import decode_row_images
from rap_hf.data.schema import (
    CANONICAL_COLUMNS,
    canonical_answer,
    content_hash,
    detect_preset,
    parse_choices,
    render_question,
    strip_image_placeholders,
)

UNDECODED = List(Image(decode=False))


def _pil(colour=(0, 0, 255)):
    return PILImage.new("RGB", (20, 20), colour)


def test_easyr1_layout():
    ds = Dataset.from_dict(
        {"problem": ["<image>Find x.", "<image> What is 2+2?"], "answer": ["3", "4"], "images": [[_pil()], [_pil()]]}
    )
    rows = to_rap_format(ds)
    assert rows.column_names[:4] == list(CANONICAL_COLUMNS)
    assert rows["question"] == ["Find x.", "What is 2+2?"]
    assert rows["answer"] == ["3", "4"]
    assert rows.features["images"] == UNDECODED
    assert "problem" in rows.column_names  # source column kept
    assert all(rid.startswith("h-") for rid in rows["rap_id"])
    assert decode_row_images(rows[0]["images"])[0].getpixel((0, 0)) == (0, 0, 255)


def test_mathvista_layout_with_choices_and_letters():
    ds = Dataset.from_dict(
        {
            "pid": ["1", "2"],
            "question": ["Which colour is the cube? <image>", "How many cubes?"],
            "answer": ["blue", "3"],
            "choices": [["red", "blue"], None],
            "decoded_image": [_pil(), _pil()],
            "image": ["images/1.jpg", "images/2.jpg"],
            "unit": [None, None],
        }
    )
    rows = to_rap_format(ds)
    assert rows["rap_id"] == ["1", "2"]
    assert rows["question"][0] == "Which colour is the cube?\nChoices:\n(A) red\n(B) blue"
    assert rows["answer"] == ["B", "3"]
    # The originals are kept where the conversion changed them; the images moved, not copied.
    assert rows["source_question"][0] == "Which colour is the cube? <image>"
    assert rows["source_answer"] == ["blue", "3"]
    assert "decoded_image" not in rows.column_names
    assert rows["image"] == ["images/1.jpg", "images/2.jpg"]
    assert len(rows[0]["images"]) == 1


def test_trl_layout():
    ds = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What colour is it?"}],
                [{"role": "user", "content": "How many?"}],
            ],
            "image": [_pil(), _pil()],
            "solution": ["blue", "2"],
        }
    )
    assert detect_preset(ds.column_names).name == "trl"
    rows = to_rap_format(ds)
    assert rows["question"] == ["What colour is it?", "How many?"]
    assert rows["answer"] == ["blue", "2"]
    assert "prompt" in rows.column_names and "solution" in rows.column_names
    assert [len(x) for x in rows["images"]] == [1, 1]


def test_mm_eureka_layout_reads_images_from_messages(tmp_path):
    (tmp_path / "K12").mkdir()
    (tmp_path / "K12" / "a.png").write_bytes(png_bytes((10, 200, 10)))
    message = [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": [{"type": "image", "image": "file://K12/a.png"},
                                     {"type": "text", "text": "<image>\nWhat is the area?"}]},
    ]
    ds = Dataset.from_dict({"id": [7], "message": [json.dumps(message)], "answer": ["12"]})
    rows = to_rap_format(ds, image_root=str(tmp_path))
    assert rows["rap_id"] == ["7"]
    assert rows["question"] == ["What is the area?"]
    assert rows[0]["images"] == [{"bytes": None, "path": str(tmp_path / "K12" / "a.png")}]
    assert decode_row_images(rows[0]["images"])[0].getpixel((1, 1)) == (10, 200, 10)


def test_canonical_rows_are_a_fixed_point(world):
    again = to_rap_format(world["train"])
    assert again.column_names == world["train"].column_names
    for column in ("rap_id", "question", "answer", "rap_planted"):
        assert again[column] == world["train"][column]
    assert again[0]["images"] == world["train"][0]["images"]


def test_explicit_mapping_and_errors():
    ds = Dataset.from_dict({"q": ["What?"], "gt": ["42"], "pic": [_pil()], "key": ["row-1"]})
    with pytest.raises(ValueError) as error:
        to_rap_format(ds)
    message = str(error.value)
    assert "Columns found: q, gt, pic, key" in message and "question=" in message
    rows = to_rap_format(ds, question="q", answer="gt", images="pic", id="key")
    assert rows["rap_id"] == ["row-1"] and rows["answer"] == ["42"] and len(rows[0]["images"]) == 1
    assert set(rows.column_names) == {*CANONICAL_COLUMNS, "q", "gt", "key"}
    with pytest.raises(ValueError, match="'nope' is not a column"):
        to_rap_format(ds, question="nope", answer="gt")
    with pytest.raises(ValueError, match="Unknown preset"):
        to_rap_format(ds, preset="coco")
    with pytest.raises(ValueError, match="needs columns problem, answer"):
        to_rap_format(ds, preset="easyr1")


def test_unchanged_source_columns_are_not_duplicated():
    ds = Dataset.from_dict({"question": ["How many?"], "answer": ["2"], "images": [[_pil()]]})
    rows = to_rap_format(ds)
    assert not [c for c in rows.column_names if c.startswith("source_")]


def test_content_ids_are_stable_and_duplicates_are_suffixed(caplog):
    data = {"problem": ["Same?", "Same?", "Other?"], "answer": ["1", "1", "1"], "images": [[_pil()]] * 3}
    first = to_rap_format(Dataset.from_dict(data))
    with caplog.at_level(logging.WARNING, logger="rap_hf.data.schema"):
        second = to_rap_format(Dataset.from_dict(data))
    assert first["rap_id"] == second["rap_id"]
    base = first["rap_id"][0]
    assert first["rap_id"][1] == f"{base}#2"
    assert first["rap_id"][2] != base and len(set(first["rap_id"])) == 3
    assert "occur more than once" in caplog.text


def test_corrupt_image_does_not_abort_conversion():
    features = Features({"problem": Value("string"), "answer": Value("string"), "images": UNDECODED})
    ds = Dataset.from_dict(
        {"problem": ["ok", "bad"], "answer": ["1", "2"],
         "images": [[{"bytes": png_bytes(), "path": None}], [{"bytes": b"not an image", "path": None}]]},
        features=features,
    )
    rows = to_rap_format(ds)
    assert len(rows) == 2
    decode_row_images(rows[0]["images"], rows[0]["rap_id"])
    with pytest.raises(ValueError, match=f"row '{rows[1]['rap_id']}'"):
        decode_row_images(rows[1]["images"], rows[1]["rap_id"])


def test_missing_answers_are_kept_and_reported(caplog):
    ds = Dataset.from_dict({"problem": ["a", "b"], "answer": ["1", None], "images": [[_pil()], [_pil()]]})
    with caplog.at_level(logging.WARNING, logger="rap_hf.data.schema"):
        rows = to_rap_format(ds)
    assert rows["answer"] == ["1", ""]
    assert "1 of 2 rows have an empty answer" in caplog.text


def test_dataset_dict_is_converted_split_by_split():
    part = Dataset.from_dict({"problem": ["a"], "answer": ["1"], "images": [[_pil()]]})
    rows = to_rap_format(DatasetDict(train=part, test=part))
    assert set(rows) == {"train", "test"} and rows["test"]["question"] == ["a"]


def test_helpers():
    # Placeholders beside the text go; one inside a sentence becomes words (no "Look at ." left).
    assert strip_image_placeholders("<image>\n<image 2> Look at <image_3>.  Now?") == "Look at image 3.  Now?"
    written = "No placeholder here.  Kept  as written. "
    assert strip_image_placeholders(written) == written
    assert strip_image_placeholders("<|vision_start|><|image_pad|><|vision_end|>Hi") == "Hi"
    assert parse_choices('["x", "y"]') == ["x", "y"]
    assert parse_choices("['x', 'y']") == ["x", "y"]
    assert parse_choices({"B": "y", "A": "x"}) == ["x", "y"]
    assert parse_choices("") is None and parse_choices(None) is None
    assert render_question("Pick <image>", ["x", "y"]) == "Pick\nChoices:\n(A) x\n(B) y"
    assert canonical_answer("(b)", ["x", "y"]) == "B"
    assert canonical_answer("Y", ["x", "y"]) == "B"
    assert canonical_answer(3.5) == "3.5"
    assert canonical_answer(None) == ""
    ref = {"bytes": png_bytes(), "path": None}
    assert content_hash("q", "a", [ref]) == content_hash("q", "a", [dict(ref)])
    assert content_hash("q", "a", [ref]) != content_hash("q", "b", [ref])


def test_an_unreadable_row_is_named():
    ds = Dataset.from_dict({"id": [1, 2], "message": ['[{"role": "user", "content": "What?"}]', "{not json"],
                            "answer": ["1", "2"]})
    with pytest.raises(ValueError, match="row 1 cannot be read"):
        to_rap_format(ds)
