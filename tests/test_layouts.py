"""to_rap_format on rows laid out exactly as public VLM sets publish them, and on users' own files.

Each test names the dataset it mirrors and the column layout (names and types) it copies. Every
image (count, order, pixels or path), option, answer and question text is checked, as are the
warnings of what a conversion could not carry over and the refusals. No model runs here.
"""

import json
import logging
import os
from pathlib import Path

import pytest
from conftest import png_bytes
from datasets import Dataset, Features, Image, List, Value, load_dataset

from rap_hf import to_rap_format
from rap_hf.data.images import ImageDecodeError, decode_row_images
from rap_hf.data.io import load_rows, source_folder
from rap_hf.data.schema import ColumnMapping, canonical_answer, strip_image_placeholders
from rap_hf.quickstart import QuickstartConfig
from rap_hf.quickstart.pipeline import load_study_data

RED, GREEN, BLUE, YELLOW, GREY = (200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 0), (90, 90, 90)
LOGGER = "rap_hf.data.schema"


def _png(colour) -> dict:
    return {"bytes": png_bytes(colour), "path": None}


def _colours(row) -> list:
    """The colour of every image of a canonical row, in order (decoding them as scoring does)."""
    return [image.getpixel((1, 1)) for image in decode_row_images(row["images"], row["rap_id"])]


def _write_png(path: Path, colour) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(colour))
    return path


def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


# --------------------------------------------------------------------------- benchmarks on the Hub
def test_mathvista_testmini_with_unit_precision_and_choices(caplog):
    """AI4Math/MathVista testmini: pid, question (no placeholder), image (a relative path string),
    decoded_image (Image), choices (sequence of strings or None), unit (string or None),
    precision (float64 or None), answer (an option's text for multi_choice), question_type,
    answer_type, metadata (struct), query (MathVista's own prompt)."""
    metadata = {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
                "skills": List(Value("string")), "source": Value("string"), "split": Value("string"),
                "task": Value("string")}
    features = Features({"pid": Value("string"), "question": Value("string"), "image": Value("string"),
                         "decoded_image": Image(), "choices": List(Value("string")), "unit": Value("string"),
                         "precision": Value("float64"), "answer": Value("string"),
                         "question_type": Value("string"), "answer_type": Value("string"), "metadata": metadata,
                         "query": Value("string")})
    meta = {"category": "math-targeted-vqa", "context": "geometry diagram", "grade": "high school",
            "img_height": 32, "img_width": 32, "language": "english", "skills": ["geometry reasoning"],
            "source": "Geometry3K", "split": "testmini", "task": "geometry problem solving"}
    questions = ["As shown in the figure, what is the measure of angle B?",
                 "How long is the rod?",
                 "How many cubes are left?"]
    ds = Dataset.from_dict({
        "pid": ["1", "2", "3"],
        "question": questions,
        "image": ["images/1.jpg", "images/2.jpg", "images/3.jpg"],
        "decoded_image": [_png(RED), _png(GREEN), _png(BLUE)],
        "choices": [["30°", "45°", "60°"], None, None],
        "unit": [None, "cm", None],
        "precision": [None, 1.0, None],
        "answer": ["45°", "2.5", "4"],
        "question_type": ["multi_choice", "free_form", "free_form"],
        "answer_type": ["text", "float", "integer"],
        "metadata": [meta] * 3,
        "query": ["Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the "
                  "end.\nQuestion: " + questions[0] + "\nChoices:\n(A) 30°\n(B) 45°\n(C) 60°",
                  "Hint: Please answer the question requiring a floating-point number with one decimal place and "
                  "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\nQuestion: " + questions[1]
                  + " (Unit: cm)",
                  "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., "
                  "1, 2, 3, at the end.\nQuestion: " + questions[2]],
    }, features=features)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        rows = to_rap_format(ds)
    assert rows["rap_id"] == ["1", "2", "3"]
    assert rows["question"] == [
        questions[0] + "\nChoices:\n(A) 30°\n(B) 45°\n(C) 60°",
        # The unit as MathVista's query writes it, and the precision it asks for.
        "How long is the rod? (Unit: cm)\nGive the answer to 1 decimal place.",
        questions[2],  # no placeholder, no hint: exactly as written
    ]
    assert rows["answer"] == ["B", "2.5", "4"]
    assert [_colours(row) for row in rows] == [[RED], [GREEN], [BLUE]]
    assert rows["choices"][0] == ["30°", "45°", "60°"]  # the source options, kept for the verifier
    # `image` (the path of decoded_image) and `query` are kept; the duplicate is noted, not warned about.
    assert rows["image"] == ["images/1.jpg", "images/2.jpg", "images/3.jpg"] and "query" in rows.column_names
    assert "decoded_image" not in rows.column_names
    assert _warnings(caplog) == ""
    assert "'image' looks like images" in caplog.text


def _mmmu_features(extra: dict | None = None) -> Features:
    columns = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
               "explanation": Value("string")}
    columns.update({f"image_{k}": Image() for k in range(1, 8)})
    columns.update({"img_type": Value("string"), "answer": Value("string"), "topic_difficulty": Value("string")})
    columns.update(extra or {"question_type": Value("string"), "subfield": Value("string")})
    return Features(columns)


def _mmmu_images(*per_row: dict) -> dict:
    """image_1 .. image_7 columns from {number: colour} per row (None where a row has no such image)."""
    return {f"image_{k}": [_png(row[k]) if k in row else None for row in per_row] for k in range(1, 8)}


def test_mmmu_multi_image_rows_with_placeholders_in_text_and_options(caplog):
    """MMMU/MMMU (validation): id, question with `<image k>` placeholders, options (a Python list
    written as text, itself holding placeholders), explanation, image_1 .. image_7 (Image, None
    where unused), img_type (a list written as text), answer (the letter, or a value for open
    questions), topic_difficulty, question_type, subfield."""
    ds = Dataset.from_dict({
        "id": ["validation_Art_1", "validation_Math_2"],
        "question": ["Compare <image 1> and <image 2>. Which option shows the same style as <image 1>?",
                     "<image 1> The curve in <image 3> meets the line of <image 1> at which x?"],
        "options": ["['<image 3>', 'A photograph', 'None of them']", "[]"],
        "explanation": ["", ""],
        # Row 1 has no image_2: its <image 3> is its second image.
        **_mmmu_images({1: RED, 2: GREEN, 3: BLUE}, {1: YELLOW, 3: GREY}),
        "img_type": ["['Paintings']", "['Plots and Charts']"],
        "answer": ["A", "3.5"],
        "topic_difficulty": ["Easy", "Hard"],
        "question_type": ["multiple-choice", "open"],
        "subfield": ["Art History", "Calculus"],
    }, features=_mmmu_features())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds)
    assert rows["rap_id"] == ["validation_Art_1", "validation_Math_2"]
    assert rows["question"] == [
        "Compare image 1 and image 2. Which option shows the same style as image 1?\n"
        "Choices:\n(A) Image 3\n(B) A photograph\n(C) None of them",
        "The curve in image 2 meets the line of image 1 at which x?",
    ]
    assert rows["answer"] == ["A", "3.5"]
    assert rows["choices"] == [["Image 3", "A photograph", "None of them"], None]
    assert [_colours(row) for row in rows] == [[RED, GREEN, BLUE], [YELLOW, GREY]]
    assert not any(c.startswith("image_") for c in rows.column_names)  # moved into `images`
    assert rows["options"][0] == "['<image 3>', 'A photograph', 'None of them']"  # the source is kept
    assert _warnings(caplog) == ""  # img_type is text, not images; nothing was left behind


def test_mmmu_pro_standard_ten_options():
    """MMMU/MMMU_Pro "standard (10 options)": id, question, options (ten, a list written as text),
    explanation, image_1 .. image_7, img_type, answer (a letter up to J), topic_difficulty, subject."""
    options = [f"Period {k}" for k in range(1, 11)]
    ds = Dataset.from_dict({
        "id": ["test_History_7"], "question": ["To which period does <image 1> belong?"],
        "options": [str(options)], "explanation": [""], **_mmmu_images({1: RED}),
        "img_type": ["['Photographs']"], "answer": ["J"], "topic_difficulty": ["Medium"], "subject": ["History"],
    }, features=_mmmu_features({"subject": Value("string")}))
    row = to_rap_format(ds)[0]
    lines = "\n".join(f"({letter}) {option}" for letter, option in zip("ABCDEFGHIJ", options))
    assert row["question"] == f"To which period does image 1 belong?\nChoices:\n{lines}"
    assert row["answer"] == "J" and row["choices"] == options and _colours(row) == [RED]


def test_scienceqa_integer_answers_and_a_row_without_image(caplog):
    """derek-thomas/ScienceQA (and lmms-lab/ScienceQA): image (Image, None for text-only
    questions), question, choices (sequence of strings), answer (int8: a 0-based index), hint (the
    context, often empty), task, grade, subject, topic, category, skill, lecture, solution. No id."""
    features = Features({"image": Image(), "question": Value("string"), "choices": List(Value("string")),
                         "answer": Value("int8"), "hint": Value("string"), "task": Value("string"),
                         "grade": Value("string"), "subject": Value("string"), "topic": Value("string"),
                         "category": Value("string"), "skill": Value("string"), "lecture": Value("string"),
                         "solution": Value("string")})
    ds = Dataset.from_dict({
        "image": [_png(RED), None, _png(BLUE)],
        "question": ["Which animal's feet are also adapted for grabbing prey?",
                     "Which word would you find on a dictionary page with the guide words sand - sing?",
                     "Which material is this spatula made of?"],
        "choices": [["osprey", "duck"], ["seven", "sock", "sail"], ["rubber", "cotton"]],
        "answer": [0, 2, 0],
        "hint": ["Figure: bald eagle.", "", ""],
        "task": ["closed choice"] * 3, "grade": ["grade4", "grade3", "grade2"],
        "subject": ["natural science", "language science", "natural science"],
        "topic": ["biology", "reference-skills", "physics"], "category": ["Adaptations", "Guide words", "Materials"],
        "skill": ["Animal adaptations: feet", "Use guide words", "Identify materials"],
        "lecture": ["..."] * 3, "solution": ["..."] * 3,
    }, features=features)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds)
    assert rows["answer"] == ["A", "C", "A"]  # 0 is option A, never "0"
    assert rows["question"] == [
        "Context: Figure: bald eagle.\nWhich animal's feet are also adapted for grabbing prey?\n"
        "Choices:\n(A) osprey\n(B) duck",
        "Which word would you find on a dictionary page with the guide words sand - sing?\n"
        "Choices:\n(A) seven\n(B) sock\n(C) sail",
        "Which material is this spatula made of?\nChoices:\n(A) rubber\n(B) cotton",
    ]
    assert [len(images) for images in rows["images"]] == [1, 0, 1]
    assert _colours(rows[0]) == [RED] and _colours(rows[2]) == [BLUE]
    assert all(rid.startswith("h-") for rid in rows["rap_id"])  # no id column: content hashes
    warned = _warnings(caplog)
    assert "1 of 3 rows have no image (images from column image; e.g. row 1" in warned
    assert "looks like images" not in warned and "option" not in warned


def test_mathverse_question_kept_exactly_and_sample_index_as_id(caplog):
    """AI4Math/MathVerse testmini: sample_index, problem_index, problem_version, question (options
    already written into it), image (Image), answer (a letter), question_type, metadata,
    query_wo, query_cot, question_for_eval."""
    question = "As shown in the figure, AB is the diameter of ⊙O, ∠ABC = 40°.\nChoices:\nA:40°\nB:50°\nC:60°"
    ds = Dataset.from_dict({
        "sample_index": ["1"], "problem_index": ["1"], "problem_version": ["Text Dominant"],
        "question": [question], "image": [_png(GREEN)], "answer": ["B"], "question_type": ["multi-choice"],
        "metadata": [{"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}],
        "query_wo": ["Please directly answer the question and provide the correct option letter.\n" + question],
        "query_cot": ["Please first conduct reasoning, and then answer the question.\n" + question],
        "question_for_eval": [question],
    }, features=Features({"sample_index": Value("string"), "problem_index": Value("string"),
                          "problem_version": Value("string"), "question": Value("string"), "image": Image(),
                          "answer": Value("string"), "question_type": Value("string"),
                          "metadata": {"split": Value("string"), "source": Value("string"),
                                       "subject": Value("string"), "subfield": Value("string")},
                          "query_wo": Value("string"), "query_cot": Value("string"),
                          "question_for_eval": Value("string")}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        row = to_rap_format(ds)[0]
    assert (row["rap_id"], row["question"], row["answer"]) == ("1", question, "B")
    assert _colours(row) == [GREEN] and _warnings(caplog) == ""


def test_geometry3k_images_list_with_placeholders():
    """hiyouga/geometry3k (EasyR1's layout): images (a list of Image), problem with `<image>`
    placeholders, answer."""
    ds = Dataset.from_dict({"images": [[_png(RED)], [_png(BLUE), _png(GREEN)]],
                            "problem": ["<image>Find x.", "<image><image>Which figure has the larger area?"],
                            "answer": ["3", "12"]},
                           features=Features({"images": List(Image()), "problem": Value("string"),
                                              "answer": Value("string")}))
    rows = to_rap_format(ds)
    assert rows["question"] == ["Find x.", "Which figure has the larger area?"]
    assert [_colours(row) for row in rows] == [[RED], [BLUE, GREEN]]


# --------------------------------------------------------------------------- files with image paths
def test_mm_eureka_message_json_with_relative_image_paths(tmp_path, monkeypatch):
    """FanqingM/MM-Eureka-Dataset dataset.jsonl (K12 and MMPR folders beside it): id, message (the
    chat as a JSON string; image blocks with `file://` or plain relative paths), answer."""
    root = tmp_path / "mm-eureka-dataset"
    _write_png(root / "K12" / "56041f8b.png", RED)
    _write_png(root / "MMPR" / "images" / "ai2d" / "1.png", GREEN)
    _write_png(root / "MMPR" / "images" / "ai2d" / "2.png", BLUE)
    system = {"role": "system", "content": "Solve the problem."}
    lines = [
        {"id": "K12-1", "answer": "4", "message": json.dumps([system, {"role": "user", "content": [
            {"type": "image", "image": "file://K12/56041f8b.png"},
            {"type": "text", "text": "<image>\nIn the figure, AB = 3 and AC = 5. Find BC."}]}])},
        {"id": "MMPR-2", "answer": "B", "message": json.dumps([system, {"role": "user", "content": [
            {"type": "image", "image": "MMPR/images/ai2d/1.png"},
            {"type": "image", "image": "MMPR/images/ai2d/2.png"},
            {"type": "text", "text": "<image><image>Which diagram shows a food chain? A. the first B. the second"}]}])},
    ]
    (root / "dataset.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.chdir(tmp_path)  # not the data file's folder: paths must not depend on it
    rows = to_rap_format(load_rows(str(root / "dataset.jsonl")))
    assert rows["rap_id"] == ["K12-1", "MMPR-2"]
    assert rows["question"] == ["In the figure, AB = 3 and AC = 5. Find BC.",
                                "Which diagram shows a food chain? A. the first B. the second"]
    assert rows["answer"] == ["4", "B"]
    assert [_colours(row) for row in rows] == [[RED], [GREEN, BLUE]]
    assert Path(rows[1]["images"][1]["path"]).resolve() == (root / "MMPR" / "images" / "ai2d" / "2.png").resolve()


def test_virl39k_lists_of_paths_and_boxed_answers(tmp_path, monkeypatch):
    """TIGER-Lab/ViRL39K (parquet with an images/ folder beside it): question with `<image>`
    placeholders (options written into it), answer in `\\boxed{}`, PassRate_32BTrained,
    PassRate_7BBase, category, source, qid, image (a list of relative paths)."""
    folder = tmp_path / "ViRL39K"
    for name, colour in (("Processed-1-0.png", RED), ("Processed-2-0.png", GREEN), ("Processed-2-1.png", BLUE)):
        _write_png(folder / "images" / name, colour)
    Dataset.from_dict({
        "question": ["<image>Which shape has the larger area?\nChoices:\nA. the circle\nB. the square",
                     "<image><image>How many cubes are there in both pictures together?"],
        "answer": ["\\boxed{B}", "\\boxed{7}"],
        "PassRate_32BTrained": [0.5, 0.25], "PassRate_7BBase": [0.25, 0.0],
        "category": ["Spatial Reasoning", "Counting"], "source": ["fixture", "fixture"],
        "qid": ["q-1", "q-2"],
        "image": [["images/Processed-1-0.png"], ["images/Processed-2-0.png", "images/Processed-2-1.png"]],
    }).to_parquet(str(folder / "train.parquet"))
    monkeypatch.chdir(tmp_path)
    rows = to_rap_format(load_rows(str(folder / "train.parquet")))
    assert rows["rap_id"] == ["q-1", "q-2"]
    assert rows["question"] == ["Which shape has the larger area?\nChoices:\nA. the circle\nB. the square",
                                "How many cubes are there in both pictures together?"]
    assert rows["answer"] == ["B", "7"]
    assert [_colours(row) for row in rows] == [[RED], [GREEN, BLUE]]
    assert "image" not in rows.column_names and "PassRate_32BTrained" in rows.column_names


def _user_csv(folder: Path) -> Path:
    """A user's CSV beside its pictures: id, image_path (relative to the CSV), question, answer."""
    _write_png(folder / "imgs" / "a.png", RED)
    _write_png(folder / "imgs" / "b.png", GREEN)
    csv = folder / "rows.csv"
    csv.write_text("id,image_path,question,answer\n"
                   "q1,imgs/a.png,How many circles are in the picture?,3\n"
                   "q2,imgs/b.png,What number is written in <image>?,0\n"
                   "q3,imgs/missing.png,How many squares are there?,7\n")
    return csv


def test_user_csv_through_load_rows_resolves_paths_against_its_folder(tmp_path, monkeypatch, caplog):
    """A user's CSV (`id,image_path,question,answer`, answers all digits so the csv builder reads
    them as int64), its pictures in imgs/ beside it, one of them missing."""
    data = tmp_path / "data"
    csv = _user_csv(data)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load_rows(str(csv))
    assert Path(source_folder(loaded)).resolve() == data.resolve()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(loaded)
    assert rows["rap_id"] == ["q1", "q2", "q3"]
    assert rows["question"] == ["How many circles are in the picture?", "What number is written in the image?",
                                "How many squares are there?"]
    assert rows["answer"] == ["3", "0", "7"]  # no options: "0" is the number 0, not an option index
    assert [len(images) for images in rows["images"]] == [1, 1, 1]
    assert _colours(rows[0]) == [RED] and _colours(rows[1]) == [GREEN]
    # A missing file keeps its path, as a file:// URL: datasets would otherwise try to read it when
    # the rows are saved (save_to_disk, scoring shards) and abort the whole save.
    missing = rows[2]["images"][0]["path"]
    assert missing.startswith("file:///") and missing.endswith(os.path.join("data", "imgs", "missing.png"))
    # The missing file is one row's problem, named; the conversion kept its path and went on.
    warned = _warnings(caplog)
    assert "1 of 3 rows name image files that do not exist" in warned and "row 2 (rap_id 'q3')" in warned
    assert "missing.png" in warned
    with pytest.raises(ImageDecodeError, match="row 'q3'.*image file not found"):
        decode_row_images(rows[2]["images"], rows[2]["rap_id"])
    assert "image_path" not in rows.column_names  # moved into `images`

    # image_root overrides the data file's folder.
    other = tmp_path / "other"
    _write_png(other / "imgs" / "a.png", BLUE)
    _write_png(other / "imgs" / "b.png", YELLOW)
    moved = to_rap_format(load_rows(str(csv)), image_root=str(other))
    assert _colours(moved[0]) == [BLUE] and _colours(moved[1]) == [YELLOW]


def test_user_csv_through_load_dataset_needs_image_root(tmp_path, monkeypatch, caplog):
    """The same CSV read by `datasets.load_dataset("csv", data_files=...)`, which does not record its
    file: relative paths stay as written, with a warning, until `image_root` names their folder."""
    data = tmp_path / "data"
    csv = _user_csv(data)
    monkeypatch.chdir(tmp_path)
    ds = load_dataset("csv", data_files=str(csv), split="train")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds)
    # Kept as written (as file:// URLs: no file of that name is here either, see the test above).
    assert [refs[0]["path"] for refs in rows["images"]] == ["file://imgs/a.png", "file://imgs/b.png",
                                                            "file://imgs/missing.png"]
    warned = _warnings(caplog)
    assert "3 of 3 rows name images by relative paths and no folder is known" in warned and "image_root=" in warned
    rows = to_rap_format(ds, image_root=str(data))
    assert _colours(rows[0]) == [RED] and _colours(rows[1]) == [GREEN]
    assert rows["answer"] == ["3", "0", "7"]


def test_relative_image_paths_and_roots_are_pinned_where_the_rows_were_converted(tmp_path, monkeypatch):
    """Rows decode the same in any working folder (a Ray worker runs in its own): a relative path that
    names a file from here, and a relative `image_root`, are made absolute at conversion."""
    data = tmp_path / "data"
    csv = _user_csv(data)
    monkeypatch.chdir(data)
    ds = load_dataset("csv", data_files=str(csv), split="train")
    pinned = to_rap_format(ds)
    assert [refs[0]["path"] for refs in pinned["images"]][:2] == [str(data / "imgs" / "a.png"),
                                                                  str(data / "imgs" / "b.png")]
    monkeypatch.chdir(tmp_path)
    rooted = to_rap_format(ds, image_root="data")
    assert rooted["images"][0][0]["path"] == str(data / "imgs" / "a.png")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for rows in (pinned, rooted):
        assert _colours(rows[0]) == [RED] and _colours(rows[1]) == [GREEN]


def test_csv_with_lists_of_paths_written_as_text(tmp_path):
    """A CSV whose image_paths cells are JSON lists written as text (CSV has no list type)."""
    _write_png(tmp_path / "p" / "1.png", RED)
    _write_png(tmp_path / "p" / "2.png", BLUE)
    csv = tmp_path / "pairs.csv"
    csv.write_text('uid,image_paths,question,options,answer\n'
                   'u1,"[""p/1.png"", ""p/2.png""]",Which picture is darker?,"[""the first"", ""the second""]",1\n')
    row = to_rap_format(load_rows(str(csv)))[0]
    assert row["rap_id"] == "u1" and _colours(row) == [RED, BLUE]
    # The answer 1 (int64 from the csv builder) is no option's text: the 0-based index of option B.
    assert row["answer"] == "B" and row["question"].endswith("\nChoices:\n(A) the first\n(B) the second")


def test_imagefolder_with_metadata_csv(tmp_path, monkeypatch):
    """An imagefolder: pictures and a metadata.csv (`file_name` relative to it, question, choices as
    a list written as text, answer), loaded as a folder (datasets' imagefolder builder turns
    `file_name` into an `image` column) and as the metadata.csv file itself."""
    folder = tmp_path / "shapes"
    _write_png(folder / "imgs" / "a.png", RED)
    _write_png(folder / "b.png", BLUE)
    (folder / "metadata.csv").write_text(
        'file_name,question,choices,answer\n'
        'imgs/a.png,What colour is the square?,"[""red"", ""blue""]",red\n'
        'b.png,What colour is the square?,"[""red"", ""blue""]",blue\n')
    monkeypatch.chdir(tmp_path)
    for loaded in (load_rows(str(folder)), load_rows(str(folder / "metadata.csv"))):
        rows = to_rap_format(loaded)
        assert rows["question"] == ["What colour is the square?\nChoices:\n(A) red\n(B) blue"] * 2
        assert rows["answer"] == ["A", "B"]
        assert [_colours(row) for row in rows] == [[RED], [BLUE]]
        assert rows["choices"] == ['["red", "blue"]'] * 2  # the source column; rows.py parses it


# --------------------------------------------------------------------------- never silent
def test_an_unknown_image_column_is_refused_in_auto_and_warned_about_otherwise(caplog):
    """A layout whose picture column has a name no layout uses (`photo`, relative paths)."""
    ds = Dataset.from_dict({"question": ["What is it?", "How many?"], "answer": ["cat", "2"],
                            "photo": ["pics/1.png", "pics/2.png"]})
    with pytest.raises(ValueError) as refused:
        to_rap_format(ds)
    message = str(refused.value)
    assert "would drop every image" in message and "'photo'" in message
    assert "images='photo'" in message and "--images photo" in message
    rows = to_rap_format(ds, images="photo", image_root="/data")
    assert [refs[0]["path"] for refs in rows["images"]] == ["file:///data/pics/1.png", "file:///data/pics/2.png"]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds, preset="mathvista")  # an explicit preset: warned, not refused
    warned = _warnings(caplog)
    assert "column 'photo' looks like images and holds values on 2 of 2 rows" in warned
    assert "images='photo' (rap-hf: --images photo)" in warned and "2 of 2 rows have no image" in warned


def test_every_row_empty_while_another_column_holds_images_is_refused():
    """An `image` column that is empty on every row while `scan_file` names pictures."""
    ds = Dataset.from_dict({"question": ["a?", "b?"], "answer": ["1", "2"], "image": [None, None],
                            "scan_file": ["s/1.png", "s/2.jpg"]},
                           features=Features({"question": Value("string"), "answer": Value("string"),
                                              "image": Image(), "scan_file": Value("string")}))
    with pytest.raises(ValueError, match=r"every row ended with no image from column image.*'scan_file'.*"
                                         r"images='scan_file'"):
        to_rap_format(ds)
    assert len(to_rap_format(ds, images="scan_file")[0]["images"]) == 1


def test_an_unused_image_column_is_warned_about_with_counts(caplog):
    """A layout with an `image` column (Image) and a second, unused `thumbnail` path column."""
    ds = Dataset.from_dict({"question": ["a?", "b?"], "answer": ["1", "2"], "image": [_png(RED), _png(BLUE)],
                            "thumbnail": ["t/1.jpg", None]},
                           features=Features({"question": Value("string"), "answer": Value("string"),
                                              "image": Image(), "thumbnail": Value("string")}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds)
    assert [_colours(row) for row in rows] == [[RED], [BLUE]]
    assert ("column 'thumbnail' looks like images and holds values on 1 of 2 rows, but the conversion did not use "
            "it (images came from column image)") in _warnings(caplog)


def test_numbered_image_columns_in_numeric_order_any_count():
    """image_1 .. image_12: numeric order (image_10 after image_9), empty ones skipped."""
    colours = [(10 * k, 5 * k, 255 - 10 * k) for k in range(1, 13)]
    data = {f"image_{k}": [_png(colours[k - 1]) if k != 4 else None] for k in range(12, 0, -1)}
    ds = Dataset.from_dict({"question": ["Which differs, <image 5> or <image 12>?"], "answer": ["x"], **data},
                           features=Features({"question": Value("string"), "answer": Value("string"),
                                              **{name: Image() for name in data}}))
    row = to_rap_format(ds)[0]
    assert _colours(row) == [c for k, c in enumerate(colours, start=1) if k != 4]
    assert row["question"] == "Which differs, image 4 or image 11?"  # positions in the row's 11 images


def test_answers_that_match_no_option_and_ambiguous_integers_are_warned_about(caplog):
    """MathVista-like rows (question, choices list, answer, image) with answers that are no option,
    and ScienceQA-like integer answers whose options are themselves numbers."""
    ds = Dataset.from_dict({"question": ["Pick one.", "Pick a number."], "choices": [["x", "y"], ["1", "2", "3"]],
                            "answer": ["z", "1"], "image": [_png(RED), _png(RED)]},
                           features=Features({"question": Value("string"), "choices": List(Value("string")),
                                              "answer": Value("string"), "image": Image()}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(ds)
    assert rows["answer"] == ["z", "A"]  # "1" is option A's text: the text wins over the index
    assert "1 of 2 multiple-choice rows have an answer that is no option letter" in _warnings(caplog)
    caplog.clear()
    numbers = Dataset.from_dict({"question": ["Pick a number."], "choices": [["1", "2", "3"]], "answer": [1],
                                 "image": [_png(RED)]},
                                features=Features({"question": Value("string"), "choices": List(Value("string")),
                                                   "answer": Value("int64"), "image": Image()}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert to_rap_format(numbers)["answer"] == ["B"]  # an integer is a 0-based index (ScienceQA)
    assert "integer answer that is also the text of another option" in _warnings(caplog)


# --------------------------------------------------------------------------- the rules, one by one
@pytest.mark.parametrize("text, count, expected", [
    ("as shown in <image 1>.", 1, "as shown in image 1."),
    ("What is shown in <image>?", 1, "What is shown in the image?"),
    ("<image>\nFind x.", 1, "Find x."),
    ("Find x. <image>", 1, "Find x."),
    ("Which colour is the cube? <image>", 1, "Which colour is the cube?"),
    ("In the figure below <image>, find x.", 1, "In the figure below, find x."),
    ("<image 1> and <image 2> are similar.", 2, "Image 1 and image 2 are similar."),
    ("<image 1> <image 2>\nWhich is larger?", 2, "Which is larger?"),
    ("The double-tiered columns allowed for all of the following EXCEPT (<image 1>)", 1,
     "The double-tiered columns allowed for all of the following EXCEPT (image 1)"),
    ("Compare the area with the one in <image>", 1, "Compare the area with the one in the image"),
    ("如图<image>所示，求x。", 1, "如图所示，求x。"),
    ("<|vision_start|><|image_pad|><|vision_end|>How many?", 1, "How many?"),
    ("  No placeholder:  kept   as written \n", 1, "  No placeholder:  kept   as written \n"),
])
def test_placeholders_never_leave_broken_text(text, count, expected):
    """Placeholders as MMMU (`<image k>` in sentences), EasyR1 / ViRL39K (`<image>` first),
    MathVista-style exports (a trailing `<image>`), K12 (Chinese text) and Qwen's tokens write them."""
    assert strip_image_placeholders(text, count=count) == expected


def test_answer_rules():
    """ScienceQA integer indexes, MathVista option texts, MMMU letters, ViRL39K boxed answers."""
    assert canonical_answer(0, ["osprey", "duck"]) == "A"  # ScienceQA's integer index
    assert canonical_answer(0) == "0" and canonical_answer("0") == "0"  # no options: a number
    assert canonical_answer("4", ["2", "4", "6"]) == "B"  # an option's text wins over the index
    assert canonical_answer("1", ["red", "blue"]) == "B"  # a digit that is no option: an index
    assert canonical_answer("5", ["red", "blue"]) == "5"  # out of range: kept (and warned about)
    assert canonical_answer("B.", ["x", "y"]) == "B" and canonical_answer("(a)", ["x", "y"]) == "A"
    assert canonical_answer("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert canonical_answer("\\boxed{1} or \\boxed{2}") == "\\boxed{1} or \\boxed{2}"


def test_column_mapping():
    """The one mapping vocabulary of convert, score, eval and quickstart."""
    mapping = ColumnMapping(question="q", images="image_1, image_2", image_root="pics")
    assert mapping.rap_format_kwargs() == {"preset": "auto", "question": "q", "answer": None,
                                           "images": ["image_1", "image_2"], "id": None, "choices": None,
                                           "image_root": ["pics"], "fetch_images": False}
    assert mapping.explicit and not ColumnMapping().explicit
    assert ColumnMapping(fetch_images=True).explicit
    from rap_hf.cli import command_parser

    (flags,) = command_parser("convert").parse_args_and_config(
        ["--dataset", "rows.csv", "--out", "x", "--image-root", "pics", "--image-root", "/cluster/old=/data/new",
         "--fetch-images"])[:1]
    assert flags.image_root == ["pics", "/cluster/old=/data/new"] and flags.fetch_images is True
    with pytest.raises(ValueError, match="Unknown preset 'coco'"):
        ColumnMapping(preset="coco")


def test_quickstart_converts_its_dataset_with_the_mapping(tmp_path, monkeypatch):
    """`rap-hf quickstart --dataset rows.csv --question q ...`: the study's rows come from the CSV
    (odd column names, relative paths beside it) converted with the mapping."""
    folder = tmp_path / "mine"
    for k in range(5):
        _write_png(folder / "pics" / f"{k}.png", (40 * k, 0, 0))
    csv = folder / "rows.csv"
    csv.write_text("key,q,gt,pic\n" + "".join(f"r{k},How red is it?,{k},pics/{k}.png\n" for k in range(5)))
    monkeypatch.chdir(tmp_path)
    from rap_hf.cli import command_parser

    (config,) = command_parser("quickstart").parse_args_and_config(
        ["--dataset", str(csv), "--question", "q", "--answer", "gt", "--images", "pic", "--id", "key",
         "--heldout-rows", "1"])
    assert isinstance(config, QuickstartConfig) and config.images == "pic"
    study = load_study_data(config)
    rows = {row["rap_id"]: row for part in (study.pool, study.heldout) for row in part}
    assert sorted(rows) == [f"r{k}" for k in range(5)]
    for k in range(5):
        assert rows[f"r{k}"]["answer"] == str(k) and _colours(rows[f"r{k}"]) == [(40 * k, 0, 0)]
    assert os.path.isabs(rows["r0"]["images"][0]["path"])
