"""Publishing a trained model: its weights and processor, with a model card of the run.

The model comes from a trainer after training (saved straight into the repository tree, by every
process of a multi-process run) or from a saved folder (its top-level files, without the training
state). The card reports the run's `TrainingRecord` and the evaluation attached to the push.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from .cards import MODEL_TAGS, card_template, describe_model, license_metadata
from .commits import publish
from .record import TRAINING_RECORD, TrainingRecord

logger = logging.getLogger(__name__)

# Training state that a published model does not need (and pickles that the Hub flags).
CHECKPOINT_SKIP = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "rap_replacement.json",
                   "trainer_state.json", TRAINING_RECORD)
CHECKPOINT_SKIP_PATTERN = re.compile(r"rng_state.*\.pth$")
# Files of an earlier push that a new one replaces: stale weight shards would mix old weights in.
MODEL_OWNED = re.compile(r"(\.safetensors|\.bin|\.safetensors\.index\.json|\.bin\.index\.json)$")


def push_checkpoint(trainer_or_folder, repo_id: str, *, api=None, token: str | None = None,
                    private: bool | None = None, eval_results=None, base_model: str | None = None,
                    training_dataset: str | None = None, license: str | None = None,
                    local_dir: str | Path | None = None, commit_message: str | None = None,
                    template: str | Path | None = None):
    """Publish a trained model: weights, processor and a model card, in one commit.

    Args:
        trainer_or_folder: A `RAPGRPOTrainer` after training (its model and processor are saved;
            call this on every process of a multi-process run: all take part in saving, the main
            process uploads), or a folder written by `save_pretrained` / `rap-hf train` / a
            checkpoint (its top-level files; optimizer, scheduler and RNG states, trainer state
            and the `checkpoint-N/` subfolders are left out). LoRA adapters are published as such.
            A folder's card reports what the run left in it: `rap_training.json`
            (`save_training_record`), or the trainer's `training_args.bin` (read as data, never
            unpickled), `trainer_state.json` and the last checkpoint's replacement state.
        repo_id: "namespace/name" of the model repository (created if missing).
        eval_results: `huggingface_hub.EvalResult`s, dicts of their fields, or the summary written by
            `rap-hf eval` (`summary.json`): they go into the card's `model-index` metadata and a table.
        base_model: The model trained (a Hub id; a local folder shows as the Hub id its config.json
            names, or by its name: paths are never written into the card); default: the trainer's
            model, or for a folder what the run left there (`rap_training.json`, an adapter's config,
            TRL's draft card, config.json).
        training_dataset: The Hub id of the training subset (e.g. what `push_subset` published).
        license: The model's license (usually the base model's).
        api, token, private, local_dir, commit_message, template: As for `push_subset`; the commit
            also deletes weight files of an earlier push that this one does not have.

    Returns:
        The `CommitInfo` of the upload, or the folder written with `local_dir` (None on the other
        processes of a multi-process run).
    """
    template_path = card_template("model_card.md", template)
    trainer = None if isinstance(trainer_or_folder, (str, Path)) else trainer_or_folder
    if trainer is None:
        source = Path(trainer_or_folder)
        if not (source / "config.json").exists() and not (source / "adapter_config.json").exists():
            raise FileNotFoundError(f"{source} holds no model (no config.json or adapter_config.json)")
    elif trainer.accelerator.num_processes > 1:
        source = _save_on_all_ranks(trainer)
        if source is None:  # not the main process: it helped save; the main process uploads
            return None
    else:
        source = None  # saved straight into the tree

    def build(tree: Path) -> None:
        if source is None:
            _save_trained(trainer, tree)
        else:
            _copy_model_files(source, tree)
        record = TrainingRecord.from_trainer(trainer) if trainer is not None else TrainingRecord.from_folder(source)
        _write_model_card(tree, repo_id, record, template_path, eval_results=eval_results, base_model=base_model,
                          training_dataset=training_dataset, license=license)

    try:
        return publish(local_dir, repo_id, "model", build, api=api, token=token, private=private,
                       commit_message=commit_message or "Add RAP-GRPO checkpoint", owned=MODEL_OWNED)
    finally:
        if trainer is not None and source is not None:
            shutil.rmtree(source, ignore_errors=True)


def _write_model_card(tree: Path, repo_id: str, record: TrainingRecord, template_path: Path, *, eval_results,
                      base_model: str | None, training_dataset: str | None, license: str | None) -> None:
    """README.md of the model in `tree`: metadata, the run's record and the evaluation table."""
    from huggingface_hub import ModelCard, ModelCardData

    is_adapter = (tree / "adapter_config.json").exists()
    # What the user gave wins; a local folder is shown by its Hub id or its name, never its path.
    base, base_name = describe_model(base_model) if base_model else describe_model(record.base_model)
    base_name = base_name or record.base_model_name
    if is_adapter and base is None:
        shown = f" ({base_name} is not on the Hub)" if base_name else ""
        raise ValueError(f"A LoRA adapter is only usable with its base model{shown}: give the base model's Hub "
                         "id (--base-model on the command line; pass base_model= in Python)")
    results = _eval_results(eval_results)
    card_data = ModelCardData(
        base_model=base, datasets=[training_dataset] if training_dataset else None,
        library_name="peft" if is_adapter else "transformers", pipeline_tag="image-text-to-text",
        tags=MODEL_TAGS + (["lora"] if is_adapter else []), model_name=repo_id.split("/")[-1],
        eval_results=results or None, **license_metadata(license),
    )
    eval_rows = [{"dataset": r.dataset_name, "split": r.dataset_split or "",
                  "metric": r.metric_name or r.metric_type,
                  "value": f"{r.metric_value:.4f}" if isinstance(r.metric_value, float) else r.metric_value}
                 for r in results]
    card = ModelCard.from_template(
        card_data, template_path=str(template_path), repo_id=repo_id, model_name=repo_id.split("/")[-1],
        base_model=base, base_model_name=base_name, training_dataset=training_dataset, eval_rows=eval_rows,
        is_adapter=is_adapter, rap_hf_version=__version__, **record.card_fields(),
    )
    card.save(str(tree / "README.md"))


def _eval_results(eval_results) -> list:
    """`huggingface_hub.EvalResult`s from EvalResults, dicts of their fields, or an `rap-hf eval` summary."""
    from huggingface_hub import EvalResult

    if eval_results is None:
        return []
    if isinstance(eval_results, dict):
        eval_results = eval_results.get("eval_results", eval_results)
        if isinstance(eval_results, dict):
            eval_results = [eval_results]
    return [r if isinstance(r, EvalResult) else EvalResult(**r) for r in eval_results]


def _copy_model_files(source: Path, tree: Path) -> None:
    """The model's own files: the folder's top level without training state. Subfolders (the
    `checkpoint-N/` of a training output, `runs/` logs) stay behind."""
    left = sorted(p.name for p in source.iterdir() if p.is_dir())
    if left:
        logger.info("Not uploading the subfolders of %s: %s", source, left)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.name not in CHECKPOINT_SKIP and path.name != "README.md" \
                and not CHECKPOINT_SKIP_PATTERN.search(path.name):
            shutil.copy2(path, tree / path.name)


def _save_trained(trainer, tree: Path) -> None:
    """The trainer's model and processor, without the pickled training arguments."""
    # _internal_call: save only; with args.push_to_hub, a plain save_model would also push on its own.
    trainer.save_model(str(tree), _internal_call=True)
    if trainer.processing_class is not None and trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(tree))
    for name in CHECKPOINT_SKIP:
        (tree / name).unlink(missing_ok=True)


def _save_on_all_ranks(trainer) -> Path | None:
    """Multi-process runs: every rank takes part in saving (sharded weights are gathered) into one
    folder of the main process, which gets it back; the other ranks get None."""
    from accelerate.utils import broadcast_object_list

    main = trainer.is_world_process_zero()
    shared = [tempfile.mkdtemp(prefix="rap-hf-save-") if main else None]
    broadcast_object_list(shared)
    _save_trained(trainer, Path(shared[0]))
    trainer.accelerator.wait_for_everyone()
    return Path(shared[0]) if main else None
