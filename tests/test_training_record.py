"""The training record a model card reports: built from a trainer, read from a folder, saved and loaded.

The folders without a record are laid out as `rap-hf train` leaves them (a TRL `GRPOConfig` in
`training_args.bin`, a transformers `TrainerState`); the trainer is a real `RAPGRPOTrainer` after
two steps on the tiny model.
"""

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerState
from trl import GRPOConfig

from rap_hf import __version__
from rap_hf.hub import TRAINING_RECORD, TrainingRecord, save_training_record

HISTORY = [{"step": 1, "loss": 0.1, "rewards/accuracy/mean": 0.2, "rewards/format/mean": 0.0},
           {"step": 2, "loss": 0.1, "rewards/accuracy/mean": 0.3, "rewards/format/mean": 0.1},
           {"step": 2, "train_runtime": 5400.0}]


def _args(tmp_path: Path) -> GRPOConfig:
    return GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, activation_checkpointing=False,
                      num_generations=2, per_device_train_batch_size=2, learning_rate=0.05, beta=0.01, report_to=[],
                      lr_scheduler_type="constant", reward_weights=[1.0, 0.5])


def _run_folder(folder: Path, args: GRPOConfig, base: str) -> Path:
    """A folder as the trainer leaves it, without a training record: settings in `training_args.bin`,
    state and replacement in the last `checkpoint-N/`."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl", "_name_or_path": base}))
    torch.save(args, folder / "training_args.bin")  # as Trainer.save_model writes it
    checkpoint = folder / "checkpoint-4"
    checkpoint.mkdir()
    (folder / "checkpoint-2").mkdir()
    TrainerState(global_step=4, epoch=2.0, log_history=HISTORY).save_to_json(str(checkpoint / "trainer_state.json"))
    (checkpoint / "rap_replacement.json").write_text(json.dumps({
        "epoch": 2, "slots": [0, 1, 2, 3, 4, 7], "pool_used": 1, "replaced": 1, "history": [], "outcomes": {},
        "num_active": 6, "pool": [6, 7, 8]}))
    return folder


def test_a_record_round_trips_through_its_file(tmp_path):
    record = TrainingRecord(
        rap_hf_version="1.2.3", settings={"beta": "0.01", "lr_scheduler_type": "constant"},
        rewards="1 × `accuracy`", compute={"processes": 2, "device": "CPU", "training time": "0.01 h (36 s)"},
        steps=4, epochs=2.0, replacement={"replaced": 1, "pool_left": 2}, training_rows=6,
        base_model="Qwen/Qwen2.5-VL-3B-Instruct", base_model_name="Qwen/Qwen2.5-VL-3B-Instruct")
    path = record.save(tmp_path / "run")
    assert path == tmp_path / "run" / TRAINING_RECORD
    assert list(json.loads(path.read_text())) == [
        "rap_hf_version", "settings", "rewards", "compute", "steps", "epochs", "replacement", "training_rows",
        "base_model", "base_model_name"]
    assert TrainingRecord.load(tmp_path / "run") == record
    assert TrainingRecord.from_folder(tmp_path / "run") == record  # the record wins over anything else there
    assert TrainingRecord.load(tmp_path / "nothing") is None
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / TRAINING_RECORD).write_text(json.dumps({"steps": 3, "unknown": 1}))
    assert TrainingRecord.load(tmp_path / "partial") == TrainingRecord(steps=3)


def test_a_folder_without_a_record_is_read_from_what_the_trainer_left(tmp_path):
    base = str(tmp_path / "models" / "my-base")  # a local base: named, never located
    record = TrainingRecord.from_folder(_run_folder(tmp_path / "trained", _args(tmp_path), base))
    assert record.rewards == "1 × `accuracy` + 0.5 × `format`"
    assert (record.steps, record.epochs, record.training_rows) == (4, 2.0, 6)
    assert record.replacement == {"replaced": 1, "pool_left": 2}
    assert record.compute == {"device": "CPU", "precision": "float32", "training time": "1.50 h (5400 s)"}
    assert record.settings["lr_scheduler_type"] == "constant" and record.settings["learning_rate"] == "0.05"
    assert record.settings["num_generations"] == "2" and "replace_solved" not in record.settings  # not a GRPOConfig's
    assert (record.base_model, record.base_model_name) == (None, "my-base")
    assert record.rap_hf_version is None  # the run did not record it

    empty = tmp_path / "bare"
    empty.mkdir()
    assert TrainingRecord.from_folder(empty) == TrainingRecord()  # nothing recorded: the card says so
    assert TrainingRecord().rewards == "not recorded"


@pytest.fixture(scope="module")
def trained(tiny_vlm_paths, world, tmp_path_factory):
    """A real `RAPGRPOTrainer` after two GRPO steps on a selection with a replacement pool, its model
    and state saved as `rap-hf train` leaves them (a checkpoint at the last step), and no record."""
    from selection_helpers import hand_scored

    from rap_hf import select
    from rap_hf.training import RAPGRPOConfig, RAPGRPOTrainer

    out = tmp_path_factory.mktemp("trained") / "out"
    selection = select(hand_scored(world["train"], [5, 4, 3, 1, 0, 2], [0, 0, 3, 0, 0, 2]))
    args = RAPGRPOConfig(output_dir=str(out), use_cpu=True, bf16=False, activation_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=2,
                         report_to=[], logging_steps=1, save_strategy="steps", save_steps=2, learning_rate=0.05, beta=0.01,
                         min_pixels=None, max_pixels=None, replace_solved=True)
    trainer = RAPGRPOTrainer(str(tiny_vlm_paths["qwen2_5_vl"]), args, train_dataset=selection)
    trainer.train()
    trainer.save_model(str(out))
    return trainer, out


@pytest.mark.slow
def test_the_trainer_and_its_folder_tell_the_same_run(trained, tmp_path):
    trainer, out = trained
    assert save_training_record(trainer, tmp_path / "saved") == tmp_path / "saved" / TRAINING_RECORD
    saved = TrainingRecord.load(tmp_path / "saved")
    assert saved == TrainingRecord.from_trainer(trainer) and saved.rap_hf_version == __version__
    assert saved.steps == 2 and saved.rewards == "1 × `rap_reward`"
    assert saved.compute["processes"] == 1 and saved.compute["device"] == "CPU"  # use_cpu

    assert "training time" in saved.compute
    # No record there: what the trainer left (its arguments, the last checkpoint's state and replacement).
    # The rows trained on and a local base model's name are not in those files: the record keeps them.
    read = TrainingRecord.from_folder(out)
    for name in ("settings", "rewards", "steps", "epochs", "replacement"):
        assert getattr(read, name) == getattr(saved, name), name
    assert (saved.training_rows, saved.base_model_name) == (16, "qwen2_5_vl")
    assert (read.training_rows, read.base_model_name) == (None, None)
    assert set(read.card_fields()) == {"settings", "rewards", "compute", "steps", "epochs", "replacement",
                                       "training_rows"}


@pytest.mark.slow
def test_only_the_main_process_writes_the_record(trained, tmp_path, monkeypatch):
    trainer, _ = trained
    monkeypatch.setattr(trainer, "is_world_process_zero", lambda: False)  # as on every other rank
    assert save_training_record(trainer, tmp_path / "saved") is None
    assert not (tmp_path / "saved").exists()
