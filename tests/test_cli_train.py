"""`rap-hf train`: the packaged recipes (rap_hf/recipes/) and short GRPO runs of a tiny model on the CPU."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from datasets import DatasetDict, concatenate_datasets

from rap_hf.cli import main
from rap_hf.training.script import RECIPES_FOLDER, current_argv, make_parser, packaged_recipes, resolve_recipe

ROOT = Path(__file__).resolve().parent.parent
# The recipes ship inside the package; configs/ of a checkout only points there.
CONFIGS = RECIPES_FOLDER
RECIPES = sorted(CONFIGS.glob("*.yaml"))
PAPER_RECIPES = {"paper_qwen2_5_vl_7b.yaml": "Qwen/Qwen2.5-VL-7B-Instruct",
                 "paper_qwen2_5_vl_3b.yaml": "Qwen/Qwen2.5-VL-3B-Instruct"}
# Seconds, not minutes, on two cores: two prompts per generation, 8 new tokens.
FAST = ["--max_steps", "2", "--max_completion_length", "8"]


def varied_reward(completions, **kwargs) -> list[float]:
    """A reward that differs between rollouts (distinct characters), so a random tiny model gets a
    policy gradient; the RAP rewards give it none, as it never answers right or in format."""
    from rap_hf.rewards import completion_text

    return [len(set(completion_text(c))) / 10.0 for c in completions]


def _parse(recipe: Path, *flags: str):
    # use_cpu: bf16 recipes are refused on a machine without a bf16 GPU unless training is on the CPU.
    return make_parser().parse_args_and_config(args=["--config", str(recipe), "--use_cpu", "true", *flags])


def _weights(path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    return {k: v.detach().clone() for k, v in AutoModelForImageTextToText.from_pretrained(path).state_dict().items()}


@pytest.fixture(scope="module")
def world_dir(world, tmp_path_factory):
    """A few canonical rows of the visual world, saved with save_to_disk (train and test splits)."""
    path = tmp_path_factory.mktemp("train-world") / "world"
    DatasetDict(train=world["train"].select(range(8)), test=world["test"].select(range(2))).save_to_disk(str(path))
    return path


def test_every_recipe_parses_into_the_three_dataclasses():
    assert {p.name for p in RECIPES} >= {*PAPER_RECIPES, "tiny_cpu.yaml"}
    for recipe in RECIPES:
        script_args, training_args, model_args = _parse(recipe)
        assert type(training_args).__name__ == "RAPGRPOConfig" and type(model_args).__name__ == "ModelConfig"
        assert training_args.generation_batch_size % training_args.num_generations == 0, recipe.name
        assert script_args.replacement_pool is None, recipe.name  # the paper trains on a fixed set


@pytest.mark.parametrize("name", sorted(PAPER_RECIPES))
def test_paper_recipes_carry_the_papers_values(name):
    _, args, model_args = _parse(CONFIGS / name)
    assert model_args.model_name_or_path == PAPER_RECIPES[name]
    assert args.learning_rate == pytest.approx(1e-6) and isinstance(args.learning_rate, float)
    assert args.weight_decay == pytest.approx(0.01) and args.lr_scheduler_type.value == "constant"
    assert (args.num_generations, args.temperature, args.top_p) == (5, 1.0, 1.0)
    assert args.beta == pytest.approx(0.01)
    assert (args.epsilon, args.epsilon_high) == (pytest.approx(0.2), pytest.approx(0.3))
    assert args.max_completion_length == 2048 and args.num_train_epochs == 30 and args.num_iterations == 1
    assert args.bf16 and args.activation_checkpointing and args.gradient_checkpointing  # the old name mirrors it
    # On 8 GPUs (computed, not launched): 512 prompts per generation, 128 prompts per optimizer step.
    world_size = 8
    generation = args.per_device_train_batch_size * world_size * args.steps_per_generation
    step = args.per_device_train_batch_size * world_size * args.gradient_accumulation_steps
    assert generation == 2560 and generation // args.num_generations == 512
    assert step == 640 and step // args.num_generations == 128
    assert args.steps_per_generation // args.gradient_accumulation_steps == 4  # optimizer steps per generation


def test_unknown_recipe_key_and_help(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("use_cpu: true\nmax_prompt_length: 2048\n")  # gone from TRL 1.16's GRPOConfig
    assert main(["train", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "max_prompt_length" in err
    assert err == (f"rap-hf train: error: {bad}: unknown TrainScriptArguments, RAPGRPOConfig or ModelConfig fields "
                   "max_prompt_length\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for flag in ("usage: rap-hf train", "--replacement_pool", "--num_generations", "--model_name_or_path",
                 "--config FILE.yaml", "--num-generations", "--no-gradient-checkpointing", "--use_peft [BOOL]",
                 "~20% slower"):  # transformers' help, written for argparse with %%, reads as it did
        assert flag in printed


def test_train_flags_both_spellings_and_bools():
    """The recipe fields as TRL's scripts spell them (--a_b), or as the other commands do (--a-b); a bool
    is --flag, --flag true|false or --no-flag."""
    tiny = CONFIGS / "tiny_cpu.yaml"
    script_args, args, model_args = _parse(tiny, "--num-generations", "2", "--dataset_split", "train",
                                           "--replacement-pool", "auto", "--reward_funcs", "rap_reward",
                                           "format_reward")
    assert (args.num_generations, script_args.dataset_split, script_args.replacement_pool) == (2, "train", "auto")
    assert script_args.reward_funcs == ["rap_reward", "format_reward"]
    assert args.activation_checkpointing is False and model_args.use_peft is False  # the recipe, then the default
    for flags, use_peft in ((["--use_peft"], True), (["--use-peft", "true"], True), (["--use_peft", "false"], False),
                            (["--use_peft", "--no-use-peft"], False)):
        assert _parse(tiny, *flags)[2].use_peft is use_peft, flags
    assert _parse(tiny, "--activation_checkpointing")[1].activation_checkpointing is True  # over the recipe's false
    paper = CONFIGS / "paper_qwen2_5_vl_3b.yaml"
    assert _parse(paper, "--no_activation_checkpointing")[1].activation_checkpointing is False
    # transformers' former name is read as the current one, so a recipe's current key never outweighs it.
    assert _parse(tiny, "--gradient_checkpointing")[1].activation_checkpointing is True
    assert _parse(paper, "--no-gradient-checkpointing")[1].activation_checkpointing is False
    assert _parse(paper, "--gradient_checkpointing=false")[1].activation_checkpointing is False
    script_args, _, _ = make_parser().parse_args_and_config(["--use_cpu", "true", f"--config={tiny}",
                                                             "--processor_kwargs", '{"size": {"longest_edge": 3136}}'])
    assert script_args.processor_kwargs == {"size": {"longest_edge": 3136}}


def test_train_usage_errors_are_short(capsys):
    for argv in (["--not_a_field", "1"], ["--num_generations", "many"], ["--lr_scheduler_type", "sideways"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.splitlines()
        # The usage line, not hundreds of flags; `rap-hf train --help` lists them.
        assert len(err) == 2 and err[0].startswith("usage: rap-hf train") and err[1].startswith("rap-hf train: error:")


def test_train_tiny_model_from_the_cpu_recipe(tiny_vlm_paths, world_dir, tmp_path, capsys):
    start, out = tiny_vlm_paths["qwen2_5_vl"], tmp_path / "out"
    code = main(["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model_name_or_path", str(start),
                 "--dataset", str(world_dir), "--dataset_split", "train", "--output_dir", str(out), *FAST,
                 "--reward_funcs", "test_cli_train.varied_reward",
                 "--processor_kwargs", '{"size": {"longest_edge": 3136, "shortest_edge": 784}}'])
    assert code == 0
    assert f"Checkpoint: saved the trained model and its processor to {out}" in capsys.readouterr().out
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    assert processor.image_processor.size["shortest_edge"] == 784  # --processor_kwargs reached the processor
    before, after = _weights(start), _weights(out)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_dataset_and_pool_errors_are_clear(tiny_vlm_paths, world_dir, tmp_path, capsys):
    common = ["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model_name_or_path",
              str(tiny_vlm_paths["qwen2_5_vl"]), "--output_dir", str(tmp_path / "o"), *FAST]
    assert main([*common, "--dataset", str(world_dir), "--dataset_split", "train", "--replacement_pool", "auto"]) == 1
    err = capsys.readouterr().err
    assert "--replacement_pool auto" in err and "rap-hf select --output" in err
    assert main([*common, "--dataset", str(world_dir)]) == 1  # two splits, none chosen
    assert "--dataset_split" in capsys.readouterr().err
    assert main(["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--dataset", str(world_dir)]) == 1
    assert "--model_name_or_path" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_train_on_a_select_output_with_the_auto_pool(tiny_vlm_paths, world, tmp_path, capsys):
    from datasets import Value
    from selection_helpers import scored_dataset

    m = 5
    # 6 visual rows (kept); 3 language-prior rows (dropped, 0 < difficulty < 1), one of which DRM keeps
    # in place of the trivial row; the trivial row (dropped, no signal). The pool: 2 language-prior rows.
    outcomes = [{"img": 4}] * 6 + [{"img": 3, "txt": 3}] * 3 + [{"img": 5}]
    rows = world["train"].select(range(len(outcomes)))
    scores = scored_dataset([{"rap_id": rid, **o} for rid, o in zip(rows["rap_id"], outcomes)], m=m)
    image, text = (sum(map(sum, scores[c])) for c in ("rap_image_correct", "rap_text_correct"))
    assert (image, text) == (6 * 4 + 3 * 3 + 5, 3 * 3)
    scored = concatenate_datasets([rows, scores.remove_columns("rap_id")], axis=1)
    scored = scored.add_column("rap_difficulty", [1 - sum(c) / m for c in scored["rap_image_correct"]],
                               feature=Value("float64"))
    scored = scored.add_column("rap_cde", [(sum(i) - sum(t)) / m for i, t in
                                           zip(scored["rap_image_correct"], scored["rap_text_correct"])],
                               feature=Value("float64"))
    scored.save_to_disk(str(tmp_path / "scored"))
    selected, out = tmp_path / "selected", tmp_path / "out"
    assert main(["select", "--input", str(tmp_path / "scored"), "--output", str(selected),
                 "--cde-threshold", "0.5"]) == 0
    assert "kept 7 of 10 rows" in capsys.readouterr().out

    assert main(["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model_name_or_path",
                 str(tiny_vlm_paths["qwen2_5_vl"]), "--dataset", str(selected), "--replacement_pool", "auto",
                 "--output_dir", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "on 7 rows" in printed and "replacement pool of 2 rows" in printed
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()


def test_train_a_lora_adapter_from_model_config_flags(tiny_vlm_paths, world_dir, tmp_path, capsys):
    pytest.importorskip("peft")
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "adapter"
    assert main(["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model_name_or_path",
                 str(tiny_vlm_paths["qwen2_5_vl"]), "--dataset", str(world_dir), "--dataset_split", "train",
                 "--output_dir", str(out), *FAST, "--use_peft", "true", "--lora_r", "4",
                 "--lora_target_modules", "q_proj", "v_proj"]) == 0
    assert "saved the trained LoRA adapter" in capsys.readouterr().out
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    # transformers' PEFT integration loads the adapter onto its base model.
    assert any("lora_A" in n for n, _ in AutoModelForImageTextToText.from_pretrained(out).named_parameters())


# --------------------------------------------------------------------------- the packaged recipes
def test_the_recipes_ship_with_the_package_and_configs_only_points_there():
    assert CONFIGS.parent.name == "rap_hf" and set(packaged_recipes()) == {p.stem for p in RECIPES}
    pyproject = (ROOT / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"recipes/*.yaml"' in package_data  # shipped in the wheel, like the card templates
    # No second copy to drift: configs/ holds a README that points at rap_hf/recipes/, and no recipe.
    assert not list((ROOT / "configs").glob("*.y*ml"))
    assert "rap_hf/recipes/" in (ROOT / "configs" / "README.md").read_text()


@pytest.mark.parametrize("ref", ["tiny_cpu", "tiny_cpu.yaml", "configs/tiny_cpu.yaml"])
def test_a_packaged_recipe_by_name_from_any_folder(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_recipe(ref) == str(CONFIGS / "tiny_cpu.yaml")
    _, args, _ = make_parser().parse_args_and_config(["--config", ref])
    assert (args.max_steps, args.use_cpu, args.num_generations) == (4, True, 4)
    _, args, model_args = make_parser().parse_args_and_config(["--config=paper_qwen2_5_vl_7b", "--use_cpu", "true"])
    assert model_args.model_name_or_path == "Qwen/Qwen2.5-VL-7B-Instruct" and args.num_train_epochs == 30


def test_a_recipe_file_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny_cpu.yaml").write_text("use_cpu: true\nmax_steps: 9\n")
    assert resolve_recipe("tiny_cpu.yaml") == "tiny_cpu.yaml"
    assert make_parser().parse_args_and_config(["--config", "tiny_cpu.yaml"])[1].max_steps == 9
    assert make_parser().parse_args_and_config(["--config", "tiny_cpu"])[1].max_steps == 4  # no file `tiny_cpu`


def test_an_unknown_recipe_is_one_line_that_lists_the_packaged_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    listed = "(packaged recipes: paper_qwen2_5_vl_3b, paper_qwen2_5_vl_7b, tiny_cpu; e.g. --config tiny_cpu)"
    for ref, fix in (("tiny_cp", "did you mean tiny_cpu? "), ("tiny-cpu.yaml", "did you mean tiny_cpu? "),
                     ("fast", "check the name "),
                     ("recipes/mine.yaml", f"the current folder ({tmp_path}) has no folder 'recipes'")):
        assert main(["train", "--config", ref]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"rap-hf train: error: no recipe file or packaged recipe named {ref}; {fix}"), err
        assert err.endswith(f" {listed}\n") and err.count("\n") == 1, err


def test_train_help_lists_the_packaged_recipes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "paper_qwen2_5_vl_3b, paper_qwen2_5_vl_7b, tiny_cpu" in printed and "--config tiny_cpu" in printed


def test_the_packaged_recipes_use_current_field_names(tmp_path):
    """Building each recipe's config warns of nothing deprecated (transformers' `gradient_checkpointing`
    is `activation_checkpointing` now), and neither does RAPGRPOConfig with TRL's defaults."""
    from rap_hf import RAPGRPOConfig

    parser = make_parser()
    for recipe in RECIPES:
        assert "gradient_checkpointing:" not in recipe.read_text(), recipe.name
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            warnings.simplefilter("error", DeprecationWarning)
            parser.parse_args_and_config(["--config", recipe.stem, "--use_cpu", "true"])
            defaults = RAPGRPOConfig(output_dir=str(tmp_path), use_cpu=True)
    assert defaults.activation_checkpointing is True and defaults.gradient_checkpointing is True  # TRL's default
    # The old name still works, with transformers' own warning.
    with pytest.warns(FutureWarning, match="activation_checkpointing"):
        old = RAPGRPOConfig(output_dir=str(tmp_path), use_cpu=True, gradient_checkpointing=False)
    assert old.activation_checkpointing is False


def test_current_argv_renames_and_resolves_only_flags():
    tiny = str(CONFIGS / "tiny_cpu.yaml")
    argv = ["--config", "tiny_cpu", "--gradient-checkpointing", "--no_gradient_checkpointing",
            "--gradient_checkpointing_kwargs", "{}", "--output_dir", "gradient_checkpointing", "--",
            "--gradient_checkpointing"]
    assert current_argv(argv) == ["--config", tiny, "--activation_checkpointing", "--no_activation_checkpointing",
                                  "--activation_checkpointing_kwargs", "{}", "--output_dir", "gradient_checkpointing",
                                  "--", "--gradient_checkpointing"]
    assert current_argv(["--config=tiny_cpu.yaml"]) == [f"--config={tiny}"]
    assert current_argv(["--config"]) == ["--config"]  # argparse says the value is missing
