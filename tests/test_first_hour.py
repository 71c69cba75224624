"""A new user's first hour, met as they meet it: a selection that keeps nothing says why, nothing
trains on or publishes it, settings out of range fail at once, the command line gives commands (not
Python advice), and the cards keep what the user gave. (Scoring's mistakes: test_first_hour_scoring.py.)

Each case goes through what the user calls: `rap_hf.cli.main([...])` (its exit status and the one
stderr line `rap-hf CMD: error: ...`) or the Python call (its exception). The tests marked `slow`
train a tiny model; the others load no model.
"""

import json
import logging

import pytest
from datasets import Dataset, load_from_disk
from huggingface_hub import DatasetCard, ModelCard
from selection_helpers import hand_scored
from test_hub import RecordingHub

from rap_hf import RAPConfig, Selection, select
from rap_hf.cli import main
from rap_hf.hub import SCORING_RECORD, push_subset

RECIPE = "tiny_cpu"  # the packaged CPU recipe, by name
FAST = ["--max_steps", "2", "--max_completion_length", "8"]  # as tests/test_cli_train.py trains


def _one_line_error(capsys, command: str) -> str:
    """The error line, which must be one line and the last thing written (progress bars may come first)."""
    err = capsys.readouterr().err
    assert err.endswith("\n"), err
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last.startswith(f"rap-hf {command}: error: "), err  # else the message ran over several lines
    return last


@pytest.fixture
def hopeless(world, tmp_path, capsys):
    """What a scorer that solves nothing (a random model) leaves: 48 scored rows, every image and
    text-only rollout wrong, selected by `rap-hf select` into `selected/`."""
    scored, selected = tmp_path / "scored", tmp_path / "selected"
    hand_scored(world["train"], [0], [0]).save_to_disk(str(scored))
    assert main(["select", "--input", str(scored), "--output", str(selected)]) == 0
    return selected, capsys.readouterr().out


# --------------------------------------------------------------------------- 1. nothing kept
def test_select_says_why_it_kept_nothing(hopeless):
    selected, printed = hopeless
    why = json.loads((selected / "report.json").read_text())["why_none_kept"]
    assert "Nothing was kept (0 of 48 rows: 48 unsolvable)" in why
    assert "the scorer answered no row right with the image (mean acc_image 0.00, without the image 0.00)" in why
    assert "stronger model" in why and "format prompt" in why
    assert why in printed and why in (selected / "report.md").read_text()
    assert "Wrote the 0 kept rows" in printed


def test_training_refuses_an_empty_selection_before_loading_anything(hopeless, world, tmp_path):
    from rap_hf import RAPGRPOTrainer
    from rap_hf.training.data import to_training_rows

    selection = Selection.load_from_disk(hopeless[0])
    never = str(tmp_path / "no-model-here")  # never loaded: the refusal comes first
    with pytest.raises(ValueError) as error:
        RAPGRPOTrainer(never, train_dataset=selection)
    message = str(error.value)
    assert message.startswith("Nothing to train on: the Selection given as train_dataset (paper mode) kept no row.")
    assert "no row right with the image" in message and "rap-hf select" in message and "\n" not in message
    with pytest.raises(ValueError, match="the rows a selection kept, and it kept none"):
        RAPGRPOTrainer(never, train_dataset=selection.dataset)
    with pytest.raises(ValueError, match="Nothing to train on: train_dataset has no rows"):
        RAPGRPOTrainer(never, train_dataset=world["train"].select([]))  # canonical rows, none of them
    trl_rows = Dataset.from_dict({"prompt": [[{"role": "user", "content": "q"}]], "answer": ["a"]})
    with pytest.raises(ValueError, match="Nothing to train on: train_dataset has no rows"):
        RAPGRPOTrainer(never, train_dataset=trl_rows.select([]))  # TRL rows, none of them
    # A `rap-hf select` folder that kept nothing: what `rap-hf train` reads it through.
    from rap_hf.training.data import selection_training_rows

    with pytest.raises(ValueError, match=f"Nothing to train on: the selection in {hopeless[0]} kept no row"):
        selection_training_rows(hopeless[0])
    # An empty replacement pool is not an error (the trainer warns and trains on a fixed set).
    pool = to_training_rows(world["train"].select([]), format_prompt=None, system_prompt=None, needs_answer=True,
                            role="pool")
    assert len(pool) == 0


def test_train_command_refuses_a_selection_that_kept_nothing(hopeless, tmp_path, capsys):
    """Needs `rap_hf/training/script.py`'s `load_training_rows` to read a select folder through
    `rap_hf.training.data.selection_training_rows` (no model is loaded either way)."""
    selected, out, never = hopeless[0], tmp_path / "out", tmp_path / "not-a-model"
    never.mkdir()  # a folder that exists, so only loading it would fail: the refusal must come first
    code = main(["train", "--config", RECIPE, "--model_name_or_path", str(never),
                 "--dataset", str(selected), "--output_dir", str(out), *FAST])
    assert code == 1
    err = _one_line_error(capsys, "train")
    assert f"Nothing to train on: the selection in {selected} kept no row." in err
    assert "no row right with the image" in err and "rap-hf select --input SCORED --output DIR" in err
    assert "rap_hf." not in err and not out.exists()


def test_push_subset_refuses_an_empty_selection_before_any_upload(hopeless, tmp_path, capsys):
    selected = hopeless[0]
    selection = Selection.load_from_disk(selected)
    hub = RecordingHub()
    with pytest.raises(ValueError, match="Not publishing me/empty: the selection kept no row") as error:
        push_subset(selection, "me/empty", api=hub)
    assert "load_dataset" in str(error.value) and "no row right with the image" in str(error.value)
    assert hub.repos == [] and hub.commits == []  # nothing created, nothing committed
    with pytest.raises(ValueError, match="Not publishing"):
        push_subset(selection, "me/empty", local_dir=tmp_path / "tree")
    assert not (tmp_path / "tree").exists()

    assert main(["push", "subset", "--selection", str(selected), "--repo-id", "me/empty", "--local-dir",
                 str(tmp_path / "cli-tree")]) == 1
    err = _one_line_error(capsys, "push")
    assert f"Not publishing me/empty: the selection in {selected} kept no row" in err and "`rap-hf select`" in err
    assert not (tmp_path / "cli-tree").exists()


# --------------------------------------------------------------------------- 2. settings out of range
@pytest.mark.parametrize("command, flags, expected", [
    (["select", "--input", "i", "--output", "o"], ["--cde-threshold", "5"],
     "cde_threshold must be in [-1, 1] (D = acc_image - acc_text lies in it), got 5.0 (--cde-threshold on the "
     "command line)"),
    (["select", "--input", "i", "--output", "o"], ["--mode", "reference", "--ref-core-band", "2"],
     "ref_core_band must be in [0, 1] (a LIMR band score), got 2.0 (--ref-core-band on the command line)"),
    (["select", "--input", "i", "--output", "o"], ["--ace-threshold", "0"],
     "ace_threshold must be > 0 (it is compared in the log domain), got 0.0 (--ace-threshold on the command line)"),
    (["score", "--model", "m", "--dataset", "d", "--output", "o"], ["--adaptive-cde-threshold", "2"],
     "adaptive_cde_threshold must be in [-1, 1] (D = acc_image - acc_text lies in it), got 2.0 "
     "(--adaptive-cde-threshold on the command line)"),
    (["score", "--model", "m", "--dataset", "d", "--output", "o"], ["--ace-sigma", "0"],
     "ace_sigma must be > 0 (ACE takes log(sigma * A[i, j])), got 0.0 (--ace-sigma on the command line)"),
    (["score", "--model", "m", "--dataset", "d", "--output", "o"], ["--ace-min-rows", "0"],
     "ace_min_rows must be >= 1, got 0 (--ace-min-rows on the command line)"),
    (["score", "--model", "m", "--dataset", "d", "--output", "o"], ["--top-p", "1.5"],
     "top_p must be in (0, 1], got 1.5 (--top-p on the command line)"),
    (["score", "--model", "m", "--dataset", "d", "--output", "o"], ["--temperature", "-1"],
     "temperature must be >= 0, got -1.0 (--temperature on the command line)"),
    (["eval", "--model", "m", "--dataset", "d", "--output", "o"], ["--limit", "0"],
     "limit must be >= 1, got 0 (--limit on the command line)"),
    (["quickstart"], ["--cde-threshold", "5"],
     "cde_threshold must be in [-1, 1] (D = acc_image - acc_text lies in it), got 5.0 (--cde-threshold on the "
     "command line)"),
    (["quickstart"], ["--num-generations", "1"], "num_generations must be >= 2"),
    (["quickstart"], ["--learning-rate", "0"], "learning_rate must be > 0, got 0.0 (--learning-rate on the command"),
])
def test_settings_out_of_range_fail_at_once_naming_the_flag(command, flags, expected, capsys):
    assert main([*command, *flags]) == 1  # before anything is read, scored or loaded
    err = _one_line_error(capsys, command[0])
    assert expected in err


# --------------------------------------------------------------------------- 3. commands, not Python
def test_command_line_errors_give_commands(world, tmp_path, capsys):
    rows = tmp_path / "rows"
    world["train"].save_to_disk(str(rows))
    assert main(["select", "--input", str(rows), "--output", str(tmp_path / "o")]) == 1  # not scored yet
    err = _one_line_error(capsys, "select")
    assert "Score the rows first: `rap-hf score --model MODEL --dataset ROWS --output SCORED`" in err

    csv = tmp_path / "mine.csv"
    csv.write_text("id,question,answer,image_path\nk1,What is it?,red,missing.png\n")
    assert main(["convert", "--dataset", str(csv), "--out", str(tmp_path / "canonical")]) == 0
    assert main(["export", "--dataset", str(tmp_path / "canonical"), "--to", "trl", "--out",
                 str(tmp_path / "trl")]) == 1
    assert "`rap-hf export --on-error drop`" in _one_line_error(capsys, "export")


# --------------------------------------------------------------------------- 4. cards keep what was given
def test_the_scoring_record_goes_from_score_through_select_to_the_card(world, tmp_path, capsys):
    from rap_hf.distributed import RECORD

    assert SCORING_RECORD == RECORD  # the one name rap-hf score writes
    scorer = tmp_path / "models" / "my-scorer"  # a local scorer: its name, never its path, reaches the card
    scorer.mkdir(parents=True)
    (scorer / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    config = RAPConfig(num_rollouts=5, max_new_tokens=64, min_pixels=None, max_pixels=None).to_dict()
    scored = tmp_path / "scored"
    hand_scored(world["train"], [5, 4, 3, 1, 0, 2], [0, 0, 3, 0, 0, 2]).save_to_disk(str(scored))
    (scored / RECORD).write_text(json.dumps({"manifest": {"model": str(scorer), "config": config}, "rows": 48,
                                             "errors": 0, "shards": 1}))

    selected = tmp_path / "selected"
    assert main(["select", "--input", str(scored), "--output", str(selected)]) == 0
    assert json.loads((selected / RECORD).read_text())["manifest"]["model"] == str(scorer)  # kept with it
    tree = tmp_path / "tree"
    assert main(["push", "subset", "--selection", str(selected), "--repo-id", "me/world-rap", "--local-dir",
                 str(tree)]) == 0
    capsys.readouterr()
    card = DatasetCard.load(tree / "README.md").text
    assert "Scorer model: `my-scorer` (a local model, not on the Hub)" in card
    assert "| `max_new_tokens` | `64` |" in card and "| `num_rollouts` | `5` |" in card
    report = (tree / "rap_report.json").read_text()
    assert json.loads(report)["scoring_config"]["max_new_tokens"] == 64 and json.loads(report)["scorer_name"] == \
        "my-scorer"
    assert str(tmp_path) not in card and str(tmp_path) not in report  # no machine path is published

    # In Python: a selection of the scored folder finds the record where its rows were loaded from.
    python_tree = push_subset(select(load_from_disk(str(scored))), "me/world-rap", local_dir=tmp_path / "py")
    assert "| `max_new_tokens` | `64` |" in DatasetCard.load(python_tree / "README.md").text
    # Selecting again from a selection's decisions keeps the record; rows without one leave none behind.
    assert main(["select", "--input", str(selected / "decisions"), "--output", str(tmp_path / "again"),
                 "--cde-threshold", "0.2"]) == 0
    assert (tmp_path / "again" / RECORD).read_text() == (scored / RECORD).read_text()
    unrecorded = tmp_path / "unrecorded"
    hand_scored(world["train"], [4], [0]).save_to_disk(str(unrecorded))
    assert main(["select", "--input", str(unrecorded), "--output", str(tmp_path / "again")]) == 0
    assert not (tmp_path / "again" / RECORD).exists()  # the earlier record described other rows
    # What the user gives wins over the record.
    flagged = tmp_path / "flagged"
    assert main(["push", "subset", "--selection", str(selected), "--repo-id", "me/world-rap", "--local-dir",
                 str(flagged), "--scorer-model", "Qwen/Qwen2.5-VL-3B-Instruct"]) == 0
    assert "Scorer model: `Qwen/Qwen2.5-VL-3B-Instruct`" in DatasetCard.load(flagged / "README.md").text


@pytest.mark.slow
def test_a_train_folder_card_records_rewards_settings_and_compute(tiny_vlm_paths, world, tmp_path, capsys):
    """Needs a tiny model: `rap-hf train` with checkpoints, then `rap-hf push checkpoint --folder` on
    its output, whose card reads what the run left (training_args.bin, the last checkpoint)."""
    data, out = tmp_path / "world", tmp_path / "out"
    world["train"].select(range(8)).save_to_disk(str(data))
    assert main(["train", "--config", RECIPE, "--model_name_or_path",
                 str(tiny_vlm_paths["qwen2_5_vl"]), "--dataset", str(data), "--output_dir", str(out), *FAST,
                 "--save_strategy", "steps", "--save_steps", "2"]) == 0
    tree = tmp_path / "tree"
    assert main(["push", "checkpoint", "--folder", str(out), "--repo-id", "me/tiny", "--local-dir", str(tree)]) == 0
    card = ModelCard.load(tree / "README.md").text
    assert "Reward: 1 × `rap_reward`" in card and "Optimizer steps: 2" in card
    assert "| `num_generations` | `4` |" in card and "| `learning_rate` | `0.05` |" in card
    assert "| device | CPU |" in card and "Not recorded." not in card
    assert str(tmp_path) not in card and not (tree / "training_args.bin").exists()


@pytest.mark.slow
def test_an_empty_replacement_pool_stays_a_warning(tiny_vlm_paths, world, tmp_path, caplog):
    """Needs a tiny model (the trainer loads it)."""
    from rap_hf import RAPGRPOConfig, RAPGRPOTrainer

    args = RAPGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, activation_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=1,
                         report_to=[], save_strategy="no", min_pixels=None, max_pixels=None)
    with caplog.at_level(logging.WARNING, logger="rap_hf.training.trainer"):
        trainer = RAPGRPOTrainer(str(tiny_vlm_paths["qwen2_5_vl"]), args, train_dataset=world["train"].select(range(4)),
                                 replacement_pool=world["train"].select([]))
    assert "The replacement pool is empty: training on a fixed set of 4 rows." in caplog.text
    assert trainer.num_active_rows == 4
