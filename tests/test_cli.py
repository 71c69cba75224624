"""The rap-hf command line, run as a user would run it."""

import argparse
import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from datasets import load_dataset, load_from_disk

import rap_hf.config
from rap_hf import __version__
from rap_hf.cli import AVAILABLE, CONFIG_COMMANDS, build_parser, command_parser, main
from rap_hf.cli_args import ConfigArgumentParser
from rap_hf.config import DemoConfig, EvalConfig, RAPConfig, SelectionConfig
from rap_hf.data.images import ImageDecodeError, decode_image, decode_row_images
from rap_hf.data.schema import ColumnMapping
from rap_hf.quickstart import QuickstartConfig

# Each config dataclass, and the command whose flags it gives.
CONFIGS = {"score": RAPConfig, "select": SelectionConfig, "eval": EvalConfig, "quickstart": QuickstartConfig,
           "demo": DemoConfig}
SCORE = ["--model", "m", "--dataset", "d", "--output", "o"]
SELECT = ["--input", "i", "--output", "o"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "rap_hf", *args], capture_output=True, text=True, timeout=300)


def test_version_and_help():
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rap-hf {__version__}"
    result = _run("--help")
    assert result.returncode == 0
    for command in ("world", "tiny-vlm", "convert", "export", "verify", "score", "select", "quickstart"):
        assert command in result.stdout
    for command, what in AVAILABLE.items():
        assert command in result.stdout and what.split()[0] in result.stdout
    result = _run("select", "--help")
    assert result.returncode == 0 and "--cde-threshold" in result.stdout and "--config" in result.stdout


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


# --------------------------------------------------------------------------- flags from dataclasses
def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _usage_error(capsys, argv: list[str]) -> str:
    """stderr of a command line argparse refuses (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_every_config_field_is_a_flag_of_its_command_with_its_help(command, capsys):
    printed = _help(capsys, command)
    squeezed = "".join(printed.split())  # help is wrapped (and split at hyphens) to the terminal's width
    actions = {action.dest: action for action in command_parser(command)._actions}
    for f in dataclasses.fields(CONFIGS[command]):
        help_text = f.metadata.get("help")
        assert help_text, f"{CONFIGS[command].__name__}.{f.name} has no help"
        assert {f"--{f.name}", "--" + f.name.replace("_", "-")} <= set(actions[f.name].option_strings)
        assert "--" + f.name.replace("_", "-") in printed, f.name
        assert "".join(help_text.split()) in squeezed, f.name


def test_every_flag_of_every_command_has_help(capsys):
    def check(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    check(sub, f"{name} {sub_name}")
            elif action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"rap-hf {name} {action.option_strings[0]} has no help"

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == set(AVAILABLE)
    for name, parser in commands.items():
        # train's flags are TRL's and transformers' fields (tests/test_cli_train.py checks its help).
        if name != "train":
            check(command_parser(name) if name in CONFIG_COMMANDS else parser, name)
    printed = _help(capsys, "push", "checkpoint")
    assert "--eval-summary" in printed and "summary.json written by rap-hf eval" in printed


def test_a_field_added_to_a_config_becomes_a_flag_of_its_command(monkeypatch, capsys):
    @dataclasses.dataclass
    class GrownConfig(RAPConfig):
        new_knob: int = dataclasses.field(default=3, metadata={"help": "A knob added after the CLI was written."})
        new_mode: Literal["fast", "exact"] = dataclasses.field(default="exact", metadata={"help": "A new choice."})
        new_switch: bool = dataclasses.field(default=False, metadata={"help": "A new switch (100 % new)."})

    monkeypatch.setattr(rap_hf.config, "RAPConfig", GrownConfig)
    parser = command_parser("score")
    assert "A knob added after the CLI was written." in parser.format_help()
    args, config = parser.parse_args_and_config([*SCORE, "--new-knob", "5", "--new_mode", "fast", "--new-switch",
                                                 "--num-rollouts", "2"])
    assert type(config) is GrownConfig and args.model == "m"
    assert (config.new_knob, config.new_mode, config.new_switch, config.num_rollouts) == (5, "fast", True, 2)
    assert "100 % new" in _help(capsys, "score")


def test_bool_fields_take_flag_no_flag_and_a_value():
    def score(*flags: str) -> RAPConfig:
        return command_parser("score").parse_args_and_config([*SCORE, *flags])

    args, config = score()
    assert (config.keep_responses, config.adaptive, args.keep_shards, args.overwrite) == (True, False, False, False)
    for flags, keep in ((["--no-keep-responses"], False), (["--no_keep_responses"], False),
                        (["--keep-responses", "false"], False), (["--keep_responses=no"], False),
                        (["--no-keep-responses", "--keep-responses"], True)):
        assert score(*flags)[1].keep_responses is keep, flags
    for flags, adaptive in ((["--adaptive"], True), (["--adaptive", "true"], True), (["--adaptive", "0"], False),
                            (["--no-adaptive"], False)):
        assert score(*flags)[1].adaptive is adaptive, flags
    args, _ = score("--keep-shards", "--overwrite")
    assert args.keep_shards is True and args.overwrite is True

    # `bool | None` (None: decided by the mode) takes the same spellings.
    def select(*flags: str) -> SelectionConfig:
        return command_parser("select").parse_args_and_config([*SELECT, *flags])[1]

    assert select().use_ace is True and select("--mode", "reference").use_ace is False
    assert select("--no-use-ace").use_ace is False and select("--use-ace").use_ace is True
    assert select("--mode", "reference", "--use-ace", "false").use_ace is False
    (config,) = command_parser("quickstart").parse_args_and_config(["--fast", "--out", "here", "--seeds", "2"])
    assert (config.fast, config.output_dir, config.seeds) == (True, "here", 2)
    assert command_parser("quickstart").parse_args_and_config(["--no-fast"])[0].fast is False


def test_bad_values_and_unknown_flags_are_usage_errors(capsys):
    err = _usage_error(capsys, ["select", *SELECT, "--mode", "bogus"])
    assert "rap-hf select: error:" in err and "invalid choice: 'bogus'" in err
    for flags in (["--backend", "tensorflow"], ["--ace-head-reduce", "median"], ["--num-rollouts", "many"],
                  ["--adaptive", "maybe"], ["--no-adaptive", "true"], ["--not-a-flag", "1"]):
        err = _usage_error(capsys, ["score", *SCORE, *flags])
        assert err.splitlines()[-1].startswith("rap-hf score: error:"), flags
    assert "unrecognized arguments: --not-a-flag 1" in err
    assert "--model" in _usage_error(capsys, ["eval", "--dataset", "d", "--output", "o"])  # required
    # What a config refuses is one line and status 1, like every other error.
    assert main(["select", *SELECT, "--drm-ratio", "2"]) == 1
    assert capsys.readouterr().err == ("rap-hf select: error: drm_ratio must be in [0, 1], got 2.0 (--drm-ratio on "
                                       "the command line)\n")


def test_config_yaml_merges_under_the_flags_and_rejects_unknown_keys(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "select.yaml"
    recipe.write_text("mode: reference\ndrm_ratio: 0.3\ndrm_seed: 7\nenv:\n  RAP_HF_TEST_VARIABLE: from-yaml\n")
    monkeypatch.setenv("RAP_HF_TEST_VARIABLE", "before")
    args, config = command_parser("select").parse_args_and_config(
        [*SELECT, "--config", str(recipe), "--drm-seed", "9"])
    assert (config.mode, config.drm_ratio, config.drm_seed, config.use_ace) == ("reference", 0.3, 9, False)
    assert args.input == "i"
    assert os.environ["RAP_HF_TEST_VARIABLE"] == "from-yaml"  # TrlParser's `env:` convention
    _, config = command_parser("select").parse_args_and_config(["--drm-seed", "9", f"--config={recipe}", *SELECT])
    assert (config.mode, config.drm_seed) == ("reference", 9)

    (quick,) = command_parser("quickstart").parse_args_and_config(["--config", str(_yaml(tmp_path, "seeds: 2"))])
    assert quick.seeds == 2
    _, evaluation = command_parser("eval").parse_args_and_config(
        ["--model", "m", "--dataset", "d", "--output", "o", "--config", str(_yaml(tmp_path, "limit: 4"))])
    assert evaluation == EvalConfig(limit=4)

    recipe.write_text("cde_treshold: 0.4\nmode: paper\ninput: elsewhere\n")  # input: a flag, not a field
    assert main(["select", *SELECT, "--config", str(recipe)]) == 1
    assert capsys.readouterr().err == (f"rap-hf select: error: {recipe}: unknown SelectionConfig fields "
                                       "cde_treshold, input\n")
    assert main(["score", *SCORE, "--config", str(_yaml(tmp_path, "num_rolouts: 2"))]) == 1
    assert "unknown RAPConfig fields num_rolouts" in capsys.readouterr().err
    assert main(["select", *SELECT, "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    assert "--config" in _usage_error(capsys, ["select", *SELECT, "--config"])
    assert "--config" in _usage_error(capsys, ["demo", "--config", str(recipe)])  # the Space has no YAML


def _yaml(folder: Path, text: str) -> Path:
    """A YAML file of `text` in `folder`, named after its first key."""
    path = folder / f"{text.split(':')[0]}.yaml"
    path.write_text(text + "\n")
    return path


def test_eval_command_passes_its_flags_as_an_eval_config(tmp_path, monkeypatch, capsys):
    import rap_hf.evaluation

    calls = {}

    class Result:
        rows = ["row"] * 2

        def save(self, folder):
            return {"rows": Path(folder) / "rows.jsonl", "summary": Path(folder) / "summary.json"}

        def table(self):
            return "accuracy 0.500"

    def evaluate_model(model, dataset, *, split=None, config=None, mapping=None):
        calls.update(model=model, dataset=dataset, split=split, config=config, mapping=mapping)
        return Result()

    monkeypatch.setattr(rap_hf.evaluation, "evaluate_model", evaluate_model)
    assert main(["eval", "--model", "m", "--dataset", "d", "--split", "val", "--output", str(tmp_path),
                 "--max-new-tokens", "6", "--batch-size", "3", "--limit", "3", "--temperature", "0.5",
                 "--top-p", "0.9", "--seed", "4", "--device", "cpu", "--dtype", "float32", "--format-prompt", "",
                 "--system-prompt", "Be brief.", "--dataset-name", "World"]) == 0
    assert (calls["model"], calls["dataset"], calls["split"]) == ("m", "d", "val")
    assert calls["config"] == EvalConfig(max_new_tokens=6, batch_size=3, limit=3, temperature=0.5, top_p=0.9, seed=4,
                                         device="cpu", dtype="float32", format_prompt=None,
                                         system_prompt="Be brief.", dataset_name="World")
    assert capsys.readouterr().out == (f"accuracy 0.500\nWrote 2 rows to {tmp_path / 'rows.jsonl'} and the summary "
                                       f"to {tmp_path / 'summary.json'}\n")
    assert calls["mapping"] == ColumnMapping().rap_format_kwargs()  # auto-detect, no column named
    assert main(["eval", "--model", "m", "--dataset", "d", "--output", str(tmp_path), "--max_new_tokens", "7"]) == 0
    assert calls["split"] is None and calls["config"] == EvalConfig(max_new_tokens=7)
    # The column mapping of every row-reading command reaches evaluate_model (and so to_rap_format).
    assert main(["eval", "--model", "m", "--dataset", "d", "--output", str(tmp_path), "--preset", "mathvista",
                 "--question", "q", "--answer", "gt", "--images", "image_1,image_2", "--id", "key",
                 "--choices", "opts", "--image-root", "/pics"]) == 0
    assert calls["mapping"] == {"preset": "mathvista", "question": "q", "answer": "gt",
                                "images": ["image_1", "image_2"], "id": "key", "choices": "opts",
                                "image_root": ["/pics"], "fetch_images": False}
    assert main(["eval", "--model", "m", "--dataset", "d", "--output", str(tmp_path), "--dtype", "float64"]) == 1
    assert capsys.readouterr().err.startswith("rap-hf eval: error: dtype must be")


def test_demo_flags_and_its_environment_defaults(monkeypatch, capsys, tmp_path):
    import rap_hf.demo as demo

    # The names are checked before the server starts (offline, a name must be on disk): make them so.
    monkeypatch.chdir(tmp_path)
    for name in ("env-rows", "m", "rows"):
        (tmp_path / name).mkdir()

    launched = {}

    class Loader:
        def __init__(self, dataset, model):
            launched.update(dataset=dataset, model=model)

    class App:
        def launch(self, **kwargs):
            launched.update(kwargs)

    monkeypatch.setattr(demo, "Loader", Loader)
    monkeypatch.setattr(demo, "build_demo", lambda loader: App())
    monkeypatch.setenv("RAP_DATASET", "env-rows")
    monkeypatch.delenv("RAP_MODEL", raising=False)
    assert main(["demo", "--model", "m", "--port", "7861"]) == 0
    assert launched == {"dataset": "env-rows", "model": "m", "server_name": None, "server_port": 7861}
    assert demo.main(["--dataset", "rows", "--host", "0.0.0.0"]) == 0  # spaces_demo/app.py's entry point
    assert launched == {"dataset": "rows", "model": None, "server_name": "0.0.0.0", "server_port": None}
    assert demo.parse_args([]) == DemoConfig(dataset="env-rows")
    assert "invalid" in _usage_error(capsys, ["demo", "--port", "http"])
    assert "--dataset" in _help(capsys, "demo")


def test_one_parser_turns_dataclasses_into_flags():
    """Every config command's parser is a ConfigArgumentParser, and no other module of rap_hf builds
    flags with HfArgumentParser, TrlParser or BooleanOptionalAction (in code; docs may name them)."""
    for command in CONFIG_COMMANDS:
        if command != "train":  # tests/test_cli_train.py checks train's
            assert isinstance(command_parser(command), ConfigArgumentParser), command
    root = Path(rap_hf.config.__file__).parent
    others = {"HfArgumentParser", "TrlParser", "BooleanOptionalAction"}
    for path in root.rglob("*.py"):
        if path.name == "cli_args.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            assert name not in others, f"{path.relative_to(root.parent)}:{node.lineno} uses {name}"


# --------------------------------------------------------------------------- one column-mapping vocabulary
MAPPING_FLAGS = ("--preset", "--question", "--answer", "--images", "--id", "--choices", "--image-root")


@pytest.mark.parametrize("command", ["convert", "score", "eval", "quickstart"])
def test_every_row_reading_command_takes_the_column_mapping_flags(command, capsys):
    actions = {option for action in command_parser(command)._actions for option in action.option_strings}
    assert set(MAPPING_FLAGS) <= actions, command
    printed = "".join(_help(capsys, command).split())
    for f in dataclasses.fields(ColumnMapping):
        assert "".join(f.metadata["help"].split()) in printed, (command, f.name)


def _png_file(path: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def test_convert_reads_a_csv_with_relative_image_paths_from_anywhere(tmp_path, monkeypatch, capsys):
    """The issue's CSV (`id,image_path,question,answer`): every row keeps its image, resolved against
    the CSV's folder whatever the working directory."""
    data = tmp_path / "data"
    _png_file(data / "imgs" / "a.png", (200, 0, 0))
    _png_file(data / "imgs" / "b.png", (0, 0, 200))
    (data / "rows.csv").write_text("id,image_path,question,answer\n1,imgs/a.png,What colour?,red\n"
                                   "2,imgs/b.png,What colour?,blue\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["convert", "--dataset", str(data / "rows.csv"), "--out", str(tmp_path / "rows")]) == 0
    rows = load_from_disk(str(tmp_path / "rows"))
    # save_to_disk embeds the pictures it finds: the written rows hold their bytes.
    assert [[decode_image(ref).getpixel((0, 0)) for ref in images] for images in rows["images"]] == [
        [(200, 0, 0)], [(0, 0, 200)]]


def test_convert_keeps_going_past_a_missing_image_file(tmp_path, capsys):
    """One picture of the CSV is missing: the conversion and its save go through, and only that
    row fails, named, when it is decoded."""
    _png_file(tmp_path / "imgs" / "a.png", (200, 0, 0))
    (tmp_path / "rows.csv").write_text("id,image_path,question,answer\n1,imgs/a.png,What colour?,red\n"
                                       "2,imgs/gone.png,What colour?,blue\n")
    assert main(["convert", "--dataset", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "rows")]) == 0
    rows = load_from_disk(str(tmp_path / "rows"))
    assert decode_image(rows[0]["images"][0]).getpixel((0, 0)) == (200, 0, 0)
    assert rows[1]["images"] == [{"bytes": None, "path": "file://" + str(tmp_path / "imgs" / "gone.png")}]
    with pytest.raises(ImageDecodeError, match="row '2'.*image file not found"):
        decode_row_images(rows[1]["images"], rows[1]["rap_id"])


def test_convert_maps_columns_with_the_flags(tmp_path, capsys):
    """A layout no preset knows, mapped column by column, two image columns in the order given and
    the pictures under another folder (--image-root)."""
    _png_file(tmp_path / "pics" / "l.png", (200, 0, 0))
    _png_file(tmp_path / "pics" / "r.png", (0, 200, 0))
    (tmp_path / "odd.jsonl").write_text(json.dumps({
        "key": "k1", "prompt_text": "Is <image 1> brighter than <image 2>?", "gt": 1, "opts": ["yes", "no"],
        "left": "l.png", "right": "r.png"}) + "\n")
    out = tmp_path / "rows"
    assert main(["convert", "--dataset", str(tmp_path / "odd.jsonl"), "--out", str(out), "--question", "prompt_text",
                 "--answer", "gt", "--images", "right,left", "--id", "key", "--choices", "opts",
                 "--image-root", str(tmp_path / "pics")]) == 0
    row = load_from_disk(str(out))[0]
    assert row["rap_id"] == "k1" and row["answer"] == "B" and row["choices"] == ["yes", "no"]
    assert row["question"] == "Is image 1 brighter than image 2?\nChoices:\n(A) yes\n(B) no"
    assert [Path(ref["path"]).name for ref in row["images"]] == ["r.png", "l.png"]


def test_convert_refuses_to_drop_every_image(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("question,answer,photo\nWhat is it?,cat,pics/1.png\n")
    assert main(["convert", "--dataset", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "rap-hf convert: error: to_rap_format would drop every image" in err
    assert "'photo'" in err and "--images photo" in err
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "1.png").write_bytes(b"not a picture, but a file")
    assert main(["convert", "--dataset", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "o"),
                 "--images", "photo"]) == 0
    assert load_from_disk(str(tmp_path / "o"))[0]["images"][0]["bytes"] == b"not a picture, but a file"
