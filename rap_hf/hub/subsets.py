"""Publishing a RAP subset: the dataset repository of a `Selection`, and the record of how its rows
were scored.

The tree holds the kept rows as Parquet shards (images embedded), every decision, the report, its
plots and a dataset card. The card names the scorer and its settings: what the caller gave, else
what `rap-hf score` recorded next to the scored rows (`rap_scoring.json`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.saved import SCORING_RECORD
from ..selection import DATASET_FOLDER, DECISIONS_FOLDER, REASON_MEANINGS
from .cards import DATASET_TAGS, card_template, describe_model, license_metadata, shown, size_category
from .commits import publish

# At most this many bytes of rows go into one Parquet file: a larger subset is split into shards.
SHARD_BYTES = 500 * 2**20
# Files of an earlier push that a new one replaces: stale shards would mix old rows or weights in.
SUBSET_OWNED = re.compile(r"^(data|decisions|plots)/")


def _embedded_images(ds):
    """Read every image's bytes into the rows, so the Parquet files are self-contained."""
    from datasets import Image, List

    from ..data.images import embedded_refs

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

    template_path = card_template("dataset_card.md", template)  # before any work: a typo fails at once
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
        size_categories=[size_category(report.kept)], pretty_name=pretty_name or repo_id.split("/")[-1],
        **license_metadata(license),
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
        scoring_config={k: shown(v) for k, v in (scoring_config or {}).items()},
        selection_config={k: shown(v) for k, v in selection_config.items()},
        means={k: (f"{v:.4f}" if isinstance(v, float) else shown(v)) for k, v in report.means.items()},
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
    return publish(local_dir, repo_id, "dataset", build, api=api, token=token, private=private,
                    commit_message=message, owned=SUBSET_OWNED)
