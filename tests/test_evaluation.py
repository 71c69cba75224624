"""Answer-accuracy evaluation: the `evaluate` metric module, `evaluate_model` and `rap-hf eval`."""

import json
from collections import Counter

import evaluate
import pytest
import torch
from datasets import Dataset, load_dataset
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf.cli import main
from rap_hf.evaluation import ROWS_FILE, SUMMARY_FILE, evaluate_model
from rap_hf.metrics import answer_accuracy_path, load_answer_accuracy
from rap_hf.prompts import render_prompt
from rap_hf.verify import is_correct

CORRUPT = [{"bytes": b"\x89PNG broken", "path": None}]
FAST = dict(max_new_tokens=8, batch_size=4, show_progress=False, min_pixels=None, max_pixels=None)


# --------------------------------------------------------------------------- the metric
def test_metric_loaded_by_path_grades_responses():
    metric = evaluate.load(answer_accuracy_path(), keep_in_memory=True)
    # evaluate imported its own copy of the module from its cache, and `rap_hf` resolved there.
    assert type(metric).__module__.startswith("evaluate_modules.metrics.answer_accuracy")
    cases = [  # (response, answer, choices, correct, formatted)
        ("<think>2 and 2</think> \\boxed{4}", "4", None, True, True),
        ("<think>2 and 2</think> \\boxed{5}", "4", None, False, True),
        ("the answer is 4", "4", None, False, False),  # no boxed answer
        ("\\boxed{B}", "B", ["red", "blue"], True, False),
        ("\\boxed{blue}", "B", ["red", "blue"], True, False),  # the option's text names its letter
        ("\\boxed{A}", "B", ["red", "blue"], False, False),
        ("\\boxed{3}", "3.5", None, False, False),
        ("\\boxed{\\frac{1}{2}}", "0.5", None, True, False),
        ("\\boxed{Red}", "red", None, True, False),
        ("\\boxed{blue}", "red", None, False, False),
        ("", "yes", None, False, False),  # a row that could not be generated
    ]
    responses, answers, choices, correct, formatted = map(list, zip(*cases))
    result = metric.compute(predictions=responses, references=answers, choices=choices, per_row=True)
    assert result["correct_per_row"] == correct
    assert result["formatted_per_row"] == formatted
    assert result["correct"] == 5 and result["total"] == len(cases)
    assert result["accuracy"] == pytest.approx(5 / len(cases))
    assert result["format_rate"] == pytest.approx(2 / len(cases))


def test_metric_without_choices_and_in_batches():
    metric = load_answer_accuracy(keep_in_memory=True)
    assert metric.compute(predictions=["\\boxed{B}", "\\boxed{7}"], references=["B", "7"]) == {
        "accuracy": 1.0, "correct": 2, "total": 2, "format_rate": 0.0}
    # add_batch accumulates like any evaluate metric; choices go to compute only.
    metric.add_batch(predictions=["\\boxed{red}"], references=["red"])
    metric.add_batch(predictions=["\\boxed{-5}"], references=["5"])
    assert metric.compute()["correct"] == 1
    with pytest.raises(ValueError, match="choices has 1 entries"):
        metric.compute(predictions=["\\boxed{A}", "\\boxed{B}"], references=["A", "B"], choices=[None])
    assert metric.compute(predictions=[], references=[])["total"] == 0


# --------------------------------------------------------------------------- evaluate_model
@pytest.fixture(scope="module")
def benchmark(world):
    """Six canonical test rows; the third one's picture is corrupt."""
    rows = world["test"].select(range(6))
    return rows.map(lambda row, i: {"images": CORRUPT} if i == 2 else {}, with_indices=True, features=rows.features)


def _read(folder):
    rows = [json.loads(line) for line in (folder / ROWS_FILE).read_text().splitlines()]
    return rows, json.loads((folder / SUMMARY_FILE).read_text())


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_evaluate_model_writes_rows_and_a_consistent_summary(tiny_vlm_paths, benchmark, kind, tmp_path):
    result = evaluate_model(tiny_vlm_paths[kind], benchmark, **FAST)
    paths = result.save(tmp_path)
    assert paths == {"rows": tmp_path / ROWS_FILE, "summary": tmp_path / SUMMARY_FILE}
    rows, summary = _read(tmp_path)

    assert [r["rap_id"] for r in rows] == list(benchmark["rap_id"])  # every row, in order, none dropped
    assert summary["total"] == len(rows) == 6
    broken = rows[2]
    assert broken["error"].startswith("Image 0 of row") and "could not be decoded" in broken["error"]
    assert broken["response"] is None and broken["correct"] is False
    assert summary["errors"] == 1
    for row in rows[:2] + rows[3:]:
        assert row["error"] is None and isinstance(row["response"], str)
    # The summary is what the saved responses grade to.
    recomputed = [is_correct(r["response"], r["answer"], r["choices"]) for r in rows]
    assert [r["correct"] for r in rows] == recomputed
    assert summary["correct"] == sum(recomputed)
    assert summary["accuracy"] == pytest.approx(sum(recomputed) / len(rows))
    assert summary["model"] == str(tiny_vlm_paths[kind]) and summary["split"] is None
    assert summary["generation"]["max_new_tokens"] == 8 and summary["generation"]["temperature"] == 0.0
    assert summary["seconds"] > 0
    # The summary round-trips into the Hub model card's metadata.
    from huggingface_hub import ModelCardData

    card = ModelCardData(model_name="tiny", eval_results=result.hub_eval_results()).to_dict()
    entry = card["model-index"][0]["results"][0]
    assert entry["metrics"][0]["type"] == "accuracy" and entry["metrics"][0]["value"] == summary["accuracy"]
    assert entry["task"]["type"] == "image-text-to-text"


def _answering_model(model_path, answer: str):
    """The tiny Qwen2.5-VL rewired to say exactly `answer` to any prompt (greedy), then stop.

    Every layer's output projections are zeroed, so the last hidden state is the normalised
    embedding of the current token; each token of the chain (prompt's last token, the answer's
    tokens) gets its own basis vector, and the (untied) head maps each to the next token, the last
    to EOS. Real weights through real `generate`: a model whose accuracy is known in advance.
    """
    model = AutoModelForImageTextToText.from_pretrained(model_path).eval()  # fresh: load_vlm caches
    processor = AutoProcessor.from_pretrained(model_path)
    tokenizer = processor.tokenizer
    last = tokenizer(render_prompt(processor, "?", 1))["input_ids"][-1]
    chain = [last, *tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain), "each token of the chain must lead to one next token"
    text = model.model.language_model
    hidden = text.config.hidden_size
    with torch.no_grad():
        for name, param in text.layers.named_parameters():
            if name.endswith(("o_proj.weight", "o_proj.bias", "down_proj.weight", "down_proj.bias")):
                param.zero_()
        text.norm.weight.fill_(1.0)
        head = torch.zeros(model.lm_head.weight.shape)
        for k, (token, following) in enumerate(zip(chain, chain[1:])):
            basis = torch.zeros(hidden)
            basis[k] = 1.0
            text.embed_tokens.weight[token] = basis
            head[following] = 10.0 * basis
        model.lm_head.weight = torch.nn.Parameter(head)  # untied from the embeddings
    model.config.tie_word_embeddings = False
    return model, processor


def test_evaluate_model_counts_known_answers(tiny_vlm_paths, world):
    """A model that always gives one answer (the commonest among the gradable rows): accuracy is
    exactly the share of gradable rows with that answer."""
    rows = world["test"]
    edits = {0: {"images": CORRUPT}, 1: {"question": "word " * 5000}, 3: {"answer": ""}}
    given = Counter(a for i, a in enumerate(rows["answer"]) if i not in edits).most_common(1)[0][0]
    model, processor = _answering_model(tiny_vlm_paths["qwen2_5_vl"], f"\\boxed{{{given}}}")
    rows = rows.map(lambda row, i: edits.get(i, {}), with_indices=True, features=rows.features)
    result = evaluate_model(model, rows, processor=processor, max_new_tokens=12, batch_size=5, show_progress=False,
                            dataset_name="rap-hf/visual-world", split="test", min_pixels=None, max_pixels=None)
    out = result.rows
    errors = {i: e for i, e in enumerate(out["error"]) if e is not None}
    assert set(errors) == {0, 1, 3}
    assert "could not be decoded" in errors[0]
    assert "PromptTooLong" in errors[1] and "4096 positions" in errors[1]
    assert errors[3].startswith("empty answer")
    assert all(r == f"\\boxed{{{given}}}" for i, r in enumerate(out["response"]) if i not in errors)
    expected = [i not in errors and a == given for i, a in enumerate(rows["answer"])]
    assert sum(expected) > 0  # the known result is not the trivial zero
    assert out["correct"] == expected
    summary = result.summary
    assert summary["correct"] == sum(expected) and summary["total"] == len(rows) and summary["errors"] == 3
    assert summary["accuracy"] == pytest.approx(sum(expected) / len(rows))
    assert summary["format_rate"] == 0.0  # answers without <think>
    assert summary["model"] == str(tiny_vlm_paths["qwen2_5_vl"])
    (entry,) = summary["eval_results"]
    assert entry["dataset_type"] == "rap-hf/visual-world" and entry["dataset_split"] == "test"
    assert entry["metric_value"] == summary["accuracy"]


def test_evaluate_model_converts_non_canonical_rows(tiny_vlm_paths, world):
    from conftest import png_bytes

    source = Dataset.from_dict({"problem": ["<image>How many squares?"], "answer": ["2"],
                                "images": [[{"bytes": png_bytes(), "path": None}]]})
    result = evaluate_model(tiny_vlm_paths["qwen2_5_vl"], source, limit=1, **FAST)
    assert result.rows["question"] == ["How many squares?"] and result.rows["error"] == [None]
    with pytest.raises(ValueError, match="no split 'dev'"):
        evaluate_model(tiny_vlm_paths["qwen2_5_vl"], world, split="dev", **FAST)


def test_sampled_responses_do_not_depend_on_the_batch(tiny_vlm_paths, world):
    rows = world["test"].select(range(4))
    settings = dict(temperature=1.0, seed=3, max_new_tokens=6, show_progress=False, min_pixels=None, max_pixels=None)
    alone = evaluate_model(tiny_vlm_paths["qwen2_5_vl"], rows, batch_size=1, **settings)
    together = evaluate_model(tiny_vlm_paths["qwen2_5_vl"], rows, batch_size=4, **settings)
    assert alone.rows["response"] == together.rows["response"]
    assert any(alone.rows["response"])  # sampled text, not four empty strings
    assert together.summary["generation"]["temperature"] == 1.0


# --------------------------------------------------------------------------- rap-hf eval
def test_eval_command_on_a_saved_world(tiny_vlm_paths, world, tmp_path, capsys):
    world.save_to_disk(tmp_path / "world")
    # Through the real entry point: `rap-hf eval ...` is rap_hf.cli.main.
    assert main(["eval", "--model", str(tiny_vlm_paths["qwen2_5_vl"]), "--dataset", str(tmp_path / "world"),
                 "--output", str(tmp_path / "eval"), "--max-new-tokens", "6", "--batch-size", "3",
                 "--limit", "3"]) == 0
    rows, summary = _read(tmp_path / "eval")
    assert summary["split"] == "test" and summary["dataset"] == "world"  # several splits: test by default
    assert summary["total"] == len(rows) == 3 and summary["limit"] == 3
    assert [r["rap_id"] for r in rows] == world["test"]["rap_id"][:3]
    assert summary["correct"] == sum(is_correct(r["response"], r["answer"]) for r in rows)
    # rows.jsonl is also an ordinary dataset file.
    assert load_dataset("json", data_files=str(tmp_path / "eval" / ROWS_FILE), split="train").num_rows == 3
    printed = capsys.readouterr().out
    assert "accuracy" in printed and str(tmp_path / "eval" / SUMMARY_FILE) in printed
