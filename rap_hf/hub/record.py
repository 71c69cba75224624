"""The training record: what a model card reports about the run that trained the model.

One `TrainingRecord` serves both ways of publishing a model. `TrainingRecord.from_trainer` reads a
trainer after training; `TrainingRecord.from_folder` reads a saved folder: the `rap_training.json`
that `save_training_record` wrote there (`TrainingRecord.save` / `load`), else what the trainer
left (its arguments, state and replacement files). The card renders the record's fields, so a new
card fact is one new field here (and its line in the template).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, TypedDict

from .. import __version__
from .cards import describe_model, shown
from .pickled import read_pickled

# What a run records next to the model it trained (`save_training_record`; `push_checkpoint` reads it).
TRAINING_RECORD = "rap_training.json"
# The GRPO and RAP settings a model card lists (those the run's arguments have).
TRAINING_SETTINGS = ("num_generations", "temperature", "top_p", "learning_rate", "lr_scheduler_type", "weight_decay",
                     "beta", "epsilon", "epsilon_high", "loss_type", "scale_rewards", "max_completion_length",
                     "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "steps_per_generation", "num_iterations", "bf16", "seed", "replace_solved", "replace_failed",
                     "replacement_reward")
# Fields the card takes from elsewhere: the base model is resolved with what the caller gives, and
# the card names the rap-hf version that publishes it.
_NOT_CARD_FIELDS = ("rap_hf_version", "base_model", "base_model_name")


class Replacement(TypedDict):
    """Online replacement in a run: rows swapped out, and pool rows never used."""

    replaced: int
    pool_left: int


def shown_settings(args: Mapping[str, Any]) -> dict[str, str]:
    """The card's GRPO / RAP settings table: the `TRAINING_SETTINGS` that `args` has, as shown."""
    return {name: shown(args[name]) for name in TRAINING_SETTINGS if name in args}


def reward_line(names: Iterable[str], weights: list[float] | None = None) -> str:
    """The reward as the card writes it, e.g. "1 × `rap_reward` + 0.5 × `format_reward`" (weights
    default to 1, as in TRL)."""
    names = list(names)
    weights = weights or [1.0] * len(names)
    return " + ".join(f"{w:g} × `{n}`" for w, n in zip(weights, names))


def with_training_time(compute: dict[str, Any], log_history: list[dict]) -> dict[str, Any]:
    """`compute` with its "training time" row, when the trainer logged the run's `train_runtime`."""
    runtime = next((log["train_runtime"] for log in reversed(log_history) if "train_runtime" in log), None)
    if runtime is not None:
        compute["training time"] = f"{runtime / 3600:.2f} h ({runtime:.0f} s)"
    return compute


@dataclass
class TrainingRecord:
    """What a model card says about the run that trained the model.

    The base model is kept as its Hub id (`base_model`) or, for a local model, its name
    (`base_model_name`): never as a path. `save` writes the fields, in this order, as
    `rap_training.json`.
    """

    rap_hf_version: str | None = None  # the rap-hf that trained; None when the run did not record it
    settings: dict[str, str] | None = None  # TRAINING_SETTINGS as the card shows them
    rewards: str = "not recorded"  # reward_line
    compute: dict[str, Any] | None = None  # the Compute table: processes, device, precision, training time
    steps: int | None = None
    epochs: float | None = None
    replacement: Replacement | None = None
    training_rows: int | None = None
    base_model: str | None = None
    base_model_name: str | None = None

    @classmethod
    def from_trainer(cls, trainer) -> TrainingRecord:
        """The record of a `RAPGRPOTrainer` (or TRL `GRPOTrainer`) after training."""
        import torch

        args, state = trainer.args, trainer.state
        on_gpu = torch.cuda.is_available() and not getattr(args, "use_cpu", False)
        compute = {"processes": trainer.accelerator.num_processes,
                   "device": torch.cuda.get_device_name(0) if on_gpu else "CPU"}
        sampler = getattr(trainer, "replacement_sampler", None)
        num_active = getattr(trainer, "num_active_rows", None)  # None: a plain GRPOTrainer, or no replacement pool
        base_model, base_model_name = describe_model(trainer.model.config._name_or_path)
        return cls(
            rap_hf_version=__version__,
            settings=shown_settings({name: getattr(args, name) for name in TRAINING_SETTINGS if hasattr(args, name)}),
            rewards=reward_line(trainer.reward_func_names, getattr(args, "reward_weights", None)),
            compute=with_training_time(compute, state.log_history),
            steps=state.global_step, epochs=round(state.epoch or 0, 2),
            replacement=(Replacement(replaced=sampler.replaced, pool_left=sampler.pool_left)
                         if sampler is not None else None),
            training_rows=num_active if num_active is not None else len(trainer.train_dataset),
            base_model=base_model, base_model_name=base_model_name,
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> TrainingRecord:
        """The record of the run that saved `folder`: its `rap_training.json` when the run wrote one,
        else what the trainer left there (`from_run_files`)."""
        record = cls.load(folder)
        return record if record is not None else cls.from_run_files(folder)

    @classmethod
    def from_run_files(cls, folder: str | Path) -> TrainingRecord:
        """What the trainer left in `folder`: the settings in `training_args.bin` (read as data), steps,
        rewards and runtime in `trainer_state.json` (the folder's own, else the last `checkpoint-N`'s),
        training rows and swaps in that checkpoint's `rap_replacement.json`, and the base model from an
        adapter's config, TRL's draft card or config.json. What is not there stays unrecorded."""
        folder = Path(folder)
        record = cls()
        checkpoint = _last_checkpoint(folder)
        where = [folder] + ([checkpoint] if checkpoint is not None else [])
        state = next((s for s in (_read_json(p / "trainer_state.json") for p in where) if s is not None), None)
        args = next((a for a in (read_pickled(p / "training_args.bin") for p in where) if a is not None), None)
        history = (state or {}).get("log_history") or []
        if state is not None:
            record.steps, record.epochs = state.get("global_step"), round(state.get("epoch") or 0, 2)
        names = list(dict.fromkeys(m[1] for log in history for key in log
                                   if (m := re.fullmatch(r"rewards/(.+)/mean", key))))
        if names:
            record.rewards = reward_line(names, (args or {}).get("reward_weights"))
        compute: dict[str, Any] = {}
        if args is not None:
            record.settings = shown_settings(args)
            if args.get("use_cpu"):
                compute["device"] = "CPU"
            compute["precision"] = "bf16" if args.get("bf16") else ("fp16" if args.get("fp16") else "float32")
        record.compute = with_training_time(compute, history) or None
        replacement = _read_json(checkpoint / "rap_replacement.json") if checkpoint is not None else None
        if replacement is not None:
            record.training_rows = replacement.get("num_active")
            pool = replacement.get("pool") or []
            record.replacement = Replacement(replaced=replacement.get("replaced", 0),
                                             pool_left=len(pool) - int(replacement.get("pool_used") or 0))
        record.base_model, record.base_model_name = describe_model(_recorded_base_model(folder))
        return record

    @classmethod
    def load(cls, folder: str | Path) -> TrainingRecord | None:
        """The record `save` wrote to `folder` (fields it lacks keep their defaults); None when there is
        none, or it is not a JSON object."""
        data = _read_json(Path(folder) / TRAINING_RECORD)
        if data is None:
            return None
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def save(self, folder: str | Path) -> Path:
        """Write the record to `folder/rap_training.json`; return that path."""
        path = Path(folder) / TRAINING_RECORD
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path

    def card_fields(self) -> dict[str, Any]:
        """The model card template's values for the run (every field but the base model and version)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_CARD_FIELDS}


def save_training_record(trainer, folder: str | Path) -> Path | None:
    """Write what a finished run's card reports (settings, rewards, compute, steps, rows, replacement,
    base model) to `folder/rap_training.json`, next to the model saved there, so that
    `push_checkpoint(folder)` (`rap-hf push checkpoint --folder`) describes the run as fully as
    `push_checkpoint(trainer)`. On the main process only (None elsewhere). The base model is kept
    as its Hub id or its name, never as a path."""
    if not trainer.is_world_process_zero():
        return None
    return TrainingRecord.from_trainer(trainer).save(folder)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _last_checkpoint(folder: Path) -> Path | None:
    """The `checkpoint-N` subfolder with the largest N (the trainer saves one at the end of a run with a
    save strategy), or None."""
    found = [(int(p.name.split("-")[1]), p) for p in folder.glob("checkpoint-*")
             if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return max(found)[1] if found else None


def _recorded_base_model(folder: Path) -> str | None:
    """The base model a saved folder names: an adapter's base, the `base_model` of TRL's draft card (a
    Hub id), else config.json's `_name_or_path` (which may be a path: `describe_model` names it)."""
    base = (_read_json(folder / "adapter_config.json") or {}).get("base_model_name_or_path")
    if not base and (folder / "README.md").is_file():
        from huggingface_hub import metadata_load

        try:
            drafted = (metadata_load(folder / "README.md") or {}).get("base_model")
        except (OSError, ValueError):
            drafted = None
        base = drafted[0] if isinstance(drafted, list) and drafted else drafted
    if not base:
        config = _read_json(folder / "config.json") or {}
        base = config.get("_name_or_path") or config.get("name_or_path")
    return base
