"""RAP scorers under datasets.map on tiny Qwen2.5-VL, Qwen2-VL and LLaVA."""

import io
import math
import pickle

import pytest
import torch
from conftest import png_bytes
from datasets import Dataset
from PIL import Image

from rap_hf import ACEScorer, CDEScorer, LogitCDEScorer, RAPConfig, RAPScorer, Scorer, ScoringStep
from rap_hf.data.synthetic import make_visual_world
from rap_hf.prompts import build_conversation
from rap_hf.rollouts import Prompt, TransformersEngine
from rap_hf.rows import prepare_rows
from rap_hf.scoring import rap_steps
from rap_hf.scoring.cde import accuracy, causal_discrepancy, difficulty, discrepancy
from rap_hf.testing import TINY_VLM_KINDS, build_tiny_vlm
from rap_hf.verify import is_correct, is_formatted

# The tiny models' processors keep their own small resolution (the paper's pixel bounds would make
# every picture 352+ image tokens: slower, and no more telling here).
TINY = dict(min_pixels=None, max_pixels=None)
FAST = dict(num_rollouts=3, max_new_tokens=12, batch_size=4, ace_min_rows=2, **TINY)
FAST_CONFIG = RAPConfig(**FAST)


@pytest.fixture(scope="module")
def rows():
    return make_visual_world(30, seed=4)["train"].select(range(6))


def _image_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", TINY_VLM_KINDS)
def test_rap_scorer_columns_types_and_cde(tiny_vlm_paths, rows, kind):
    scorer = RAPScorer(tiny_vlm_paths[kind], RAPConfig(**FAST))
    scored = scorer.map(rows, batch_size=4)
    features = scored.features
    for name in ("rap_image_correct", "rap_text_correct", "rap_image_formatted", "rap_text_formatted"):
        assert str(features[name]) == "List(Value('bool'))"
    for name in ("rap_acc_image", "rap_acc_text", "rap_cde", "rap_difficulty", "rap_ace", "rap_logit_cde"):
        assert features[name].dtype == "float64"
    assert features["rap_ace_flag"].dtype == "bool" and features["rap_error"].dtype == "string"
    assert list(scored["rap_id"]) == list(rows["rap_id"])  # every row, in order
    for row in scored:
        assert row["rap_error"] is None
        assert len(row["rap_responses_image"]) == len(row["rap_responses_text"]) == 3
        # The flags are the verifier's verdicts on the stored responses, and CDE follows from them.
        assert row["rap_image_correct"] == [is_correct(r, row["answer"]) for r in row["rap_responses_image"]]
        assert row["rap_text_correct"] == [is_correct(r, row["answer"]) for r in row["rap_responses_text"]]
        assert row["rap_image_formatted"] == [is_formatted(r) for r in row["rap_responses_image"]]
        assert row["rap_acc_image"] == accuracy(row["rap_image_correct"])
        assert row["rap_cde"] == row["rap_acc_image"] - row["rap_acc_text"]
        assert row["rap_difficulty"] == 1 - row["rap_acc_image"]
        assert math.isfinite(row["rap_logit_cde"])
        assert row["rap_ace"] < 0 or row["rap_ace_flag"]
        assert row["rap_ace_flag"] == (row["rap_ace"] > math.log(0.1))


def test_cde_math():
    assert causal_discrepancy([True, True, True, True, False], [True, True, True, False, False]) == pytest.approx(0.2)
    # D comes from counts, divided once: 4 of 5 with the image and 1 without is the float nearest
    # 0.6, which does not pass lambda_c = 0.6 (0.8 - 0.2 would be 0.6000000000000001 and pass).
    assert discrepancy(4, 1, 5) == 0.6 and not discrepancy(4, 1, 5) > 0.6
    assert causal_discrepancy([True] * 4 + [False], [True] + [False] * 4) == discrepancy(4, 1, 5)
    assert accuracy([1, 1, 1, 1, 0]) - accuracy([1, 0, 0, 0, 0]) > 0.6
    # The released script's floating-point gap: 0.8 - 0.6 > 0.2 in binary floating point.
    assert accuracy([1, 1, 1, 1, 0]) - accuracy([1, 1, 1, 0, 0]) > 0.2
    assert difficulty(0, 5) == 1.0 and difficulty(5, 5) == 0.0 and difficulty(1, 5) == 0.8
    with pytest.raises(ValueError):
        accuracy([])


def test_engine_is_reproducible_pads_left_and_has_no_image_tokens_text_only(tiny_vlm_paths):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_vlm_paths["qwen2_5_vl"]
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    engine = TransformersEngine(model, processor)
    render = lambda q, with_images: processor.apply_chat_template(  # noqa: E731
        build_conversation(q, 1, with_images=with_images), add_generation_prompt=True, tokenize=False)
    image = Image.new("RGB", (56, 56), (0, 200, 0))
    prompts = [Prompt(render("What colour?", True), [image]), Prompt(render("What colour is the big square?", True), [image])]
    first = engine.generate(prompts, 4, max_new_tokens=10, seed=7)
    again = engine.generate(prompts, 4, max_new_tokens=10, seed=7)
    other = engine.generate(prompts, 4, max_new_tokens=10, seed=8)
    assert first == again and first != other
    assert [len(x) for x in first] == [4, 4]
    from rap_hf.rollouts.transformers_engine import processor_inputs

    batch = processor_inputs(processor, prompts, "cpu")
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].all()  # left padding
    text_only = processor_inputs(processor, [Prompt(render("What colour?", False))], "cpu")
    assert (text_only["input_ids"] == model.config.image_token_id).sum() == 0
    assert (batch["input_ids"] == model.config.image_token_id).sum() > 0
    # Generation stops at EOS: responses never contain the end-of-turn token.
    assert all("<|im_end|>" not in r for rs in first for r in rs)


def test_logit_cde_does_not_depend_on_batch_size(tiny_vlm_paths):
    rows = make_visual_world(20, seed=5)["train"].select(range(8))
    config = RAPConfig(batch_size=1, **TINY)
    one = LogitCDEScorer(tiny_vlm_paths["qwen2_5_vl"], config).map(rows, batch_size=8)
    eight = LogitCDEScorer(tiny_vlm_paths["qwen2_5_vl"], RAPConfig(batch_size=8, **TINY)).map(rows, batch_size=8)
    a, b = torch.tensor(list(one["rap_logit_cde"])), torch.tensor(list(eight["rap_logit_cde"]))
    assert torch.allclose(a, b, atol=1e-4)
    assert a.abs().max() > 0  # the image does change the answer's probability


def test_parts_compose_into_the_full_scorer(tiny_vlm_paths, rows):
    path = tiny_vlm_paths["llava"]
    config = RAPConfig(**FAST)
    cde = CDEScorer(path, config).map(rows)
    assert "rap_ace" not in cde.column_names and "rap_responses_image" in cde.column_names
    ace = ACEScorer(path, config).map(cde)
    assert all(value is not None for value in ace["rap_ace"])
    full = RAPScorer(path, config).map(rows)
    # Same rollouts (same seed and batches) give the same ACE as the full scorer.
    assert list(ace["rap_ace"]) == pytest.approx(list(full["rap_ace"]))
    with pytest.raises(ValueError, match="rap_responses_image"):
        ACEScorer(path, config).map(rows)


def test_bad_rows_get_rap_error_and_the_rest_is_scored(tiny_vlm_paths, tmp_path):
    path = build_tiny_vlm("qwen2_5_vl", tmp_path / "short", max_position_embeddings=160)
    good = {"bytes": png_bytes(), "path": None}
    odd_images = {
        "grey": Image.new("L", (40, 40), 128),
        "rgba": Image.new("RGBA", (40, 40), (10, 20, 30, 128)),
        "tiny": Image.new("RGB", (3, 3), (200, 0, 0)),
        "huge": Image.new("RGB", (1500, 1100), (0, 0, 200)),
    }
    data = {"rap_id": [], "question": [], "answer": [], "images": []}

    def add(rap_id, question, answer, images):
        data["rap_id"].append(rap_id)
        data["question"].append(question)
        data["answer"].append(answer)
        data["images"].append(images)

    add("corrupt", "What colour?", "red", [{"bytes": b"\x89PNG\r\n broken", "path": None}])
    add("missing-file", "What colour?", "red", [{"bytes": None, "path": str(tmp_path / "nope.png")}])
    add("no-answer", "What colour?", "", [good])
    add("no-image", "What colour?", "red", [])
    add("too-long", "What colour? " + "red square " * 200, "red", [good])
    for name, image in odd_images.items():
        add(name, "What colour?", "red", [{"bytes": _image_bytes(image), "path": None}])
    world = make_visual_world(10, seed=0)["train"]
    ds = Dataset.from_dict(data, features=world.select_columns(["rap_id", "question", "answer", "images"]).features)

    scored = RAPScorer(path, RAPConfig(**FAST)).map(ds, batch_size=3)
    errors = dict(zip(scored["rap_id"], scored["rap_error"]))
    assert "could not be decoded" in errors["corrupt"] and "'corrupt'" in errors["corrupt"]
    assert "could not be decoded" in errors["missing-file"]
    assert "empty answer" in errors["no-answer"]
    assert "no image" in errors["no-image"]
    assert "160 positions" in errors["too-long"]
    for name in odd_images:
        assert errors[name] is None, (name, errors[name])
    for row in scored:
        scores = [row[c] for c in ("rap_acc_image", "rap_cde", "rap_ace", "rap_logit_cde", "rap_image_correct")]
        if row["rap_error"]:
            assert all(s is None for s in scores)
        else:
            assert all(s is not None for s in scores)

    # A batch where every row fails still writes typed columns.
    failed = RAPScorer(path, RAPConfig(**FAST)).map(ds.select(range(4)), batch_size=2)
    assert failed.features["rap_cde"].dtype == "float64" and all(failed["rap_error"])


def test_same_map_twice_hits_the_cache(tiny_vlm_paths, tmp_path):
    rows = make_visual_world(20, seed=6)["train"].select(range(4))
    rows = Dataset.from_dict(rows.to_dict(), features=rows.features).flatten_indices()
    rows.save_to_disk(str(tmp_path / "rows"))
    from datasets import load_from_disk

    on_disk = load_from_disk(str(tmp_path / "rows"))
    config = RAPConfig(num_rollouts=2, max_new_tokens=6, compute_ace=False, **TINY)
    first = RAPScorer(tiny_vlm_paths["qwen2_vl"], config).map(on_disk)
    fresh = RAPScorer(tiny_vlm_paths["qwen2_vl"], config)
    second = fresh.map(on_disk)
    assert fresh.scoring_model.model is None  # the scorer never ran: the result came from the cache
    assert second.cache_files == first.cache_files
    assert list(second["rap_responses_image"]) == list(first["rap_responses_image"])
    other = RAPScorer(tiny_vlm_paths["qwen2_vl"], RAPConfig(num_rollouts=2, max_new_tokens=6, compute_ace=False, **TINY,
                                                              seed=1))
    assert other.fingerprint(on_disk) != fresh.fingerprint(on_disk)
    assert len(fresh.fingerprint(on_disk)) <= 64


def test_scorer_pickles_as_a_light_spec(tiny_vlm_paths, rows):
    from transformers import AutoModelForImageTextToText

    scorer = RAPScorer(tiny_vlm_paths["qwen2_5_vl"], RAPConfig(**FAST))
    scorer(rows[:2])  # loads the model
    payload = pickle.dumps(scorer)
    assert len(payload) < 5_000  # the model is not inside
    clone = pickle.loads(payload)
    assert clone.scoring_model.model is None and clone.model_ref == str(tiny_vlm_paths["qwen2_5_vl"])
    assert clone(rows[:2])["rap_error"] == [None, None]

    loaded = AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths["qwen2_5_vl"])
    assert pickle.loads(pickle.dumps(RAPScorer(loaded))).model_ref == str(tiny_vlm_paths["qwen2_5_vl"])
    loaded.name_or_path = ""
    with pytest.raises(TypeError, match="save_pretrained"):
        pickle.dumps(RAPScorer(loaded))


def test_config_validation_and_help():
    help_text = RAPConfig.help()
    assert set(help_text) >= {"num_rollouts", "ace_layer", "ace_min_rows", "backend"} and all(help_text.values())
    with pytest.raises(ValueError, match="num_rollouts"):
        RAPConfig(num_rollouts=0)
    with pytest.raises(ValueError, match="ace_rollout"):
        RAPConfig(num_rollouts=2, ace_rollout=2)
    with pytest.raises(ValueError, match="adaptive_round_size"):
        RAPConfig(adaptive=True, adaptive_round_size=0)
    with pytest.raises(ValueError, match="greedy"):
        RAPConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        RAPConfig(top_p=0.0)
    with pytest.raises(ValueError, match="ace_threshold"):
        RAPConfig(ace_threshold=0.0)


def test_backends_are_in_process_or_servers():
    """vLLM is reached as a server: the old in-process name says so instead of failing later."""
    with pytest.raises(ValueError, match="vllm serve.*--backend server"):
        RAPConfig(backend="vllm")
    with pytest.raises(ValueError, match="--server-url"):
        RAPConfig(backend="server")
    config = RAPConfig(backend="server", server_urls="http://127.0.0.1:8000", server_api_key="sk-secret-1234")
    assert config.server_urls == ["http://127.0.0.1:8000"]
    assert "sk-secret-1234" not in repr(config) and "server_api_key" not in config.to_dict()


def test_map_with_two_processes_and_ranks(tiny_vlm_paths):
    """num_proc=2 pickles the scorer as a light spec; each process loads its own copy."""
    rows = make_visual_world(20, seed=7)["train"].select(range(6))
    config = RAPConfig(num_rollouts=2, max_new_tokens=6, compute_ace=False)
    single = RAPScorer(tiny_vlm_paths["qwen2_vl"], config).map(rows, batch_size=2)
    double = RAPScorer(tiny_vlm_paths["qwen2_vl"], config).map(rows, batch_size=2, num_proc=2)
    assert list(double["rap_id"]) == list(rows["rap_id"])
    assert list(double["rap_responses_image"]) == list(single["rap_responses_image"])
    assert list(double["rap_logit_cde"]) == pytest.approx(list(single["rap_logit_cde"]), abs=1e-5)


def test_rescoring_starts_afresh_but_ace_keeps_a_cde_error(tiny_vlm_paths, rows):
    config = RAPConfig(**FAST)
    stale = rows.add_column("rap_error", ["stale error"] + [None] * (len(rows) - 1))
    rescored = CDEScorer(tiny_vlm_paths["qwen2_vl"], config).map(stale)
    assert rescored["rap_error"][0] is None  # a new pass does not inherit an old verdict
    broken = rescored.map(lambda row, i: {"rap_error": "generation failed: out of memory" if i == 1 else None},
                          with_indices=True)
    ace = ACEScorer(tiny_vlm_paths["qwen2_vl"], config).map(broken)
    assert ace["rap_error"][1] == "generation failed: out of memory" and ace["rap_ace"][1] is None
    assert ace["rap_ace"][0] is not None


def test_logit_cde_target_is_configurable(tiny_vlm_paths):
    rows = make_visual_world(20, seed=5)["train"].select(range(3))
    boxed = LogitCDEScorer(tiny_vlm_paths["llava"], RAPConfig()).map(rows)
    thinking = LogitCDEScorer(tiny_vlm_paths["llava"],
                              RAPConfig(logit_cde_target="<think> I look. </think> \\boxed{{answer}}")).map(rows)
    assert all(math.isfinite(v) for v in thinking["rap_logit_cde"])
    assert list(thinking["rap_logit_cde"]) != list(boxed["rap_logit_cde"])
    with pytest.raises(ValueError, match="{answer}"):
        RAPConfig(logit_cde_target="\\boxed{}")


def test_choices_from_another_column_reach_the_verifier(tiny_vlm_paths):
    from datasets import Features, List, Value

    from rap_hf import to_rap_format

    world = make_visual_world(10, seed=3)["train"].select(range(2))
    features = Features({"q": Value("string"), "gt": Value("string"), "opts": List(Value("string")),
                         "pic": world.features["images"]})
    ds = Dataset.from_dict({"q": ["Which colour?"] * 2, "gt": ["blue", "red"], "opts": [["red", "blue"]] * 2,
                            "pic": list(world["images"])}, features=features)
    rows = to_rap_format(ds, question="q", answer="gt", images="pic", choices="opts")
    assert list(rows["choices"]) == [["red", "blue"]] * 2 and list(rows["answer"]) == ["B", "A"]
    scorer = RAPScorer(tiny_vlm_paths["qwen2_vl"], RAPConfig(**FAST))
    scorer.scoring_model.load()
    # Scoring prepares rows this way and hands these options to the verifier, so "\\boxed{blue}"
    # counts for answer B.
    prepared = prepare_rows(rows[:2], scorer.scoring_model.processor, model=scorer.scoring_model.model)
    assert [r.error for r in prepared] == [None, None]
    assert [r.choices for r in prepared] == [["red", "blue"]] * 2


def test_rescoring_drops_columns_the_new_run_does_not_write(tiny_vlm_paths, rows):
    path = tiny_vlm_paths["qwen2_vl"]
    first = RAPScorer(path, RAPConfig(**FAST)).map(rows)
    second = RAPScorer(path, RAPConfig(**FAST, compute_ace=False, keep_responses=False)).map(first)
    assert "rap_ace" not in second.column_names and "rap_responses_image" not in second.column_names
    assert "rap_logit_cde" in second.column_names


def _manual_block(marker: str) -> str:
    """The Python block of the manual's scoring page (docs/scoring.md) that contains `marker`."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "scoring.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL) if marker in b]
    return block


def test_manual_custom_step_adds_its_column_and_leaves_rap_scores_alone(tmp_path, monkeypatch):
    """The manual's own scoring step (docs/scoring.md), run as written: its column is p (1 - p) of
    each row's image accuracy, every RAP column equals RAPScorer's, and the step list enters the
    fingerprint."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    exec(compile(_manual_block("class Learnability").replace("/tmp/", f"{tmp_path}/"), "docs/scoring.md step", "exec"),
         namespace)
    scored, rows, config = namespace["scored"], namespace["rows"], namespace["config"]
    assert "rap_learnability" in scored.column_names and len(scored) == len(rows)
    for row in scored:
        p = row["rap_acc_image"]
        assert row["rap_learnability"] == (None if p is None else p * (1 - p))
    plain = RAPScorer(namespace["model"], config)
    reference = plain.map(rows, batch_size=4)
    for column in plain.output_columns():
        assert scored[column] == reference[column], column
    assert namespace["scorer"].fingerprint(rows) != plain.fingerprint(rows)


class _ResponseLength(ScoringStep):
    """A step that uses the model's tokenizer and can fail a row (for the contract tests below)."""

    name = "response_length"
    reads = ("rap_responses_image",)

    def __init__(self, fail_id: str | None = None):
        self.fail_id = fail_id

    def columns(self, config):
        return {"rap_response_tokens": "int64"}

    def settings(self):
        return {"fail_id": self.fail_id}

    def score(self, rows, context):
        out = [None] * len(rows)
        responses = context.column("rap_responses_image")
        for row in rows:
            if row.error is not None:
                continue
            if row.rap_id == self.fail_id:
                row.error = "response_length: refused on purpose"
                continue
            out[row.index] = len(context.tokenizer(responses[row.index][0])["input_ids"])
        return {"rap_response_tokens": out}


def test_a_step_that_fails_a_row_blanks_all_its_scores(tiny_vlm_paths, rows):
    path = tiny_vlm_paths["llava"]
    config = RAPConfig(**FAST, keep_responses=False)  # the step still reads responses this call
    failing = rows[1]["rap_id"]
    scorer = Scorer(path, config, steps=[*rap_steps(config), _ResponseLength(fail_id=failing)])
    scored = scorer.map(rows, batch_size=4)
    assert "rap_responses_image" not in scored.column_names
    assert scored.features["rap_response_tokens"].dtype == "int64"
    for row in scored:
        if row["rap_id"] == failing:
            assert row["rap_error"] == "response_length: refused on purpose"
            assert row["rap_cde"] is None and row["rap_ace"] is None and row["rap_response_tokens"] is None
        else:
            assert row["rap_error"] is None and row["rap_response_tokens"] >= 1
    # A scorer made only of the step continues an earlier pass: it reads the responses on the rows,
    # and a row that pass failed keeps its error.
    with_responses = RAPScorer(path, FAST_CONFIG).map(rows, batch_size=4)
    alone = Scorer(path, FAST_CONFIG, steps=[_ResponseLength()]).map(
        with_responses.map(lambda r: {"rap_error": "earlier" if r["rap_id"] == failing else r["rap_error"]}),
        batch_size=4)
    assert [e for e in alone["rap_error"]] == ["earlier" if i == failing else None for i in alone["rap_id"]]


def test_scorer_steps_declare_what_they_write():
    config = RAPConfig(**FAST)
    assert [s.name for s in rap_steps(config)] == ["rollout_cde", "ace", "logit_cde"]
    adaptive = rap_steps(RAPConfig(**FAST, adaptive=True))
    assert [s.name for s in adaptive] == ["rollout_cde", "logit_cde"]  # ACE runs inside the rollout step
    assert "rap_ace" in adaptive[0].columns(RAPConfig(**FAST, adaptive=True))
    assert [s.name for s in rap_steps(RAPConfig(**FAST, compute_ace=False, compute_logit_cde=False))] == [
        "rollout_cde"]
    with pytest.raises(ValueError, match="at least one step"):
        Scorer("unused", config, steps=[])


def test_plain_map_without_features_types_every_score_column(tiny_vlm_paths):
    """`ds.map(scorer, batched=True)` as people call it: the first batch is clean (no rap_error, no ACE
    column counted), later batches hold a corrupt image, an empty answer and rows ACE cannot score."""
    from rap_hf.data.schema import images_feature

    path = tiny_vlm_paths["qwen2_5_vl"]
    rows = make_visual_world(20, seed=2)["train"].select(range(8)).cast_column("images", images_feature())

    def hurt(row, i):
        if i == 5:
            row["images"] = [{"bytes": b"not a picture", "path": None}]
        if i == 6:
            row["answer"] = ""
        return row

    rows = rows.map(hurt, with_indices=True)
    # With 1,000 rows required below a column, no column counts: rap_ace_column is None everywhere.
    config = RAPConfig(num_rollouts=2, max_new_tokens=8, ace_min_rows=1000, batch_size=4, **TINY)
    plain = rows.map(RAPScorer(path, config), batched=True, batch_size=4, remove_columns=["rap_planted"])
    assert plain.features["rap_error"].dtype == "string" and plain.features["rap_ace_column"].dtype == "int64"
    assert "rap_planted" not in plain.column_names  # the caller's remove_columns still apply
    errors = list(plain["rap_error"])
    assert errors[:4] == [None] * 4 and errors[5].startswith("Image 0 of row") and errors[6].startswith("empty answer")
    safe = RAPScorer(path, config).map(rows, batch_size=4)
    for column in RAPScorer(path, config).output_columns():
        assert list(plain[column]) == list(safe[column]), column

    # ACE alone on responses it cannot score in the later batches.
    emptied = safe.map(lambda row, i: {"rap_responses_image": row["rap_responses_image"] if i < 4 else ["", ""]},
                       with_indices=True)
    ace = emptied.map(ACEScorer(path, RAPConfig(**{**FAST, "num_rollouts": 2})), batched=True, batch_size=4)
    assert ace.features["rap_ace"].dtype == "float64"
    assert [e is None for e in ace["rap_error"][:4]] == [True] * 4
    assert ace["rap_error"][4] == "ACE failed: ValueError: the response is empty" and ace["rap_ace"][4] is None
