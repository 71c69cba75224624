"""A new user's first mistakes with paths and empty data, met as they meet them: one line each, at once.

No model is built, loaded or run here: every case fails (or returns) before a model would load. A
mistyped local path, or, offline, a name that is neither on disk nor in the Hub cache, is one
`FileNotFoundError` from Python and one `rap-hf CMD: error: ...` line from the shell, decided from the
file system alone (`rap_hf.references.check_reference`); data with no rows converts and selects to empty
results, and scoring it is one line.
"""

from __future__ import annotations

import time

import pytest
from datasets import Dataset, DatasetDict, Features, List, Value

from rap_hf.cli import main
from rap_hf.data.io import load_rows, load_saved
from rap_hf.data.schema import CANONICAL_COLUMNS, images_feature, to_rap_format
from rap_hf.references import check_reference, closest_name, looks_like_hub_id, looks_local
from selection_helpers import SCORED_FEATURES

# The Hub's retries took about 25 s before; deciding from the file system takes milliseconds.
FAST_S = 5.0


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder as a user has it: a `models/` folder with one model and a `mydata/` folder
    with one CSV; offline, as the tests run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    (tmp_path / "models" / "tiny-qwen").mkdir(parents=True)
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "rows.csv").write_text("question,answer\nWhat?,1\n")
    return tmp_path


@pytest.fixture
def online(monkeypatch):
    """The Hub reachable as far as the check knows (nothing here asks it)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def _missing(ref: str, kind: str) -> str:
    """The message of check_reference's FileNotFoundError for `ref`, checking it came at once."""
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        check_reference(ref, kind)
    assert time.perf_counter() - start < FAST_S
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"no such file or folder: {ref}")
    return message


def _one_line(capsys, command: str) -> str:
    """The error line a failed command printed on stderr: the last line, the only one that is not a
    progress bar (`datasets` draws them while the rows are read), and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "examples/s]" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rap-hf {command}: error: ") and err.rstrip().endswith(lines[0]), err
    return lines[0]


# --------------------------------------------------------------------------- the rule
def test_what_looks_local_and_what_is_a_hub_id(here):
    for hub_id in ("Qwen/Qwen2.5-VL-7B-Instruct", "gpt2", "FanqingM/MM-Eureka-Dataset", "owner/name@v1.0"):
        assert looks_like_hub_id(hub_id) and not looks_local(hub_id), hub_id
    for local in ("./rows", "../rows", "/data/rows", "~/rows", "a/b/c", "rows.csv", "me/rows.jsonl", "x.parquet",
                  "data.arrow", "models/nope", "a\\b", "my rows", "-x", "a--b/c"):
        assert looks_local(local), local
    assert not looks_local("work/nope")  # `work/` does not exist here: it may be a Hub id


def test_a_mistyped_local_path_fails_at_once_with_the_nearest_name(here, online):
    assert _missing("mydata/rws.csv", "dataset") == (
        "no such file or folder: mydata/rws.csv; did you mean mydata/rows.csv?")
    assert _missing("mydata/Rows.CSV", "dataset").endswith("did you mean mydata/rows.csv?")
    assert _missing("mydta/rows.csv", "dataset").endswith("there is no folder mydta; did you mean mydata/rows.csv?")
    assert _missing("models/tiny-qwn", "model").startswith(
        "no such file or folder: models/tiny-qwn; did you mean models/tiny-qwen?")
    # Nothing close: where it was looked for, what is there, and "check the path".
    assert _missing("mydata/nope.csv", "dataset") == (
        "no such file or folder: mydata/nope.csv; mydata/ has no file or folder 'nope.csv' (it holds rows.csv); "
        "check the path")
    message = _missing("models/nope", "model")
    assert "models/ has no file or folder 'nope' (it holds tiny-qwen); check the path" in message
    assert "the folder models/ exists here, so models/nope is read as a path, not as a Hub id" in message
    message = _missing("./elsewhere/rows.parquet", "dataset")
    assert f"the current folder ({here}) has no folder 'elsewhere'" in message and "check the path" in message
    assert "is a file, not a folder" in _missing("mydata/rows.csv/more", "dataset")
    assert "did you mean" not in _missing("work/nope.jsonl", "dataset")  # a data file: never a Hub id


def test_the_closest_name_is_a_likely_typo_not_any_neighbour():
    names = ["rows.csv", "test.parquet", "tiny-qwen", "World"]
    assert closest_name("rws.csv", names) == "rows.csv" and closest_name("row.csv", names) == "rows.csv"
    assert closest_name("test.csv", names) is None  # same extension, another name
    assert closest_name("nope.csv", names) is None
    assert closest_name("tiny_qwen", names) == "tiny-qwen" and closest_name("world", names) == "World"
    assert closest_name("anything", []) is None


def test_paths_that_exist_pass_and_home_is_expanded(here, monkeypatch):
    assert check_reference("mydata/rows.csv", "dataset") == "mydata/rows.csv"
    assert check_reference(here / "models" / "tiny-qwen", "model") == here / "models" / "tiny-qwen"
    monkeypatch.setenv("HOME", str(here))
    assert check_reference("~/mydata/rows.csv", "dataset") == str(here / "mydata" / "rows.csv")
    assert "no such file or folder: ~/nope.csv" in _missing("~/nope.csv", "dataset")
    model = object()  # a loaded model, None, an empty name: not the check's business
    assert check_reference(model, "model") is model and check_reference(None, "model") is None
    assert check_reference("", "model") == ""


def test_online_a_hub_id_is_never_blocked(here, online):
    for ref in ("Qwen/Qwen2.5-VL-3B-Instruct", "nope", "work/nope", "owner/name@main"):
        start = time.perf_counter()
        assert check_reference(ref, "model") == ref and check_reference(ref, "dataset") == ref
        assert time.perf_counter() - start < FAST_S


def test_offline_any_name_not_on_disk_nor_in_the_hub_cache_fails(here, monkeypatch):
    message = _missing("Qwen/Qwen2.5-VL-3B-Instruct", "model")
    assert message == (
        "no such file or folder: Qwen/Qwen2.5-VL-3B-Instruct, and HF_HUB_OFFLINE=1 is set, so the Hub is not asked "
        "and the local Hub cache has no copy of the model Qwen/Qwen2.5-VL-3B-Instruct: download it first with "
        "`hf download Qwen/Qwen2.5-VL-3B-Instruct` or unset HF_HUB_OFFLINE")
    assert "`hf download nope --repo-type dataset` or unset HF_HUB_OFFLINE" in _missing("nope", "dataset")
    # A close local name is offered too.
    assert _missing("mydat", "dataset").endswith("; or, for a local dataset, did you mean mydata?")
    # The variable that is set is the one named.
    monkeypatch.setenv("HF_HUB_OFFLINE", "")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert "TRANSFORMERS_OFFLINE=1 is set" in _missing("me/model", "model")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "yes")
    assert "HF_DATASETS_OFFLINE=yes is set" in _missing("me/rows", "dataset")


def test_offline_a_copy_in_the_hub_cache_passes(here, monkeypatch):
    import datasets.config
    from huggingface_hub import constants

    hub, prepared = here / "hub-cache", here / "datasets-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(prepared))
    (hub / "models--me--tiny" / "snapshots" / "0123abc").mkdir(parents=True)
    (hub / "datasets--me--rows" / "snapshots" / "0123abc").mkdir(parents=True)
    (prepared / "me___world_rows" / "default" / "0.0.0" / "hash").mkdir(parents=True)  # datasets' own cache
    assert check_reference("me/tiny", "model") == "me/tiny"
    assert check_reference("me/rows", "dataset") == "me/rows"
    assert check_reference("me/WorldRows", "dataset") == "me/WorldRows"  # datasets snake-cases the name
    assert "model me/rows" in _missing("me/rows", "model")  # a dataset's copy is no model
    (hub / "models--me--empty" / "snapshots").mkdir(parents=True)  # an interrupted download: no snapshot
    _missing("me/empty", "model")


# --------------------------------------------------------------------------- Python entry points
def test_load_rows_fails_at_once_for_a_typo(here):
    for ref, expected in (("mydata/rws.csv", "did you mean mydata/rows.csv?"),
                          ("work/nope", "HF_HUB_OFFLINE=1 is set"), ("nope", "HF_HUB_OFFLINE=1 is set")):
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match="no such file or folder: ") as info:
            load_rows(ref)
        assert time.perf_counter() - start < FAST_S and expected in str(info.value)
    assert load_rows("mydata/rows.csv")["question"] == ["What?"]


def test_model_loading_fails_at_once_for_a_typo(here):
    from rap_hf import RAPConfig, RAPScorer
    from rap_hf.data.synthetic import make_visual_world
    from rap_hf.evaluation import evaluate_model
    from rap_hf.modeling import load_processor, load_vlm, pick_device

    rows = make_visual_world(4, seed=1)["train"]
    expected = "no such file or folder: models/nope; models/ has no file or folder 'nope'"
    attempts = {
        "RAPScorer": lambda: RAPScorer("models/nope", RAPConfig(num_rollouts=1))(rows[:1]),
        "evaluate_model": lambda: evaluate_model("models/nope", rows),
        "load_vlm": lambda: load_vlm("models/nope", device=pick_device("cpu"), dtype=None),
        "load_processor": lambda: load_processor("models/nope"),
    }
    for name, attempt in attempts.items():
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError) as info:
            attempt()
        assert time.perf_counter() - start < FAST_S, name
        assert str(info.value).startswith(expected), (name, info.value)


# --------------------------------------------------------------------------- every command
def test_every_command_answers_a_typo_in_one_line_and_writes_nothing(here, capsys, monkeypatch):
    import rap_hf.demo as demo

    class NoServer:
        def launch(self, **kwargs):
            raise AssertionError("the Space must not start for a path that does not exist")

    monkeypatch.setattr(demo, "build_demo", lambda loader: NoServer())
    for name in ("RAP_DATASET", "RAP_MODEL"):  # the Space's defaults: not what this test gives
        monkeypatch.delenv(name, raising=False)
    Dataset.from_dict({"rap_id": ["a"], "question": ["q"], "answer": ["1"]}).save_to_disk("rows")
    capsys.readouterr()
    commands = [
        (["convert", "--dataset", "mydata/nope.csv", "--out", "out"],
         "mydata/nope.csv; mydata/ has no file or folder 'nope.csv' (it holds rows.csv); check the path"),
        (["export", "--dataset", "work/nope", "--to", "trl", "--out", "out"], "work/nope, and HF_HUB_OFFLINE=1"),
        (["score", "--model", "models/nope", "--dataset", "rows", "--output", "out"], "models/nope; models/ has no"),
        (["score", "--model", "models/tiny-qwen", "--dataset", "rws", "--output", "out"], "rws, and HF_HUB_OFFLINE=1"),
        (["select", "--input", "nope", "--output", "out"], "nope, and HF_HUB_OFFLINE=1"),
        (["select", "--input", "work/nope", "--output", "out"], "work/nope, and HF_HUB_OFFLINE=1"),
        (["eval", "--model", "models/tiny-qwen", "--dataset", "mydata/test.csv", "--output", "out"],
         "mydata/test.csv; mydata/ has no file or folder 'test.csv'"),
        (["eval", "--model", "models/nope", "--dataset", "rows", "--output", "out"], "models/nope; models/ has no"),
        (["train", "--config", "tiny_cpu", "--model_name_or_path", "models/nope", "--dataset", "rows",
          "--output_dir", "out"], "models/nope; models/ has no"),
        (["train", "--config", "tiny_cpu", "--model_name_or_path", "models/tiny-qwen", "--dataset", "mydata/rws.csv",
          "--output_dir", "out"], "mydata/rws.csv; did you mean mydata/rows.csv?"),
        (["demo", "--dataset", "nope"], "nope, and HF_HUB_OFFLINE=1"),
        (["demo", "--model", "models/tiny-qwn"], "models/tiny-qwn; did you mean models/tiny-qwen?"),
    ]
    for argv, expected in commands:
        start = time.perf_counter()
        assert main(argv) == 1, argv
        assert time.perf_counter() - start < FAST_S, argv
        line = _one_line(capsys, argv[0])
        assert line.startswith(f"rap-hf {argv[0]}: error: no such file or folder: {expected}"), (argv, line)
        assert not (here / "out").exists() and not (here / "out.shards").exists(), argv


# --------------------------------------------------------------------------- empty data
def test_rows_saved_with_no_rows_read_back_empty(tmp_path):
    features = Features({"rap_id": Value("string"), "images": images_feature()})
    empty = Dataset.from_dict({"rap_id": [], "images": []}, features=features)
    empty.save_to_disk(str(tmp_path / "empty"))  # datasets writes it, but its load_from_disk cannot read it
    loaded = load_rows(str(tmp_path / "empty"))
    assert len(loaded) == 0 and loaded.features == features
    one = Dataset.from_dict({"rap_id": ["a"], "images": [[]]}, features=features)
    DatasetDict(train=one, test=empty).save_to_disk(str(tmp_path / "splits"))
    assert len(load_rows(str(tmp_path / "splits"), "train")) == 1
    assert len(load_rows(str(tmp_path / "splits"), "test")) == 0
    assert set(load_saved(tmp_path / "splits")) == {"train", "test"}
    one.to_parquet(str(tmp_path / "one.parquet"))
    one.select_columns(["rap_id"]).save_to_disk(str(tmp_path / "arrow"))
    arrow = next((tmp_path / "arrow").glob("*.arrow"))
    assert load_rows(str(arrow))["rap_id"] == ["a"]  # an .arrow file reads like the other data files


@pytest.mark.parametrize("layout", ["canonical", "mathvista", "mapped", "empty_image_list"])
def test_to_rap_format_of_no_rows_is_an_empty_canonical_dataset(layout):
    sources = {
        "canonical": (Dataset.from_dict({"rap_id": ["1"], "question": ["q"], "answer": ["a"], "images": [[]]},
                                        features=Features({"rap_id": Value("string"), "question": Value("string"),
                                                           "answer": Value("string"), "images": images_feature()})),
                      {}),
        "mathvista": (Dataset.from_dict({"pid": ["1"], "question": ["Which? <image>"], "answer": ["a"],
                                         "choices": [["a", "b"]], "unit": [None], "image": ["x.png"]}), {}),
        "mapped": (Dataset.from_dict({"key": ["1"], "prompt": ["q"], "gt": ["1"], "opts": ['["x", "y"]']}),
                   {"question": "prompt", "answer": "gt", "id": "key", "choices": "opts"}),
        "empty_image_list": (Dataset.from_dict({"question": ["q"], "answer": ["a"], "image_path": ["x.png"]}), {}),
    }
    source, mapping = sources[layout]
    empty = to_rap_format(source.select([]), **mapping)
    full = to_rap_format(source, **mapping)
    assert len(empty) == 0 and empty.column_names[:4] == list(CANONICAL_COLUMNS)
    assert empty.features["images"] == images_feature()
    # The same columns and features as a conversion of rows, less the `source_*` copies of changed values.
    assert empty.features == Features({k: v for k, v in full.features.items() if not k.startswith("source_")})
    converted = to_rap_format(DatasetDict(train=source, test=source.select([])), **mapping)
    assert len(converted["test"]) == 0 and converted["test"].features == empty.features


def test_select_on_no_rows_is_an_empty_selection_that_says_so(tmp_path):
    from rap_hf import select
    from rap_hf.selection import Selection

    scored = Dataset.from_dict({name: [] for name in SCORED_FEATURES}, features=SCORED_FEATURES)
    for mode in ("paper", "reference"):
        selection = select(scored, mode=mode)
        assert selection.report.total == 0 and selection.report.kept == 0 and len(selection.dataset) == 0
        assert "no rows" in selection.report.to_markdown()
        selection.save_to_disk(tmp_path / mode)
        back = Selection.load_from_disk(tmp_path / mode)  # datasets alone cannot load its empty decisions
        assert back.report.total == 0 and len(back.decisions) == 0 and len(back.dataset) == 0


def test_the_commands_on_no_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()  # never loaded: the rows are found empty first
    Dataset.from_dict({"rap_id": [], "question": [], "answer": []}).save_to_disk("canonical")
    Dataset.from_dict({"q": [], "gt": []}).save_to_disk("raw")
    capsys.readouterr()
    for rows, mapping in (("canonical", []), ("raw", ["--question", "q", "--answer", "gt"])):
        assert main(["score", "--model", "model", "--dataset", rows, "--output", "scored", *mapping]) == 1
        line = _one_line(capsys, "score")
        assert line == f"rap-hf score: error: the dataset has no rows: {rows} holds nothing to score"
        assert not (tmp_path / "scored").exists() and not (tmp_path / "scored.shards").exists()
    # Select: an empty selection, written, whose report says there were no rows.
    Dataset.from_dict({name: [] for name in SCORED_FEATURES}, features=SCORED_FEATURES).save_to_disk("scored")
    assert main(["select", "--input", "scored", "--output", "selected"]) == 0
    out = capsys.readouterr().out
    assert "kept 0 of 0 rows" in out and "no rows" in out
    assert (tmp_path / "selected" / "report.json").exists()
    assert main(["convert", "--dataset", "raw", "--question", "q", "--answer", "gt", "--out", "converted"]) == 0
    assert list(load_rows("converted").column_names[:4]) == list(CANONICAL_COLUMNS)


def test_no_list_feature_is_lost_on_an_empty_save(tmp_path):
    """The empty dataset keeps nested features through a save and a load (what `rap-hf convert` writes)."""
    features = Features({"rap_id": Value("string"), "choices": List(Value("string")), "images": images_feature()})
    Dataset.from_dict({"rap_id": [], "choices": [], "images": []}, features=features).save_to_disk(str(tmp_path / "e"))
    assert load_saved(tmp_path / "e").features == features
