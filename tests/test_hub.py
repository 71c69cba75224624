"""Publishing: one repo and one commit per push, cards that parse, trees that load back.

The network is the only thing faked: `RecordingHub` stands in for `HfApi` and keeps what each call
received, and the uploaded files are read back with the real `load_dataset` / card / model loaders.
"""

import io
import json
import logging
import tempfile
from pathlib import Path

import pytest
import torch
from datasets import load_dataset
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, DatasetCard, ModelCard
from PIL import Image
from selection_helpers import hand_scored
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf import RAPConfig, RAPGRPOConfig, RAPGRPOTrainer, RAPScorer, select, to_rap_format, to_trl
from rap_hf.hub import subsets as hub_module  # where SHARD_BYTES is read
from rap_hf.hub import push_checkpoint, push_space, push_subset

TOKEN = "hf_secretTOKENvalue123"


class RecordingHub:
    """What `HfApi.create_repo` / `list_repo_files` / `create_commit` were asked to do, with the
    committed bytes, and each repository's files as the commits leave them."""

    def __init__(self, fail_commit: bool = False):
        self.repos, self.commits, self.fail_commit = [], [], fail_commit
        self.contents: dict[str, dict[str, bytes]] = {}

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False, token=None, **kwargs):
        self.repos.append({"repo_id": repo_id, "repo_type": repo_type, "private": private, "exist_ok": exist_ok,
                           "token": token, **kwargs})
        self.contents.setdefault(repo_id, {".gitattributes": b"*.parquet filter=lfs\n"})
        return f"https://huggingface.co/{repo_id}"

    def list_repo_files(self, repo_id, *, repo_type=None, token=None, **kwargs):
        return sorted(self.contents[repo_id])

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, token=None, **kwargs):
        if self.fail_commit:
            raise ConnectionError("connection reset by peer")
        added = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations
                 if isinstance(op, CommitOperationAdd)}
        deleted = [op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)]
        for name in deleted:
            del self.contents[repo_id][name]  # the Hub refuses to delete a file that is not there
        self.contents[repo_id].update(added)
        self.commits.append({"repo_id": repo_id, "repo_type": repo_type, "message": commit_message,
                             "token": token, "files": added, "deleted": deleted})
        return f"https://huggingface.co/{repo_id}/commit/{len(self.commits)}"

    def write(self, files: dict[str, bytes], folder: Path) -> Path:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder


@pytest.fixture(scope="module")
def selection(world):
    scored = hand_scored(world["train"], [5, 4, 3, 1, 0, 2], [0, 0, 3, 0, 0, 2])
    scored.info.license = "cc-by-4.0"  # as if the source's card declared it
    return select(scored)


def _pixels(image):
    if isinstance(image, dict):
        image = Image.open(io.BytesIO(image["bytes"]))
    return list(image.convert("RGB").get_flattened_data())


def _no_token_anywhere(caplog, capsys, files: dict[str, bytes]):
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text and TOKEN not in captured.out and TOKEN not in captured.err
    assert not any(TOKEN.encode() in data for data in files.values())


def test_push_subset_is_one_commit_that_loads_back(selection, tmp_path, caplog, capsys):
    hub = RecordingHub()
    scorer = RAPScorer("Qwen/Qwen2.5-VL-7B-Instruct", RAPConfig(num_rollouts=5))
    with caplog.at_level(logging.DEBUG):
        push_subset(selection, "me/world-rap", api=hub, token=TOKEN, private=True,
                    source_dataset="rap-hf/visual-world", source_revision="abc123", scorer=scorer)

    assert [(r["repo_id"], r["repo_type"], r["private"], r["exist_ok"]) for r in hub.repos] == [
        ("me/world-rap", "dataset", True, True)]
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert set(commit["files"]) == {"README.md", "data/train-00000-of-00001.parquet", "decisions/decisions.parquet",
                                    "plots/score_distributions.png", "rap_report.json"}
    assert commit["message"] == "Add RAP subset (kept 16 of 48 rows)" and commit["token"] == TOKEN
    _no_token_anywhere(caplog, capsys, commit["files"])

    repo = hub.write(commit["files"], tmp_path / "repo")
    rows = load_dataset(str(repo), split="train")
    assert rows["rap_id"] == selection.dataset["rap_id"] and all(rows["rap_keep"])
    assert len(load_dataset(str(repo), "decisions", split="train")) == 48

    card = DatasetCard.load(repo / "README.md")
    assert {"rap", "data-selection", "vision-language"} <= set(card.data.tags)
    assert card.data.license == "cc-by-4.0" and card.data.source_datasets == ["rap-hf/visual-world"]
    assert card.data.size_categories == ["n<1K"] and "image-text-to-text" in card.data.task_categories
    text = card.text
    assert "16 of 48 rows (33.3 %)" in text and "revision `abc123`" in text
    for reason, count in selection.report.counts.items():
        assert f"| {reason} | {count} |" in text
    assert "`Qwen/Qwen2.5-VL-7B-Instruct`" in text and "| `num_rollouts` | `5` |" in text
    assert "| `cde_threshold` | `0.5` |" in text and "arXiv 2506.04755" in text
    assert "![plots/score_distributions.png](plots/score_distributions.png)" in text
    report = json.loads(commit["files"]["rap_report.json"])
    assert report["counts"] == selection.report.counts and report["scoring_config"]["num_rollouts"] == 5


def test_local_dir_round_trips_the_kept_rows_with_their_images(selection, world, tmp_path):
    folder = push_subset(selection, "me/world-rap", local_dir=tmp_path / "tree")
    rows = load_dataset(str(folder), split="train")
    assert rows["rap_id"] == selection.dataset["rap_id"]
    assert rows["question"] == selection.dataset["question"] and rows["answer"] == selection.dataset["answer"]
    by_id = {r["rap_id"]: r for r in world["train"]}
    for row in rows:
        source = by_id[row["rap_id"]]["images"]
        assert [_pixels(ref) for ref in row["images"]] == [_pixels(ref) for ref in source]
    with pytest.raises(FileExistsError, match="not empty"):
        push_subset(selection, "me/world-rap", local_dir=folder)
    # The published rows are canonical rows again, and the exporters (so the trainer) read them.
    assert to_rap_format(rows)["rap_id"] == rows["rap_id"]
    assert to_trl(rows)[0]["images"][0].size == (84, 84)


def test_an_interrupted_push_commits_nothing_and_leaves_nothing(selection, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the push builds its tree
    hub = RecordingHub(fail_commit=True)
    with pytest.raises(ConnectionError):
        push_subset(selection, "me/world-rap", api=hub)
    assert len(hub.repos) == 1 and hub.commits == []
    with pytest.raises(FileNotFoundError, match="not found"):
        push_subset(selection, "me/world-rap", api=hub, template=tmp_path / "no-such-card.md")
    assert list(scratch.iterdir()) == []  # no half-built tree left behind


def test_a_second_push_replaces_the_first(selection, world, tmp_path, monkeypatch):
    hub = RecordingHub()
    monkeypatch.setattr(hub_module, "SHARD_BYTES", 4096)  # many small shards the first time
    push_subset(selection, "me/world-rap", api=hub)
    first = [f for f in hub.contents["me/world-rap"] if f.startswith("data/")]
    assert len(first) > 1
    monkeypatch.setattr(hub_module, "SHARD_BYTES", 500 * 2**20)
    push_subset(selection, "me/world-rap", api=hub)
    assert len(hub.commits) == 2 and sorted(hub.commits[1]["deleted"]) == sorted(first)
    repo = hub.write(hub.contents["me/world-rap"], tmp_path / "repo")
    assert load_dataset(str(repo), split="train")["rap_id"] == selection.dataset["rap_id"]  # no row twice


@pytest.mark.slow
def test_push_checkpoint_from_a_trainer(tiny_vlm_paths, selection, tmp_path, caplog, capsys):
    model_dir = tiny_vlm_paths["qwen2_5_vl"]
    args = RAPGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, activation_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=2,
                         report_to=[], save_strategy="no", learning_rate=0.05, beta=0.01, min_pixels=None,
                         max_pixels=None)
    trainer = RAPGRPOTrainer(str(model_dir), args, train_dataset=selection, replacement_pool=selection)
    trainer.train()
    summary = {"accuracy": 0.25, "eval_results": [{
        "task_type": "visual-question-answering", "dataset_type": "rap-hf/visual-world", "dataset_name": "Visual world",
        "dataset_split": "test", "metric_type": "accuracy", "metric_value": 0.25}]}
    hub = RecordingHub()
    with caplog.at_level(logging.DEBUG):
        push_checkpoint(trainer, "me/tiny-rap-grpo", api=hub, token=TOKEN, eval_results=summary,
                        base_model="Qwen/Qwen2.5-VL-3B-Instruct", training_dataset="me/world-rap", license="apache-2.0")

    assert [(r["repo_id"], r["repo_type"]) for r in hub.repos] == [("me/tiny-rap-grpo", "model")]
    assert len(hub.commits) == 1
    files = hub.commits[0]["files"]
    assert {"README.md", "config.json", "model.safetensors", "processor_config.json"} <= set(files)
    assert "training_args.bin" not in files
    _no_token_anywhere(caplog, capsys, files)
    repo = hub.write(hub.commits[0]["files"], tmp_path / "repo")
    reloaded = AutoModelForImageTextToText.from_pretrained(repo)
    AutoProcessor.from_pretrained(repo)
    trained = dict(trainer.model.named_parameters())
    assert all(torch.equal(p, trained[n]) for n, p in reloaded.named_parameters())

    card = ModelCard.load(repo / "README.md")
    assert card.data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct" and card.data.datasets == ["me/world-rap"]
    assert {"rap", "grpo", "trl", "vision-language"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "image-text-to-text" and card.data.license == "apache-2.0"
    result = card.data.eval_results[0]
    assert (result.metric_type, result.metric_value, result.dataset_split) == ("accuracy", 0.25, "test")
    text = card.text
    assert "Optimizer steps: 2" in text and "1 × `rap_reward`" in text and "| `beta` | `0.01` |" in text
    assert "| `num_generations` | `2` |" in text and "| `lr_scheduler_type` | `linear` |" in text and "| Visual world | test | accuracy | 0.2500 |" in text
    assert "swapped" in text and "| processes | 1 |" in text
    assert str(model_dir) not in text  # local paths stay out of public cards


def test_push_checkpoint_from_a_folder_leaves_training_state_out(tiny_vlm_paths, tmp_path):
    folder = tmp_path / "trained"  # as rap-hf train leaves it: the model, plus checkpoints and logs
    AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths["llava"]).save_pretrained(folder)
    AutoProcessor.from_pretrained(tiny_vlm_paths["llava"]).save_pretrained(folder)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "rap_replacement.json"):
        (folder / name).write_bytes(b"state")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 4, "epoch": 2.0,
                                                           "best_model_checkpoint": str(folder)}))
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "model.safetensors").write_bytes(b"weights")
    (folder / "runs").mkdir()
    (folder / "runs" / "events.out").write_bytes(b"log")
    hub = RecordingHub()
    push_checkpoint(folder, "me/tiny-llava", api=hub, license="Llama 2 Community License")
    files = set(hub.commits[0]["files"])
    assert "model.safetensors" in files and "README.md" in files and "config.json" in files
    assert not files & {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "rap_replacement.json",
                        "trainer_state.json"}
    assert not any(name.startswith(("checkpoint-", "runs/")) for name in files)
    card = ModelCard(hub.commits[0]["files"]["README.md"].decode())
    assert "Optimizer steps: 4 (2.0 epochs)" in card.text and card.data.base_model is None
    assert str(folder) not in card.text
    assert (card.data.license, card.data.license_name) == ("other", "llama-2-community-license")
    with pytest.raises(FileNotFoundError, match="holds no model"):
        push_checkpoint(tmp_path / "checkpoint-404", "me/nothing", api=hub)


def test_push_checkpoint_of_a_lora_adapter(tiny_vlm_paths, tmp_path):
    from peft import LoraConfig, get_peft_model

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths["qwen2_5_vl"])
    adapter = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    adapter.save_pretrained(tmp_path / "adapter")  # its config names a local base: not a Hub id
    hub = RecordingHub()
    with pytest.raises(ValueError, match="pass base_model"):
        push_checkpoint(tmp_path / "adapter", "me/lora", api=hub)
    push_checkpoint(tmp_path / "adapter", "me/lora", api=hub, base_model="Qwen/Qwen2.5-VL-3B-Instruct")
    card = ModelCard(hub.commits[0]["files"]["README.md"].decode())
    assert card.data.library_name == "peft" and card.data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert "PeftModel.from_pretrained" in card.text and "adapter_model.safetensors" in hub.commits[0]["files"]


def test_push_space_uploads_the_space_folder(tmp_path):
    space = tmp_path / "space"
    space.mkdir()
    (space / "app.py").write_text("import gradio as gr\n")
    (space / "README.md").write_text("---\ntitle: RAP\nsdk: gradio\napp_file: app.py\n---\n")
    (space / "requirements.txt").write_text("rap-hf\n")
    (space / "__pycache__").mkdir()
    (space / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    hub = RecordingHub()
    push_space("me/rap-space", space_dir=space, api=hub)
    assert hub.repos == [{"repo_id": "me/rap-space", "repo_type": "space", "private": None, "exist_ok": True,
                          "token": None, "space_sdk": "gradio"}]
    files = set(hub.commits[0]["files"])
    assert {"app.py", "README.md", "requirements.txt", "rap_hf/__init__.py", "rap_hf/demo.py",
            "rap_hf/model_cards/model_card.md"} <= files
    assert not any(name.endswith(".pyc") or "__pycache__" in name for name in files)
    assert {name for name in files if not name.startswith("rap_hf/")} == {"app.py", "README.md", "requirements.txt"}
    push_space("me/rap-space", space_dir=space, api=hub, include_package=False)
    assert set(hub.commits[1]["files"]) == {"app.py", "README.md", "requirements.txt"}
    (space / "app.py").unlink()
    with pytest.raises(FileNotFoundError, match="missing app.py"):
        push_space("me/rap-space", space_dir=space, api=hub)


def test_push_commands_write_the_trees(selection, tiny_vlm_paths, tmp_path, capsys):
    from rap_hf.cli import main

    selection.save_to_disk(tmp_path / "selected")
    tree = tmp_path / "subset-tree"
    assert main(["push", "subset", "--selection", str(tmp_path / "selected"), "--repo-id", "me/world-rap",
                 "--local-dir", str(tree), "--source-dataset", "rap-hf/visual-world",
                 "--scorer-model", "Qwen/Qwen2.5-VL-7B-Instruct"]) == 0
    assert load_dataset(str(tree), split="train")["rap_id"] == selection.dataset["rap_id"]
    assert "`Qwen/Qwen2.5-VL-7B-Instruct`" in DatasetCard.load(tree / "README.md").text

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"eval_results": {
        "task_type": "visual-question-answering", "dataset_type": "rap-hf/visual-world",
        "dataset_name": "Visual world", "dataset_split": "test", "metric_type": "accuracy", "metric_value": 0.5}}))
    tree = tmp_path / "model-tree"
    assert main(["push", "checkpoint", "--folder", str(tiny_vlm_paths["qwen2_vl"]), "--repo-id", "me/tiny",
                 "--local-dir", str(tree), "--eval-summary", str(summary), "--base-model", "Qwen/Qwen2-VL-2B"]) == 0
    card = ModelCard.load(tree / "README.md")
    assert card.data.eval_results[0].metric_value == 0.5 and card.data.base_model == "Qwen/Qwen2-VL-2B"
    assert "Wrote the repository tree of me/tiny" in capsys.readouterr().out

    empty = tmp_path / "no-space"
    empty.mkdir()
    assert main(["push", "space", "--repo-id", "me/space", "--space-dir", str(empty), "--local-dir",
                 str(tmp_path / "space-tree")]) == 1
    assert "missing app.py, README.md, requirements.txt" in capsys.readouterr().err


# --------------------------------------------------------------------------- cards keep what the user gave
def test_a_local_model_is_named_never_located(tmp_path):
    from rap_hf.hub import describe_model

    assert describe_model(None) == (None, None) and describe_model("") == (None, None)
    assert describe_model("Qwen/Qwen2.5-VL-3B-Instruct") == ("Qwen/Qwen2.5-VL-3B-Instruct",) * 2
    saved_from_hub = tmp_path / "copy"
    saved_from_hub.mkdir()
    (saved_from_hub / "config.json").write_text(json.dumps({"_name_or_path": "Qwen/Qwen2.5-VL-3B-Instruct"}))
    assert describe_model(saved_from_hub) == ("Qwen/Qwen2.5-VL-3B-Instruct",) * 2
    fine_tuned = tmp_path / "run-7"
    fine_tuned.mkdir()
    elsewhere = f"{tmp_path / 'another-machine' / 'ckpts' / 'base-7b'}/"  # a path that is not here
    (fine_tuned / "config.json").write_text(json.dumps({"name_or_path": elsewhere}))
    assert describe_model(str(fine_tuned)) == (None, "base-7b")  # the last part of the path it names
    plain = tmp_path / "my-scorer"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    assert describe_model(plain) == (None, "my-scorer")
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-VL-7B-Instruct" / "snapshots" / "0123abc"
    assert describe_model(snapshot) == ("Qwen/Qwen2.5-VL-7B-Instruct",) * 2  # the Hub cache's own layout


def test_a_local_scorer_keeps_its_name_on_the_card(selection, tmp_path):
    scorer = tmp_path / "models" / "my-scorer"
    scorer.mkdir(parents=True)
    (scorer / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    folder = push_subset(selection, "me/world-rap", local_dir=tmp_path / "tree",
                         scorer=RAPScorer(str(scorer), RAPConfig(num_rollouts=5)))
    text = DatasetCard.load(folder / "README.md").text
    assert "Scorer model: `my-scorer` (a local model, not on the Hub)" in text and "| `num_rollouts` | `5` |" in text
    assert str(tmp_path) not in text and str(tmp_path) not in (folder / "rap_report.json").read_text()
    # Nothing given and nothing recorded: the card says how to give it, from the shell or from Python.
    bare = DatasetCard.load(push_subset(selection, "me/world-rap", local_dir=tmp_path / "bare") / "README.md").text
    assert "not recorded (`rap-hf push subset --scorer-model`, or `scorer=` in `rap_hf.push_subset`)" in bare
    assert "`--scoring-config`" in bare


def _trained_folder(folder: Path, *, log_history: list, args: "RAPGRPOConfig | None") -> Path:
    """A folder laid out as `rap-hf train` leaves it (no weights: the card reads the rest)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    if args is not None:
        torch.save(args, folder / "training_args.bin")  # as Trainer.save_model writes it
    checkpoint = folder / "checkpoint-4"
    checkpoint.mkdir()
    (folder / "checkpoint-2").mkdir()
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "epoch": 2.0,
                                                               "log_history": log_history}))
    (checkpoint / "rap_replacement.json").write_text(json.dumps({
        "epoch": 2, "slots": [0, 1, 2, 3, 4, 7], "pool_used": 1, "replaced": 1, "history": [], "outcomes": {},
        "num_active": 6, "pool": [6, 7, 8]}))
    return folder


def test_push_checkpoint_from_a_train_folder_reads_what_the_run_left(tmp_path):
    args = RAPGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, num_generations=2,
                         per_device_train_batch_size=2, learning_rate=0.05, beta=0.01, report_to=[],
                         lr_scheduler_type="constant", reward_weights=[1.0, 0.5])
    history = [{"step": 1, "loss": 0.1, "rewards/rap_reward/mean": 0.2, "rewards/format_reward/mean": 0.0},
               {"step": 2, "loss": 0.1, "rewards/rap_reward/mean": 0.3, "rewards/format_reward/mean": 0.1}]
    folder = _trained_folder(tmp_path / "trained", log_history=history, args=args)
    (folder / "README.md").write_text("---\nbase_model: Qwen/Qwen2.5-VL-3B-Instruct\nlibrary_name: transformers\n---\n"
                                      "# trained\n")  # TRL's draft card, as it writes one at each checkpoint
    hub = RecordingHub()
    push_checkpoint(folder, "me/tiny", api=hub)
    files = hub.commits[0]["files"]
    assert "training_args.bin" not in files and not any(name.startswith("checkpoint-") for name in files)
    card = ModelCard(files["README.md"].decode())
    text = card.text
    assert "Reward: 1 × `rap_reward` + 0.5 × `format_reward`" in text
    assert "Optimizer steps: 4 (2.0 epochs)" in text
    assert "Training rows: 6; online replacement swapped 1 rows" in text and "(2 pool rows left unused)" in text
    assert "| `num_generations` | `2` |" in text and "| `learning_rate` | `0.05` |" in text
    assert "| `lr_scheduler_type` | `constant` |" in text and "| `beta` | `0.01` |" in text
    assert "| device | CPU |" in text and "| precision | float32 |" in text
    assert card.data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert str(tmp_path) not in text


def test_a_training_args_file_is_read_as_data_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = _trained_folder(tmp_path / "trained", log_history=[], args=None)
    torch.save(Payload(), folder / "training_args.bin")
    hub = RecordingHub()
    push_checkpoint(folder, "me/tiny", api=hub)
    assert not marker.exists()  # the pickle's call was never made
    text = ModelCard(hub.commits[0]["files"]["README.md"].decode()).text
    assert "Optimizer steps: 4" in text and "Reward: not recorded" in text


@pytest.mark.slow
def test_a_training_record_keeps_rewards_compute_and_a_local_base(tiny_vlm_paths, selection, tmp_path):
    """Needs a tiny model: trains two steps, saves the model and `save_training_record`, then publishes
    the folder as `rap-hf push checkpoint --folder` does."""
    from rap_hf.hub import TRAINING_RECORD, save_training_record

    args = RAPGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, activation_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=2,
                         report_to=[], save_strategy="no", learning_rate=0.05, beta=0.01, min_pixels=None,
                         max_pixels=None)
    trainer = RAPGRPOTrainer(str(tiny_vlm_paths["qwen2_5_vl"]), args, train_dataset=selection)
    trainer.train()
    out = tmp_path / "out"
    trainer.save_model(str(out))
    assert save_training_record(trainer, out) == out / TRAINING_RECORD
    hub = RecordingHub()
    push_checkpoint(out, "me/tiny", api=hub)
    files = hub.commits[0]["files"]
    assert TRAINING_RECORD not in files
    text = ModelCard(files["README.md"].decode()).text
    assert "`qwen2_5_vl` (a local model, not on the Hub)" in text  # the base's folder name, not its path
    assert "Reward: 1 × `rap_reward`" in text and "Optimizer steps: 2" in text and "| processes | 1 |" in text
    assert "| `num_generations` | `2` |" in text and "training time" in text
    assert str(tmp_path) not in text and str(tiny_vlm_paths["qwen2_5_vl"]) not in text
