"""The rap-hf command line, run as a user would run it."""

import json
import subprocess
import sys

from datasets import load_dataset, load_from_disk

from rap_hf import __version__
from rap_hf.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "rap_hf", *args], capture_output=True, text=True, timeout=300)


def test_version_and_help():
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rap-hf {__version__}"
    result = _run("--help")
    assert result.returncode == 0
    for command in ("world", "tiny-vlm", "convert", "export", "verify", "score", "select", "quickstart"):
        assert command in result.stdout


def test_world_convert_export_pipeline(tmp_path):
    world, rows, verl = tmp_path / "world", tmp_path / "rows", tmp_path / "verl" / "train.parquet"
    assert main(["world", "--out", str(world), "--n", "40", "--seed", "1"]) == 0
    assert main(["convert", "--dataset", str(world), "--split", "train", "--out", str(rows)]) == 0
    assert main(["export", "--dataset", str(rows), "--to", "verl", "--out", str(verl)]) == 0
    assert main(["export", "--dataset", str(rows), "--to", "trl", "--out", str(tmp_path / "trl")]) == 0
    converted = load_from_disk(str(rows))
    assert len(converted) == 32 and converted.column_names[:4] == ["rap_id", "question", "answer", "images"]
    exported = load_dataset("parquet", data_files=str(verl), split="train")
    assert len(exported) == 32 and exported[0]["reward_model"]["ground_truth"] == converted[0]["answer"]
    assert len(load_from_disk(str(tmp_path / "trl"))) == 32
    # verl output converts back to the same canonical rows.
    assert main(["convert", "--dataset", str(verl), "--out", str(tmp_path / "back")]) == 0
    back = load_from_disk(str(tmp_path / "back"))
    assert list(back["rap_id"]) == list(converted["rap_id"]) and list(back["question"]) == list(converted["question"])


def test_tiny_vlm_command(tmp_path):
    result = _run("tiny-vlm", "--kind", "qwen2_vl", "--out", str(tmp_path / "m"), "--text-hidden", "96")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "qwen2_vl" and config["text_config"]["hidden_size"] == 96


def test_verify_command(capsys):
    assert main(["verify", "--response", "<think>x</think> \\boxed{-5}", "--answer=-5"]) == 0
    assert json.loads(capsys.readouterr().out) == {"extracted": "-5", "correct": True, "formatted": True}
    assert main(["verify", "--response", "\\boxed{B}", "--answer", "blue", "--choices", '["red", "blue"]']) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True


def test_unknown_layout_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "odd.jsonl"
    data.write_text('{"q": "What?", "gt": "1"}\n')
    assert main(["convert", "--dataset", str(data), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Columns found: q, gt" in err and "question=" in err
    assert main(["convert", "--dataset", str(data), "--question", "q", "--answer", "gt",
                 "--out", str(tmp_path / "o")]) == 0
    assert load_from_disk(str(tmp_path / "o"))["question"] == ["What?"]


def test_score_command_with_yaml_and_flags(tiny_vlm_paths, tmp_path, capsys):
    world = tmp_path / "world"
    assert main(["world", "--out", str(world), "--n", "10", "--seed", "2"]) == 0
    recipe = tmp_path / "score.yaml"
    recipe.write_text("num_rollouts: 2\nmax_new_tokens: 6\ncompute_ace: false\nseed: 3\n")
    out = tmp_path / "scored"
    code = main(["score", "--model", str(tiny_vlm_paths["llava"]), "--dataset", str(world), "--split", "train",
                 "--output", str(out), "--config", str(recipe), "--num-rollouts", "3", "--no-keep-responses"])
    assert code == 0
    assert "Scored 8 rows (0 with rap_error)" in capsys.readouterr().out
    scored = load_from_disk(str(out))
    assert len(scored) == 8
    assert all(len(flags) == 3 for flags in scored["rap_image_correct"])  # the flag beat the YAML
    assert "rap_ace" not in scored.column_names and "rap_responses_image" not in scored.column_names
    assert "rap_logit_cde" in scored.column_names
    recipe.write_text("num_rolouts: 2\n")
    assert main(["score", "--model", str(tiny_vlm_paths["llava"]), "--dataset", str(world), "--split", "train",
                 "--output", str(out), "--config", str(recipe)]) == 1
    assert "unknown RAPConfig fields num_rolouts" in capsys.readouterr().err


def test_select_command_writes_subset_decisions_and_report(tmp_path, capsys):
    from selection_helpers import scored_dataset

    rows = [{"rap_id": f"v{i}", "img": 4, "txt": 0} for i in range(6)] + [
        {"rap_id": "easy", "img": 5, "txt": 0}, {"rap_id": "hard", "img": 1, "txt": 0},
        {"rap_id": "prior", "img": 4, "txt": 4}]
    scored_dataset(rows).save_to_disk(str(tmp_path / "scored"))
    out = tmp_path / "selected"
    assert main(["select", "--input", str(tmp_path / "scored"), "--output", str(out), "--cde-threshold", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "kept 7 of 9 rows" in printed and "| trivial | 1 |" in printed
    assert len(load_from_disk(str(out / "dataset"))) == 7
    decisions = load_from_disk(str(out / "decisions"))
    assert dict(zip(decisions["rap_id"], decisions["rap_reason"]))["hard"] == "kept_replacement"
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["language_prior"] == 1 and report["total"] == 9
    assert (out / "report.md").read_text().startswith("**RAP selection (paper mode)**")
    assert (out / "plots" / "score_distributions.png").stat().st_size > 10_000
    assert main(["select", "--input", str(tmp_path / "scored"), "--output", str(out), "--mode", "reference"]) == 0
    assert "reference mode" in (out / "report.md").read_text()
