"""Publishing to the Hugging Face Hub: RAP subsets, trained checkpoints and the Gradio Space.

Each push builds the whole repository tree in a folder first (cards rendered from the Jinja
templates in `model_cards/`), then uploads it as ONE commit (`HfApi.create_commit`): a push that
fails half-way leaves the repository as it was. `local_dir=` writes the same tree to a folder and
uploads nothing (to review it, or to upload it later with `hf upload`). `api=` takes any object with
`HfApi`'s `create_repo` and `create_commit`. The token is handed to those two calls only: never
logged, never written.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from . import __version__
from .data.io import SCORING_RECORD
from .selection import DATASET_FOLDER, DECISIONS_FOLDER, REASON_MEANINGS

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "model_cards"  # package data: ships with every install
SPACE_DIR = Path(__file__).resolve().parent.parent / "spaces_demo"  # the Space's source, in a checkout

DATASET_TAGS = ["rap", "data-selection", "vision-language", "multimodal-reasoning", "grpo"]
MODEL_TAGS = ["rap", "grpo", "trl", "vision-language", "multimodal-reasoning"]
# What a run records next to the model it trained (`save_training_record`; `push_checkpoint` reads it).
TRAINING_RECORD = "rap_training.json"
# Training state that a published model does not need (and pickles that the Hub flags).
CHECKPOINT_SKIP = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "rap_replacement.json",
                   "trainer_state.json", TRAINING_RECORD)
# The GRPO and RAP settings a model card lists (those the run's arguments have).
TRAINING_SETTINGS = ("num_generations", "temperature", "top_p", "learning_rate", "lr_scheduler_type", "weight_decay",
                     "beta", "epsilon", "epsilon_high", "loss_type", "scale_rewards", "max_completion_length",
                     "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "steps_per_generation", "num_iterations", "bf16", "seed", "replace_solved", "replace_failed",
                     "replacement_reward")
CHECKPOINT_SKIP_PATTERN = re.compile(r"rng_state.*\.pth$")
SHARD_BYTES = 500 * 2**20
# Files of an earlier push that a new one replaces: stale shards would mix old rows or weights in.
SUBSET_OWNED = re.compile(r"^(data|decisions|plots)/")
MODEL_OWNED = re.compile(r"(\.safetensors|\.bin|\.safetensors\.index\.json|\.bin\.index\.json)$")
HUB_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                       (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


# --------------------------------------------------------------------------- shared
def _template(name: str, template: str | Path | None) -> Path:
    path = Path(template) if template is not None else TEMPLATES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"Card template {path} not found. The card templates ship with rap-hf (rap_hf/model_cards/): reinstall "
            "it (pip install --force-reinstall rap-hf), or, in Python, pass template= with your own Jinja template "
            "(it must start with the '---\\n{{ card_data }}\\n---' front matter)."
        )
    return path


def _tree_folder(local_dir: str | Path | None) -> Path:
    if local_dir is None:
        return Path(tempfile.mkdtemp(prefix="rap-hf-push-"))
    folder = Path(local_dir)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new folder for the repository tree")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload(tree: Path, repo_id: str, repo_type: str, *, api, token, private, commit_message: str,
            owned: re.Pattern | None = None, create_kwargs: dict | None = None):
    """Create the repo if needed, then ONE commit: every file of `tree`, and the deletion of the
    repo's files matching `owned` that the new tree does not have (left from an earlier push)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = api if api is not None else HfApi()
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    names = {p.relative_to(tree).as_posix() for p in files}
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(tree).as_posix(), path_or_fileobj=str(p))
                  for p in files]
    api.create_repo(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token,
                    **(create_kwargs or {}))
    if owned is not None:
        existing = api.list_repo_files(repo_id=repo_id, repo_type=repo_type, token=token)
        stale = sorted(f for f in existing if owned.search(f) and f not in names)
        operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
        if stale:
            logger.info("Removing %d files of an earlier push from %s: %s", len(stale), repo_id, stale[:5])
    logger.info("Uploading %d files to the %s repository %s in one commit", len(files), repo_type, repo_id)
    return api.create_commit(repo_id=repo_id, repo_type=repo_type, operations=operations,
                             commit_message=commit_message, token=token)


def _publish(local_dir, repo_id: str, repo_type: str, build, **upload):
    """Build the tree with `build(folder)`, then upload it (or keep it, with `local_dir`). A
    temporary tree is removed whatever happens; a `local_dir` that fails half-way is left to read."""
    tree = _tree_folder(local_dir)
    try:
        build(tree)
        if local_dir is not None:
            logger.info("Wrote the %s repository tree for %s to %s (nothing uploaded)", repo_type, repo_id, tree)
            return tree
        return _upload(tree, repo_id, repo_type, **upload)
    finally:
        if local_dir is None:
            shutil.rmtree(tree, ignore_errors=True)


def _size_category(n: int) -> str:
    """The Hub's `size_categories` value for n rows."""
    for limit, label in HUB_SIZE_CATEGORIES:
        if n < limit:
            return label
    return "n>1B" if n < 10_000_000_000 else "n>1T"


def _license_metadata(license: str | None) -> dict[str, str]:
    """A Hub license id as given ("cc-by-4.0"); free text ("CC BY 4.0") as `other` with a
    `license_name` slug, since the Hub refuses metadata with an unknown license id."""
    if not license:
        return {}
    if re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        return {"license": license}
    slug = re.sub(r"[^a-z0-9]+", "-", license.lower()).strip("-") or "custom"
    return {"license": "other", "license_name": slug}


def _shown(value: Any) -> str:
    value = getattr(value, "value", value)  # enums (e.g. SchedulerType.CONSTANT) as their plain value
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- subsets
def _embedded_images(ds):
    """Read every image's bytes into the rows, so the Parquet files are self-contained."""
    from datasets import Image, List

    from .data.images import embedded_refs

    if "images" not in ds.column_names:
        return ds

    def embed(batch):
        return {"images": [embedded_refs(refs) for refs in batch["images"]]}

    # In memory: a map over a dataset loaded from disk would write its cache next to the user's files.
    embedded = ds.map(embed, batched=True, batch_size=64, features=ds.features, keep_in_memory=True,
                      desc="Embedding images")
    # Published as decoded images: `load_dataset(repo)` gives PIL pictures, as TRL's trainers expect.
    return embedded.cast_column("images", List(Image()))


def _write_parquet_shards(ds, folder: Path, split: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, math.ceil(ds.data.nbytes / SHARD_BYTES))
    paths = []
    for index in range(shards):
        path = folder / f"{split}-{index:05d}-of-{shards:05d}.parquet"
        ds.shard(shards, index, contiguous=True).to_parquet(str(path))
        paths.append(path)
    return paths


def _scoring_settings(scorer) -> tuple[str | None, dict | None]:
    """(scorer model, RAPConfig values) from a RAPScorer, a RAPConfig, a dict, or a model id."""
    if scorer is None:
        return None, None
    if isinstance(scorer, str):
        return scorer, None
    if isinstance(scorer, dict):
        return None, dict(scorer)
    if hasattr(scorer, "to_dict"):  # a RAPConfig
        return None, scorer.to_dict()
    model_ref = getattr(scorer, "model_ref", None)
    return model_ref, scorer.config.to_dict()


def _hub_id(ref: str | None) -> str | None:
    """`ref` when it looks like a Hub repo id, else None (local paths never go into public cards)."""
    if ref and re.fullmatch(r"[\w.-]+/[\w.-]+", ref) and not ref.startswith((".", "/")) and not Path(ref).exists():
        return ref
    return None


def describe_model(ref: str | Path | None) -> tuple[str | None, str | None]:
    """(Hub id, name to show) of a model reference, for cards: never a machine path.

    A Hub id is itself. A local folder is the Hub id it was saved from when it tells (a Hub cache
    snapshot `models--org--name/snapshots/...`, or `_name_or_path` / `name_or_path` in its
    config.json), else its folder's name (the last part of `_name_or_path` when that is a path).
    (None, None) for no reference."""
    if ref is None or not str(ref).strip():
        return None, None
    ref = str(ref).strip()
    hub = _hub_id(ref)
    if hub:
        return hub, hub
    path = Path(ref).expanduser()
    for part in reversed(path.parts):  # huggingface_hub's cache layout: models--{org}--{name}
        cached = re.fullmatch(r"models--([\w.-]+?)--([\w.-]+)", part)
        if cached:
            return f"{cached[1]}/{cached[2]}", f"{cached[1]}/{cached[2]}"
    name = path.name or path.resolve().name
    config = path / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            data = {}
        for key in ("_name_or_path", "name_or_path"):
            value = str(data.get(key) or "").strip() if isinstance(data, dict) else ""
            if not value:
                continue
            hub = _hub_id(value)
            if hub:
                return hub, hub
            name = Path(value.rstrip("/\\")).name or name
            break
    return None, name or None


def find_scoring_record(selection) -> Path | None:
    """The record `rap-hf score` wrote next to the rows it scored (`rap_scoring.json`: the model and
    the RAPConfig), found from where the selection's rows were loaded: the scored folder itself, or a
    `rap-hf select` folder, which keeps a copy. None when there is none."""
    for ds in (selection.decisions, selection.dataset):
        for entry in getattr(ds, "cache_files", None) or []:
            folder = Path(entry["filename"]).parent
            candidates = [folder / SCORING_RECORD]
            if folder.name in (DATASET_FOLDER, DECISIONS_FOLDER):  # inside a saved selection
                candidates.append(folder.parent / SCORING_RECORD)
            found = next((path for path in candidates if path.is_file()), None)
            if found is not None:
                return found
    return None


def _scoring_manifest(selection) -> dict[str, Any]:
    """The manifest of `find_scoring_record` (the model and the RAPConfig), or {}."""
    path = find_scoring_record(selection)
    try:
        manifest = json.loads(path.read_text()).get("manifest") if path is not None else None
    except (OSError, ValueError, AttributeError):
        manifest = None
    return manifest if isinstance(manifest, dict) else {}


def refuse_empty_subset(selection, repo_id: str, where: str = "the selection") -> None:
    """Raise `ValueError` in one line, before anything is written or uploaded, when `selection` kept no
    row: a dataset repository without rows cannot be loaded. The line says why nothing was kept (the
    report's `why_none_kept`) and what to do; `where` names the selection (e.g. its folder)."""
    report = selection.report
    if report.kept == 0 or len(selection.dataset) == 0:
        why = report.why_none_kept or f"Nothing was kept (0 of {report.total} rows)."
        raise ValueError(
            f"Not publishing {repo_id}: {where} kept no row, and a dataset repository without rows cannot be "
            f"loaded (load_dataset fails on it). {why} Select again with the change (`rap-hf select`, or "
            "rap_hf.select), then push that selection.")


def write_subset_tree(selection, folder: str | Path, repo_id: str, *, source_dataset: str | None = None,
                      source_revision: str | None = None, scorer=None, scorer_model: str | None = None,
                      license: str | None = None,
                      pretty_name: str | None = None, template: str | Path | None = None) -> Path:
    """Write the dataset repository of a selection to `folder` (see `push_subset`)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    template_path = _template("dataset_card.md", template)  # before any work: a typo fails at once
    refuse_empty_subset(selection, repo_id)
    folder = Path(folder)
    report = selection.report
    if sum(report.counts.values()) != report.total:
        raise ValueError(f"The report accounts for {sum(report.counts.values())} of {report.total} rows")
    kept = _embedded_images(selection.dataset)
    shards = _write_parquet_shards(kept, folder / "data", "train")
    decisions = selection.decisions.remove_columns([c for c in ("images",) if c in selection.decisions.column_names])
    (folder / "decisions").mkdir()
    decisions.to_parquet(str(folder / "decisions" / "decisions.parquet"))
    plots = ([p.relative_to(folder).as_posix() for p in report.save_plots(folder / "plots")]
             if report.histograms else [])  # a baseline over unscored rows has no scores to plot
    recorded_model, scoring_config = _scoring_settings(scorer)
    record = _scoring_manifest(selection)  # what `rap-hf score` wrote: used where nothing was given
    if scoring_config is None and isinstance(record.get("config"), dict):
        scoring_config = dict(record["config"])
    # A local folder's path means nothing to readers (and tells about the machine): its Hub id or its name.
    scorer_model, scorer_name = describe_model(scorer_model or recorded_model or record.get("model"))
    selection_config = selection.config.to_dict() if selection.config is not None else dict(report.thresholds)
    (folder / "rap_report.json").write_text(json.dumps(
        {**report.to_dict(), "selection_config": selection_config, "scoring_config": scoring_config,
         "scorer_model": scorer_model, "scorer_name": scorer_name, "source_dataset": source_dataset,
         "source_revision": source_revision,
         "rap_hf_version": __version__}, indent=2, default=str))

    license = license or selection.dataset.info.license or None
    card_data = DatasetCardData(
        tags=DATASET_TAGS, source_datasets=[source_dataset] if source_dataset else None,
        task_categories=["image-text-to-text", "visual-question-answering"],
        size_categories=[_size_category(report.kept)], pretty_name=pretty_name or repo_id.split("/")[-1],
        **_license_metadata(license),
    )
    MetadataConfigs({
        "default": {"data_files": [{"split": "train", "path": "data/train-*"}]},
        "decisions": {"data_files": [{"split": "train", "path": "decisions/*.parquet"}]},
    }).to_dataset_card_data(card_data)
    def info(ds, config_name: str, files: list[Path]) -> DatasetInfo:
        splits = SplitDict({"train": SplitInfo(name="train", num_bytes=ds.data.nbytes, num_examples=len(ds))})
        return DatasetInfo(features=ds.features, config_name=config_name, splits=splits,
                           download_size=sum(f.stat().st_size for f in files), dataset_size=ds.data.nbytes)

    DatasetInfosDict({
        "default": info(kept, "default", shards),
        "decisions": info(decisions, "decisions", [folder / "decisions" / "decisions.parquet"]),
    }).to_dataset_card_data(card_data)

    meanings = dict(REASON_MEANINGS)
    if report.mode not in ("paper", "reference"):
        meanings["kept"] = f"drawn by the {report.mode} baseline"
    counts = [{"reason": reason, "count": count, "meaning": meanings.get(reason, ""),
               "share": f"{100 * count / report.total:.1f}" if report.total else "0.0"}
              for reason, count in report.counts.items()]
    canonical = {"rap_id", "question", "answer", "images", "choices", "rap_keep", "rap_reason"}
    extra = [c for c in kept.column_names if c not in canonical and not c.startswith("rap_")]
    card = DatasetCard.from_template(
        card_data, template_path=str(template_path), license_text=license,
        pretty_name=card_data.pretty_name, repo_id=repo_id, kept=report.kept, total=report.total,
        kept_percent=f"{100 * report.fraction:.1f}", source_dataset=source_dataset, source_revision=source_revision,
        scorer_model=scorer_model, scorer_name=scorer_name, mode=report.mode,
        scoring_config={k: _shown(v) for k, v in (scoring_config or {}).items()},
        selection_config={k: _shown(v) for k, v in selection_config.items()},
        means={k: (f"{v:.4f}" if isinstance(v, float) else _shown(v)) for k, v in report.means.items()},
        counts=counts, plots=plots, extra_columns=", ".join(f"`{c}`" for c in extra), rap_hf_version=__version__,
    )
    card.save(str(folder / "README.md"))
    return folder


def push_subset(selection, repo_id: str, *, api=None, token: str | None = None, private: bool | None = None,
                local_dir: str | Path | None = None, commit_message: str | None = None,
                source_dataset: str | None = None, source_revision: str | None = None, scorer=None,
                scorer_model: str | None = None, license: str | None = None, pretty_name: str | None = None,
                template: str | Path | None = None):
    """Publish a `Selection` as a Hub dataset: kept rows, every decision, report, plots and card.

    One commit holds `data/train-*.parquet` (the kept rows, images embedded: `load_dataset(repo_id)`
    gives them back), `decisions/decisions.parquet` (every input row, configuration "decisions"),
    `rap_report.json`, `plots/` and `README.md` rendered from `rap_hf/model_cards/dataset_card.md`;
    it also deletes what an earlier push left under `data/`, `decisions/` and `plots/`.

    Args:
        selection: The output of `rap_hf.select` (or a baseline, or `Selection.load_from_disk`).
        repo_id: "namespace/name" of the dataset repository (created if missing).
        api: An `HfApi`, or any object with its `create_repo`, `list_repo_files` and `create_commit`
            (default `HfApi()`).
        token: Hub token for those calls; default: the logged-in user (`HF_TOKEN` / `hf auth login`).
        private: Visibility of a newly created repository.
        local_dir: Write the tree to this (new or empty) folder instead of uploading.
        commit_message: Default: "Add RAP subset (kept K of N rows)".
        source_dataset, source_revision: The dataset the rows came from, for the card and metadata.
        scorer: The `RAPScorer` that scored the rows (or its `RAPConfig`, a dict of its values, or
            the scorer's model id), for the card. Default: the record `rap-hf score` wrote next to the
            scored rows (`rap_scoring.json`: model and RAPConfig), found from where the selection's rows
            were loaded (the scored folder, or a `rap-hf select` folder, which keeps a copy).
        scorer_model: The scorer's model id, when `scorer` does not carry it. A local folder shows as
            the Hub id it was saved from (its config.json) or as its name, never as a path.
        license: The source's license; default: the dataset's own `info.license`, when set.
        pretty_name: Card title; default: the repository name.
        template: Another Jinja card template.

    Returns:
        The `CommitInfo` of the upload, or the folder written with `local_dir`.

    Raises:
        ValueError: the selection kept no row (before anything is written or uploaded): a dataset
            repository without rows cannot be loaded.
    """
    refuse_empty_subset(selection, repo_id)

    def build(tree: Path) -> None:
        write_subset_tree(selection, tree, repo_id, source_dataset=source_dataset, source_revision=source_revision,
                          scorer=scorer, scorer_model=scorer_model, license=license, pretty_name=pretty_name,
                          template=template)

    message = commit_message or f"Add RAP subset (kept {selection.report.kept} of {selection.report.total} rows)"
    return _publish(local_dir, repo_id, "dataset", build, api=api, token=token, private=private,
                    commit_message=message, owned=SUBSET_OWNED)


# --------------------------------------------------------------------------- checkpoints
def _eval_rows(eval_results) -> list:
    """`huggingface_hub.EvalResult`s from EvalResults, dicts of their fields, or an `rap-hf eval` summary."""
    from huggingface_hub import EvalResult

    if eval_results is None:
        return []
    if isinstance(eval_results, dict):
        eval_results = eval_results.get("eval_results", eval_results)
        if isinstance(eval_results, dict):
            eval_results = [eval_results]
    return [r if isinstance(r, EvalResult) else EvalResult(**r) for r in eval_results]


def _training_facts(trainer) -> dict[str, Any]:
    """What the card reports about a run: settings, steps, compute, replacement."""
    import torch

    args = trainer.args
    settings = {name: getattr(args, name) for name in TRAINING_SETTINGS if hasattr(args, name)}
    weights = getattr(args, "reward_weights", None) or [1.0] * len(trainer.reward_func_names)
    rewards = " + ".join(f"{w:g} × `{n}`" for w, n in zip(weights, trainer.reward_func_names))
    runtime = next((log["train_runtime"] for log in reversed(trainer.state.log_history) if "train_runtime" in log),
                   None)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not getattr(args, "use_cpu", False) else "CPU"
    compute = {"processes": trainer.accelerator.num_processes, "device": device}
    if runtime is not None:
        compute["training time"] = f"{runtime / 3600:.2f} h ({runtime:.0f} s)"
    sampler = getattr(trainer, "replacement_sampler", None)
    replacement = {"replaced": sampler.replaced, "pool_left": sampler.pool_left} if sampler is not None else None
    num_active = getattr(trainer, "num_active_rows", None)  # None: a plain GRPOTrainer, or no replacement pool
    return {
        "settings": {k: _shown(v) for k, v in settings.items()}, "rewards": rewards, "compute": compute,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0, 2),
        "replacement": replacement,
        "training_rows": num_active if num_active is not None else len(trainer.train_dataset),
        "base_model": trainer.model.config._name_or_path,
    }


def save_training_record(trainer, folder: str | Path) -> Path | None:
    """Write what a finished run's card reports (settings, rewards, compute, steps, rows, replacement,
    base model) to `folder/rap_training.json`, next to the model saved there, so that
    `push_checkpoint(folder)` (`rap-hf push checkpoint --folder`) describes the run as fully as
    `push_checkpoint(trainer)`. On the main process only (None elsewhere). The base model is kept
    as its Hub id or its name, never as a path."""
    if not trainer.is_world_process_zero():
        return None
    facts = _training_facts(trainer)
    facts["base_model"], facts["base_model_name"] = describe_model(facts["base_model"])
    path = Path(folder) / TRAINING_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rap_hf_version": __version__, **facts}, indent=2, default=str))
    return path


class _Stub:
    """Whatever class a pickle names, read as data: nothing is imported or called (see `_read_pickled`)."""

    origin = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        self.state = state


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        return type(name, (_Stub,), {"origin": f"{module}.{name}"})

    def persistent_load(self, pid):  # tensors: not needed for the settings
        return None


def _plain(value: Any) -> Any:
    """A value of `_read_pickled`'s result as plain data: an enum as its value, other objects by name."""
    if isinstance(value, _Stub):
        if value.state is None and len(value.args) == 1 and not isinstance(value.args[0], _Stub):
            return value.args[0]  # an enum member (SchedulerType("constant")) or a simple wrapper
        return value.origin
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _read_pickled(path: Path) -> dict[str, Any] | None:
    """The fields of the object `torch.save` wrote to `path` (the trainer's `training_args.bin`), read
    as data, without running the pickle's code (which the Hub flags in published files): every class
    it names becomes a stand-in. None when the file is not there or not readable this way."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                return None
            obj = _DataUnpickler(archive.open(name)).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError):
        return None
    state = obj.state if isinstance(obj, _Stub) else None
    if isinstance(state, tuple):  # (dict, slots) for classes with __slots__
        state = state[0]
    return {str(k): _plain(v) for k, v in state.items()} if isinstance(state, dict) else None


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


def _folder_facts(folder: Path) -> dict[str, Any]:
    """What a saved folder tells about its run, for the card.

    `rap_training.json` (`save_training_record`) when the run wrote one; otherwise what the trainer
    left: the settings in `training_args.bin` (read as data), steps, rewards and replacement counts in
    `trainer_state.json` (the folder's own, else the last `checkpoint-N`'s), training rows and swaps
    in that checkpoint's `rap_replacement.json`, and the base model from an adapter's config, TRL's
    draft card or config.json."""
    facts: dict[str, Any] = {"settings": None, "rewards": "not recorded", "compute": None, "steps": None,
                             "epochs": None, "replacement": None, "training_rows": None, "base_model": None,
                             "base_model_name": None}
    record = _read_json(folder / TRAINING_RECORD)
    if record is not None:
        facts.update({key: record[key] for key in facts if key in record})
        return facts
    checkpoint = _last_checkpoint(folder)
    where = [folder] + ([checkpoint] if checkpoint is not None else [])
    state = next((s for s in (_read_json(p / "trainer_state.json") for p in where) if s is not None), None)
    args = next((a for a in (_read_pickled(p / "training_args.bin") for p in where) if a is not None), None)
    history = (state or {}).get("log_history") or []
    if state is not None:
        facts.update(steps=state.get("global_step"), epochs=round(state.get("epoch") or 0, 2))
    names = list(dict.fromkeys(m[1] for log in history for key in log
                               if (m := re.fullmatch(r"rewards/(.+)/mean", key))))
    if names:
        weights = (args or {}).get("reward_weights") or [1.0] * len(names)
        facts["rewards"] = " + ".join(f"{w:g} × `{n}`" for w, n in zip(weights, names))
    compute: dict[str, Any] = {}
    if args is not None:
        facts["settings"] = {name: _shown(args[name]) for name in TRAINING_SETTINGS if name in args}
        if args.get("use_cpu"):
            compute["device"] = "CPU"
        compute["precision"] = "bf16" if args.get("bf16") else ("fp16" if args.get("fp16") else "float32")
    runtime = next((log["train_runtime"] for log in reversed(history) if "train_runtime" in log), None)
    if runtime is not None:
        compute["training time"] = f"{runtime / 3600:.2f} h ({runtime:.0f} s)"
    facts["compute"] = compute or None
    replacement = _read_json(checkpoint / "rap_replacement.json") if checkpoint is not None else None
    if replacement is not None:
        facts["training_rows"] = replacement.get("num_active")
        pool = replacement.get("pool") or []
        facts["replacement"] = {"replaced": replacement.get("replaced", 0),
                                "pool_left": len(pool) - int(replacement.get("pool_used") or 0)}
    adapter = _read_json(folder / "adapter_config.json")
    if adapter is not None:
        facts["base_model"] = adapter.get("base_model_name_or_path")
    if not facts["base_model"] and (folder / "README.md").is_file():  # TRL's draft card names a Hub base
        from huggingface_hub import metadata_load

        try:
            base = (metadata_load(folder / "README.md") or {}).get("base_model")
        except (OSError, ValueError):
            base = None
        facts["base_model"] = base[0] if isinstance(base, list) and base else base
    if not facts["base_model"]:
        config = _read_json(folder / "config.json") or {}
        facts["base_model"] = config.get("_name_or_path") or config.get("name_or_path")
    return facts


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
    from huggingface_hub import ModelCard, ModelCardData

    template_path = _template("model_card.md", template)
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
        facts = _training_facts(trainer) if trainer is not None else _folder_facts(source)
        is_adapter = (tree / "adapter_config.json").exists()
        recorded_base, recorded_name = facts.pop("base_model"), facts.pop("base_model_name", None)
        # What the user gave wins; a local folder is shown by its Hub id or its name, never its path.
        base, base_name = describe_model(base_model) if base_model else describe_model(recorded_base)
        base_name = base_name or recorded_name
        if is_adapter and base is None:
            shown = f" ({base_name} is not on the Hub)" if base_name else ""
            raise ValueError(f"A LoRA adapter is only usable with its base model{shown}: give the base model's Hub "
                             "id (--base-model on the command line; pass base_model= in Python)")
        results = _eval_rows(eval_results)
        card_data = ModelCardData(
            base_model=base, datasets=[training_dataset] if training_dataset else None,
            library_name="peft" if is_adapter else "transformers", pipeline_tag="image-text-to-text",
            tags=MODEL_TAGS + (["lora"] if is_adapter else []), model_name=repo_id.split("/")[-1],
            eval_results=results or None, **_license_metadata(license),
        )
        eval_rows = [{"dataset": r.dataset_name, "split": r.dataset_split or "",
                      "metric": r.metric_name or r.metric_type,
                      "value": f"{r.metric_value:.4f}" if isinstance(r.metric_value, float) else r.metric_value}
                     for r in results]
        card = ModelCard.from_template(
            card_data, template_path=str(template_path), repo_id=repo_id, model_name=repo_id.split("/")[-1],
            base_model=base, base_model_name=base_name, training_dataset=training_dataset, eval_rows=eval_rows,
            is_adapter=is_adapter,
            rap_hf_version=__version__, **facts,
        )
        card.save(str(tree / "README.md"))

    try:
        return _publish(local_dir, repo_id, "model", build, api=api, token=token, private=private,
                        commit_message=commit_message or "Add RAP-GRPO checkpoint", owned=MODEL_OWNED)
    finally:
        if trainer is not None and source is not None:
            shutil.rmtree(source, ignore_errors=True)


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


# --------------------------------------------------------------------------- the Space
def push_space(repo_id: str, *, space_dir: str | Path | None = None, api=None, token: str | None = None,
               private: bool | None = None, local_dir: str | Path | None = None,
               commit_message: str | None = None, include_package: bool = True):
    """Publish the Gradio Space (`spaces_demo/` of a source checkout, or `space_dir`: app.py,
    README.md with the Space front matter, requirements.txt) in one commit; the repository is
    created as a Gradio Space if missing.

    With `include_package` (default) the `rap_hf` package that is running goes into the Space next
    to `app.py`, so the Space runs exactly this version (its `requirements.txt` installs the
    package's dependencies); without it, `requirements.txt` must install `rap-hf` itself.
    """
    source = Path(space_dir) if space_dir is not None else SPACE_DIR
    missing = [name for name in ("app.py", "README.md", "requirements.txt") if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} is not a Space folder: missing {', '.join(missing)}")
    if "sdk: gradio" not in (source / "README.md").read_text():
        raise ValueError(f"{source / 'README.md'} needs the Space front matter with `sdk: gradio`")

    def copy_tree(origin: Path, tree: Path) -> None:
        for path in sorted(origin.rglob("*")):
            relative = path.relative_to(origin)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                (tree / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, tree / relative)

    def build(tree: Path) -> None:
        copy_tree(source, tree)
        if include_package:
            copy_tree(Path(__file__).resolve().parent, tree / "rap_hf")

    return _publish(local_dir, repo_id, "space", build, api=api, token=token, private=private,
                    commit_message=commit_message or "Update the RAP Space", create_kwargs={"space_sdk": "gradio"})
