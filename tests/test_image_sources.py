"""Rows as published whose question or pictures are not where a plain reading looks: MathVerse's
Vision Only rows and its JSON release, MMMU-Pro's vision config, MM-Eureka's absolute server paths
(re-rooted with `--image-root OLD=NEW`), and pictures at http(s) URLs (fetched only when asked,
with retries and a cache, from a real HTTP server on 127.0.0.1). No model runs here."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from pathlib import Path

import pytest
from conftest import png_bytes
from datasets import Dataset, Features, Image, Value

from rap_hf import is_correct, to_rap_format
from rap_hf.cli import main
from rap_hf.data.image_sources import ImageSources
from rap_hf.data.images import ImageDecodeError, decode_row_images
from rap_hf.data.io import load_rows, load_saved
from rap_hf.data.layouts.mmmu_pro_vision import QUESTION as MMMU_PRO_VISION_QUESTION
from rap_hf.data.remote_images import ImageFetcher
from rap_hf.rows import prepare_rows

RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)
LOGGER = "rap_hf.data.schema"


def _write_png(path: Path, colour) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(colour))
    return path


def _colours(row) -> list:
    return [image.getpixel((1, 1)) for image in decode_row_images(row["images"], row["rap_id"])]


def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


# --------------------------------------------------------------------------- MathVerse
VISION_ONLY_COT = ("According to the question shown in the image, please first conduct reasoning, and then answer "
                   "the question and provide the correct option letter, e.g., A, B, C, D, at the end.")
VISION_ONLY_WO = ("According to the question shown in the image, please directly answer the question and provide "
                  "the correct option letter, e.g., A, B, C, D.")


def _mathverse_rows(image_values, image_feature) -> Dataset:
    """AI4Math/MathVerse testmini as published: one problem in three of its versions."""
    text = ("As shown in the figure, AB is the diameter of ⊙O, ∠ABC = 40°. Find ∠BAC.\n"
            "Choices:\nA:40°\nB:50°\nC:60°")
    return Dataset.from_dict({
        "sample_index": ["1", "4", "5"], "problem_index": ["1", "1", "1"],
        "problem_version": ["Text Dominant", "Vision Intensive", "Vision Only"],
        "question": [text, text, ""], "image": image_values, "answer": ["B", "B", "B"],
        "question_type": ["multi-choice"] * 3,
        "metadata": [{"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}] * 3,
        "query_wo": ["Please directly answer the question and provide the correct option letter.\n" + text] * 2
        + [VISION_ONLY_WO],
        "query_cot": ["Please first conduct reasoning, and then answer the question.\n" + text] * 2
        + [VISION_ONLY_COT],
        "question_for_eval": [text, text, ""],
    }, features=Features({"sample_index": Value("string"), "problem_index": Value("string"),
                          "problem_version": Value("string"), "question": Value("string"), "image": image_feature,
                          "answer": Value("string"), "question_type": Value("string"),
                          "metadata": {"split": Value("string"), "source": Value("string"),
                                       "subject": Value("string"), "subfield": Value("string")},
                          "query_wo": Value("string"), "query_cot": Value("string"),
                          "question_for_eval": Value("string")}))


def test_mathverse_vision_only_rows_ask_the_instruction_of_query_cot(caplog):
    """A Vision Only row's `question` is empty (the question is in the picture): its question is the
    instruction the benchmark gives it, so the text-only condition asks something, and still cannot
    see the problem. Other versions keep their question exactly."""
    picture = {"bytes": png_bytes(GREEN), "path": "images_version_1-4/image_1.png"}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(_mathverse_rows([picture] * 3, Image()))
    assert rows["rap_id"] == ["1", "4", "5"]
    assert rows["question"][:2] == [_mathverse_rows([picture] * 3, Image())["question"][0]] * 2
    assert rows["question"][2] == VISION_ONLY_COT and rows["answer"] == ["B", "B", "B"]
    assert [_colours(row) for row in rows] == [[GREEN]] * 3 and _warnings(caplog) == ""
    # The text-only prompt of the Vision Only row asks the instruction, with no picture.
    (prepared,) = prepare_rows(rows.select([2]).to_dict(), None)
    assert prepared.error is None and prepared.question == VISION_ONLY_COT
    text_only = json.dumps(prepared.text_prompt.messages)
    assert VISION_ONLY_COT in text_only and '"image"' not in text_only
    # A row whose query_cot is empty too falls back on query_wo.
    ds = _mathverse_rows([picture] * 3, Image())
    ds = ds.map(lambda row: {"query_cot": "" if row["sample_index"] == "5" else row["query_cot"]})
    assert to_rap_format(ds)["question"][2] == VISION_ONLY_WO


def test_mathverse_json_release_with_its_pictures_in_the_images_folder(tmp_path, monkeypatch, caplog):
    """The JSON release (testmini.json beside images/, unpacked from images.zip): `image` is a path
    relative to images/ ("images_version_1-4/image_1.png"). It resolves to the file, an absolute path,
    from any working folder; a picture that is in neither folder is named by its absolute path."""
    root = tmp_path / "MathVerse"
    _write_png(root / "images" / "images_version_1-4" / "image_1.png", RED)
    _write_png(root / "images" / "images_version_1-4" / "image_4.png", BLUE)
    paths = ["images_version_1-4/image_1.png", "images_version_1-4/image_4.png", "images_version_1-4/gone.png"]
    (root / "testmini.json").write_text(json.dumps(_mathverse_rows(paths, Value("string")).to_list()))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(load_rows(str(root / "testmini.json")))
    kept = [refs[0]["path"] for refs in rows["images"]]
    assert kept[:2] == [str(root / "images" / p) for p in paths[:2]]
    assert kept[2] == "file://" + str(root / paths[2])  # missing: its absolute path, never file://images_...
    assert rows["question"][2] == VISION_ONLY_COT
    assert [_colours(row) for row in rows.select([0, 1])] == [[RED], [BLUE]]
    assert "1 of 3 rows name image files that do not exist" in _warnings(caplog)
    with pytest.raises(ImageDecodeError, match="image file not found: .*MathVerse/images_version_1-4/gone.png"):
        decode_row_images(rows[2]["images"], rows[2]["rap_id"])


# --------------------------------------------------------------------------- MMMU-Pro vision
def test_mmmu_pro_vision_config_asks_the_question_in_the_picture():
    """MMMU/MMMU_Pro "vision": id, image (a screenshot of the question and its options), options (a
    list written as text), answer (a letter), subject. No question column."""
    ds = Dataset.from_dict({
        "id": ["test_History_1", "test_Math_7"],
        "image": [{"bytes": png_bytes(RED), "path": None}, {"bytes": png_bytes(BLUE), "path": None}],
        "options": ["['1848', '1851', '1863', '1871', '1889', '1900', '1914', '1919', '1929', '1945']",
                    "['$\\\\frac{1}{2}$', '$2$', '$\\\\sqrt{2}$', '$4$']"],
        "answer": ["C", "A"], "subject": ["History", "Math"],
    }, features=Features({"id": Value("string"), "image": Image(), "options": Value("string"),
                          "answer": Value("string"), "subject": Value("string")}))
    rows = to_rap_format(ds)
    assert rows["rap_id"] == ["test_History_1", "test_Math_7"]
    assert rows["question"] == [MMMU_PRO_VISION_QUESTION] * 2  # the options are in the picture, not the text
    assert rows["answer"] == ["C", "A"] and rows["choices"][0][2] == "1863"
    assert [_colours(row) for row in rows] == [[RED], [BLUE]]
    # Graded by letter, or by the right option's value (kept as choices), and no other.
    choices = rows["choices"][0]
    assert is_correct("\\boxed{C}", "C", choices) and is_correct("\\boxed{1863}", "C", choices)
    assert not is_correct("\\boxed{1851}", "C", choices)


# --------------------------------------------------------------------------- re-rooting absolute paths
SERVER = "/cluster/share_data/MM-Eureka"


def _mm_eureka_with_server_paths(folder: Path) -> Path:
    """MM-Eureka's dataset.jsonl as released: image blocks name files by absolute paths on the
    authors' cluster."""
    system = {"role": "system", "content": "Solve the problem."}
    golds = {1: "$$\\number{24} $$", 2: ">-2"}
    lines = [{"id": f"K12-{k}", "answer": gold, "message": json.dumps([system, {"role": "user", "content": [
        {"type": "image", "image": f"file://{SERVER}/K12/{k}.png"},
        {"type": "text", "text": f"<image>\nQuestion {k}."}]}])} for k, gold in golds.items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "dataset.jsonl"


def test_absolute_server_paths_are_re_rooted_with_old_equals_new(tmp_path, caplog):
    here = tmp_path / "mm-eureka"
    _write_png(here / "K12" / "1.png", RED)
    _write_png(here / "K12" / "2.png", GREEN)
    data = _mm_eureka_with_server_paths(here)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        as_written = to_rap_format(load_rows(str(data)))
    assert "2 of 2 rows name image files that do not exist" in _warnings(caplog)
    assert as_written["images"][0][0]["path"] == f"file://{SERVER}/K12/1.png"
    rows = to_rap_format(load_rows(str(data)), image_root=f"{SERVER}={here}")
    assert [r[0]["path"] for r in rows["images"]] == [str(here / "K12" / "1.png"), str(here / "K12" / "2.png")]
    assert [_colours(row) for row in rows] == [[RED], [GREEN]]
    # The K12 golds grade as the field writes answers.
    assert is_correct("\\boxed{24}", rows["answer"][0]) and is_correct("\\boxed{x>-2}", rows["answer"][1])
    # A mapping, a trailing slash and a folder for relative paths beside the rule all read the same.
    again = to_rap_format(load_rows(str(data)), image_root={f"{SERVER}/": f"{here}/"})
    assert again["images"] == rows["images"]
    with pytest.raises(ValueError, match="two folders"):
        ImageSources.parse(["a", "b"])


def test_rap_hf_convert_takes_image_root_rules(tmp_path):
    here = tmp_path / "mm-eureka"
    _write_png(here / "K12" / "1.png", RED)
    _write_png(here / "K12" / "2.png", BLUE)
    data = _mm_eureka_with_server_paths(here)
    out = tmp_path / "canonical"
    assert main(["convert", "--dataset", str(data), "--out", str(out), "--image-root", f"{SERVER}={here}"]) == 0
    rows = load_saved(str(out))
    assert [_colours(row) for row in rows] == [[RED], [BLUE]]


# --------------------------------------------------------------------------- http(s) URLs
class _Pictures(http.server.BaseHTTPRequestHandler):
    """Serves /red.png and /blue.png; /flaky.png answers 503 twice, then the picture; /gone.png is 404.
    Counts every request by path."""

    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 (the http.server name)
        hits = type(self).hits
        hits[self.path] = hits.get(self.path, 0) + 1
        colours = {"/red.png": RED, "/blue.png": BLUE, "/flaky.png": GREEN}
        if self.path == "/flaky.png" and hits[self.path] <= 2:
            self.send_error(503, "busy")
        elif self.path in colours:
            body = png_bytes(colours[self.path])
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "no such picture")

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def picture_server():
    _Pictures.hits = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _url_rows(base: str) -> Dataset:
    return Dataset.from_dict({"id": ["r", "b", "f", "g"], "question": ["What colour is it?"] * 4,
                              "answer": ["red", "blue", "green", "red"],
                              "image": [f"{base}/red.png", f"{base}/blue.png", f"{base}/flaky.png",
                                        f"{base}/gone.png"]})


def test_image_urls_are_refused_per_row_unless_fetching_is_asked(picture_server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RAP_HF_IMAGE_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(_url_rows(picture_server))
    assert _Pictures.hits == {}  # nothing was downloaded behind the user's back
    assert "4 of 4 rows have images at http(s) URLs that were not downloaded" in _warnings(caplog)
    assert "--fetch-images" in _warnings(caplog)
    prepared = prepare_rows(rows.to_dict(), None)
    assert all(row.error and "is a URL, and rap-hf downloads images only when asked" in row.error and
               "fetch_images=True" in row.error for row in prepared)


def test_fetched_image_urls_are_retried_cached_and_fail_alone(picture_server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RAP_HF_IMAGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ImageFetcher, "__init__", _quick_retries(ImageFetcher.__init__))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = to_rap_format(_url_rows(picture_server), fetch_images=True)
    assert [_colours(row) for row in rows.select([0, 1, 2])] == [[RED], [BLUE], [GREEN]]
    assert _Pictures.hits["/flaky.png"] == 3  # two 503 answers, retried, then the picture
    assert _Pictures.hits["/gone.png"] == 1  # a 404 is not retried
    assert "1 of 4 rows have images at http(s) URLs that were not downloaded" in _warnings(caplog)
    (gone,) = prepare_rows(rows.select([3]).to_dict(), None)
    assert gone.error and "gone.png is a URL" in gone.error  # fails alone, named
    # Converting again reads the cache: no picture is downloaded twice; the failed one is tried again.
    before = dict(_Pictures.hits)
    again = to_rap_format(_url_rows(picture_server), fetch_images=True)
    assert {path: _Pictures.hits[path] - before[path] for path in before} == {
        "/red.png": 0, "/blue.png": 0, "/flaky.png": 0, "/gone.png": 1}
    assert again["images"][:3] == rows["images"][:3]
    assert len(list((tmp_path / "cache").iterdir())) == 3


def _quick_retries(init):
    """ImageFetcher with no wait between tries (the test's server answers at once)."""

    def quick(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "backoff": 0.0})

    return quick
