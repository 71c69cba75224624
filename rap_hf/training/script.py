"""`rap-hf train`: GRPO on a RAP subset from a YAML recipe, in the style of TRL's scripts.

One `trl.TrlParser` reads three dataclasses (`TrainScriptArguments`, `RAPGRPOConfig`,
`trl.ModelConfig`) from `--config recipe.yaml`; any flag on the command line overrides the recipe.
The recipes ship with the package (`rap_hf/recipes/`): `--config tiny_cpu` names one from any folder
(`resolve_recipe`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import parse_mapping

PROG = "rap-hf train"
# The packaged recipes (package data): `--config NAME` finds `NAME.yaml` here when no such file exists.
RECIPES_FOLDER = Path(__file__).resolve().parent.parent / "recipes"
# Where the recipes lay in a checkout before they shipped with the package: `--config configs/NAME.yaml`
# (the commands older notes show) still names the packaged recipe.
FORMER_RECIPES_FOLDER = "configs"
# Training fields transformers renamed: the old flag names the current field, so a flag given with
# the old name is never silently outweighed by a recipe that sets the current one.
RENAMED_FIELDS = {"gradient_checkpointing": "activation_checkpointing",
                  "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}


@dataclass
class TrainScriptArguments:
    """What `rap-hf train` trains on: the rows, and the optional pool of replacement rows."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "Rows to train on: a folder written by `rap-hf select --output` (its dataset/ is used), "
                          "a save_to_disk folder, a .parquet/.json/.jsonl/.csv file, or a Hub id. Canonical RAP rows "
                          "or TRL rows (a conversational `prompt` column plus `images`)."},
    )
    dataset_split: str | None = field(
        default=None,
        metadata={"help": "Split of --dataset to train on; needed when it has several (a select output folder "
                          "has one)."},
    )
    replacement_pool: str | None = field(
        default=None,
        metadata={"help": "Rows that replace training rows whose rollouts were all right (or all wrong) in an epoch. "
                          "None trains on a fixed set, as the paper does. 'auto': the rows `rap-hf select` left out "
                          "that still give a signal (needs --dataset to be a select output folder). Otherwise a "
                          "path or Hub id of rows; a select output folder gives its left-out rows."},
    )
    reward_funcs: list[str] | None = field(
        default=None,
        metadata={"help": "Reward functions: rap_reward (default: 0.9 accuracy + 0.1 format), accuracy_reward, "
                          "format_reward, or dotted import paths (e.g. my_module.my_reward)."},
    )
    processor_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for AutoProcessor.from_pretrained, as a mapping in the recipe or JSON "
                          "on the command line. The image resolution is --min_pixels / --max_pixels (the paper's, as "
                          "scoring uses, by default); a `size`, `min_pixels` or `max_pixels` given here wins over "
                          "them, e.g. Qwen-VL: '{\"size\": {\"longest_edge\": 1003520, \"shortest_edge\": 3136}}' "
                          "(pixels; 28 x 28 pixels per image token)."},
    )

    def __post_init__(self) -> None:
        # A command-line flag arrives as JSON text.
        self.processor_kwargs = parse_mapping(self.processor_kwargs, "processor_kwargs")


def packaged_recipes() -> dict[str, Path]:
    """`{name: path}` of the recipes that ship with rap-hf (`rap_hf/recipes/NAME.yaml`), by name."""
    return {path.stem: path for path in sorted(RECIPES_FOLDER.glob("*.yaml"))}


def resolve_recipe(ref: str | os.PathLike) -> str:
    """The YAML file `--config REF` means: `REF` when it exists; else the packaged recipe it names,
    as `tiny_cpu`, `tiny_cpu.yaml` or `configs/tiny_cpu.yaml`, from any folder.

    Raises:
        FileNotFoundError: no such file and no such packaged recipe; one line that lists the
            packaged recipes (and the nearest name or path).
    """
    from ..references import closest_name, nearest_fix

    text = os.fspath(ref)
    path = os.path.expanduser(text)
    if os.path.exists(path):
        return path
    recipes = packaged_recipes()
    folder, name = os.path.split(path)
    stem = next((name[: -len(ending)] for ending in (".yaml", ".yml") if name.endswith(ending)), name)
    if stem in recipes and (not folder or os.path.basename(os.path.normpath(folder)) == FORMER_RECIPES_FOLDER):
        return str(recipes[stem])
    close = closest_name(stem, list(recipes))
    if close and not folder:
        fix = f"did you mean {close}?"
    elif folder:
        fix = nearest_fix(path)
    else:
        fix = "check the name"
    example = "tiny_cpu" if "tiny_cpu" in recipes else next(iter(recipes), "NAME")
    raise FileNotFoundError(f"no recipe file or packaged recipe named {text}; {fix} (packaged recipes: "
                            f"{', '.join(recipes)}; e.g. --config {example})")


def current_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with `--config REF` naming the recipe file (`resolve_recipe`) and renamed training flags
    in their current names (`--gradient_checkpointing` -> `--activation_checkpointing`: `RENAMED_FIELDS`);
    what follows a `--` is left as it is."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg == "--config" and i + 1 < len(args):
            out += [arg, resolve_recipe(args[i + 1])]
            i += 2
            continue
        if arg.startswith("--config="):
            out.append("--config=" + resolve_recipe(arg.split("=", 1)[1]))
        elif arg.startswith("--"):
            flag, sep, value = arg[2:].partition("=")
            key = flag.replace("-", "_")
            negative = key.startswith("no_") and key[3:] in RENAMED_FIELDS
            base = key[3:] if negative else key
            out.append(f"--{'no_' if negative else ''}{RENAMED_FIELDS[base]}{sep}{value}" if base in RENAMED_FIELDS
                       else arg)
        else:
            out.append(arg)
        i += 1
    return out


def make_parser():
    """The one parser of `rap-hf train` (also what the tests parse the recipes with).

    `rap_hf.cli_args.ConfigArgumentParser`, the parser of every rap-hf command: TRL's `TrlParser`
    (flags as TRL's scripts spell them, `--config` recipe), where a bool is also `--no-FLAG`; its
    `parse_args_and_config` first reads argv through `current_argv` (packaged recipes by name,
    renamed flags).
    """
    from trl import ModelConfig

    from ..cli_args import ConfigArgumentParser
    from .config import RAPGRPOConfig

    class TrainArgumentParser(ConfigArgumentParser):
        def parse_args_and_config(self, args: Sequence[str] | None = None) -> tuple[Any, ...]:
            return super().parse_args_and_config(current_argv(sys.argv[1:] if args is None else args))

    names = ", ".join(packaged_recipes())
    return TrainArgumentParser(
        (TrainScriptArguments, RAPGRPOConfig, ModelConfig), prog=PROG,
        description=f"GRPO on a RAP subset (RAPGRPOTrainer). Give a recipe with --config: a YAML file, or a recipe "
                    f"that ships with rap-hf, by name ({names}; e.g. --config tiny_cpu); flags override its values.")


def parse_args(argv: Sequence[str]):
    """argv (everything after `train`) -> (TrainScriptArguments, RAPGRPOConfig, ModelConfig)."""
    return make_parser().parse_args_and_config(list(argv))


def _load_one(ref: str, split: str | None, hint: str):
    from datasets import DatasetDict

    from ..data.io import load_rows

    rows = load_rows(ref, split)
    if isinstance(rows, DatasetDict):
        raise ValueError(f"{ref!r} has several splits ({', '.join(rows)}); {hint}")
    return rows


def load_training_rows(script_args: TrainScriptArguments):
    """(train rows, replacement pool or None), as `TrainScriptArguments` describes them."""
    from datasets import load_from_disk

    from ..selection import DECISIONS_FOLDER, REPORT_JSON, Selection, is_selection_folder, replacement_pool_rows
    from .data import selection_training_rows

    ref = script_args.dataset
    if not ref:
        raise ValueError("give the rows to train on: --dataset (or `dataset:` in the recipe)")
    if is_selection_folder(ref):
        train = selection_training_rows(ref)  # refuses a selection that kept nothing, before any model loads
    else:
        train = _load_one(ref, script_args.dataset_split, "choose one with --dataset_split")

    pool_ref = script_args.replacement_pool
    if pool_ref is None:
        return train, None
    if pool_ref == "auto":
        if not is_selection_folder(ref):
            raise ValueError(
                f"--replacement_pool auto takes the rows left out by `rap-hf select`, so --dataset must be a folder "
                f"written by `rap-hf select --output` (with dataset/ and decisions/ inside); {ref!r} is not. Pass the "
                "pool's rows as a path instead, or leave --replacement_pool unset to train on a fixed set."
            )
        pool_ref = ref
    if is_selection_folder(pool_ref):
        if os.path.exists(os.path.join(pool_ref, REPORT_JSON)):
            pool = Selection.load_from_disk(pool_ref).replacement_pool()  # with the selection's own ACE rule
        else:
            pool = replacement_pool_rows(load_from_disk(os.path.join(pool_ref, DECISIONS_FOLDER)))
    else:
        pool = _load_one(pool_ref, None, "a replacement pool must have one split (save that split on its own)")
    return train, pool


def resolve_reward_funcs(names: Sequence[str] | None) -> list | None:
    """Reward function names or dotted paths -> callables (None keeps the trainer's default)."""
    import importlib
    import sys

    from .. import rewards

    if not names:
        return None
    known = {"rap_reward": rewards.rap_reward, "accuracy_reward": rewards.accuracy_reward,
             "format_reward": rewards.format_reward}
    funcs = []
    for name in names:
        if name in known:
            funcs.append(known[name])
        elif "." in name:
            module_name, attribute = name.rsplit(".", 1)
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # as TRL's script: modules next to the recipe import
            funcs.append(getattr(importlib.import_module(module_name), attribute))
        else:
            raise ValueError(f"unknown reward function {name!r}: use {', '.join(known)} or a dotted import path")
    return funcs


def train(script_args: TrainScriptArguments, training_args: Any, model_args: Any) -> str:
    """Load the model and rows, run `RAPGRPOTrainer`, save model and processor; return the folder."""
    from trl import get_peft_config, get_quantization_config

    from ..hub import save_training_record
    from ..modeling import load_image_text_model, load_processor
    from ..references import check_reference
    from .trainer import RAPGRPOTrainer

    name = model_args.model_name_or_path
    if not name:
        raise ValueError("give the model to train: --model_name_or_path (or `model_name_or_path:` in the recipe)")
    name = check_reference(name, "model")  # a mistyped path fails now, before the rows are read or the Hub asked
    train_rows, pool = load_training_rows(script_args)
    reward_funcs = resolve_reward_funcs(script_args.reward_funcs)

    load_kwargs: dict[str, Any] = {"revision": model_args.model_revision, "dtype": model_args.dtype,
                                   "attn_implementation": model_args.attn_implementation,
                                   "trust_remote_code": training_args.trust_remote_code}
    quantization_config = get_quantization_config(model_args)
    if quantization_config is not None:  # --load_in_4bit / --load_in_8bit (bitsandbytes), usually with --use_peft
        from accelerate import PartialState

        # Each process holds its own whole quantized copy on its own device.
        load_kwargs.update(quantization_config=quantization_config,
                           device_map={"": PartialState().local_process_index})
    load_kwargs.update(training_args.model_init_kwargs or {})  # the recipe's own loading options win
    model = load_image_text_model(name, **load_kwargs)
    # Left padding and truncation, as GRPOTrainer loads a processor itself: prompts are batched for generation.
    processor_kwargs = {"revision": model_args.model_revision, "padding_side": "left", "truncation_side": "left",
                        "trust_remote_code": training_args.trust_remote_code, **(script_args.processor_kwargs or {})}
    # At the resolution rows were scored at (RAPGRPOConfig's min_pixels / max_pixels, the paper's by default).
    processor = load_processor(name, min_pixels=training_args.min_pixels, max_pixels=training_args.max_pixels,
                               processor_kwargs=processor_kwargs)

    trainer = RAPGRPOTrainer(model, training_args, train_dataset=train_rows, reward_funcs=reward_funcs,
                             replacement_pool=pool, processing_class=processor, peft_config=get_peft_config(model_args))
    pool_note = f", replacement pool of {len(pool)} rows" if pool is not None else ""
    trainer.accelerator.print(f"Training {name} on {len(train_rows)} rows from {script_args.dataset}{pool_note}")
    resume = training_args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() == "true":  # the flag is text: "true" = the last checkpoint
        resume = True
    trainer.train(resume_from_checkpoint=resume)

    output_dir = training_args.output_dir
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        processor.save_pretrained(output_dir)
    # What the card needs (rewards, settings, compute, base model), for `rap-hf push checkpoint --folder`.
    save_training_record(trainer, output_dir)
    what = "LoRA adapter" if model_args.use_peft else "model"
    trainer.accelerator.print(f"Checkpoint: saved the trained {what} and its processor to {output_dir} "
                              "(AutoModelForImageTextToText / AutoProcessor .from_pretrained)")
    if hasattr(trainer, "end"):  # transformers >= 5.18: finish trackers, leave the process group
        trainer.end()
    return output_dir
