"""Exports of canonical rows to the layouts trainers read: TRL, EasyR1 and verl.

Each exporter checks that every image decodes first: a trainer that meets a corrupt image mid-run
loses hours, and a silently dropped row breaks the accounting. With `on_error="drop"` the bad
rows are removed with a warning that names them; the default raises, naming the rows.
"""

from __future__ import annotations

import logging
from typing import Literal

from tqdm.auto import tqdm

from ..prompts import FORMAT_PROMPT, placeholder_text, trl_prompt
from .images import ImageDecodeError, decode_row_images, embedded_refs
from .canonical import ensure_canonical, images_feature

logger = logging.getLogger(__name__)

OnError = Literal["raise", "drop"]


def find_bad_images(ds, batch_size: int = 256, show_progress: bool = True) -> dict[str, str]:
    """`{rap_id: reason}` for every row whose images do not all decode (empty when all are fine)."""
    ensure_canonical(ds, "find_bad_images")
    bad: dict[str, str] = {}
    columns = ds.select_columns(["rap_id", "images"])
    if columns.features["images"] != images_feature():  # e.g. decoded images: check the stored bytes
        columns = columns.cast_column("images", images_feature())
    with tqdm(total=len(ds), desc="Checking images", unit="row", disable=not show_progress) as bar:
        for batch in columns.iter(batch_size=batch_size):
            for rap_id, refs in zip(batch["rap_id"], batch["images"]):
                try:
                    decode_row_images(refs, rap_id)
                except ImageDecodeError as error:
                    bad[rap_id] = error.reason
            bar.update(len(batch["rap_id"]))
    return bad


def _checked(ds, on_error: OnError, where: str):
    if on_error not in ("raise", "drop"):
        raise ValueError(f"on_error must be 'raise' or 'drop', got {on_error!r}")
    bad = find_bad_images(ds)
    if not bad:
        return ds
    examples = "; ".join(f"{rid}: {reason}" for rid, reason in list(bad.items())[:5])
    if on_error == "raise":
        raise ValueError(
            f"{where}: {len(bad)} row(s) have images that cannot be decoded ({examples}). "
            f"Fix or remove them, or export without them: `rap-hf export --on-error drop` (on_error='drop' in "
            "Python)."
        )
    logger.warning("%s: dropping %d row(s) whose images cannot be decoded: %s", where, len(bad), examples)
    return ds.filter(lambda rid: rid not in bad, input_columns="rap_id", desc="Dropping undecodable rows")


def to_trl(
    ds,
    *,
    format_prompt: str | None = FORMAT_PROMPT,
    system_prompt: str | None = None,
    on_error: OnError = "raise",
):
    """Canonical rows -> a TRL conversational dataset for `GRPOTrainer` (and the RAP trainer).

    Adds `prompt` (a user message holding the question and the format instruction; TRL inserts
    one image block per image before it) and turns `images` into decoded `List(Image())`. All other
    columns stay, so reward functions receive `answer` (and `rap_id`, score columns, ...) as keyword
    lists. An existing `prompt` column is kept as `source_prompt`.

    Args:
        ds: Canonical rows (`to_rap_format` output, a selection's dataset, ...).
        format_prompt: Appended to each question; the paper's think + boxed instruction by default.
        system_prompt: Optional system message.
        on_error: "raise" (default) or "drop" rows whose images cannot be decoded.
    """
    from datasets import Image, List

    ensure_canonical(ds, "to_trl")
    ds = _checked(ds, on_error, "to_trl")
    if "prompt" in ds.column_names:
        ds = ds.rename_column("prompt", "source_prompt")

    def add_prompt(batch):
        return {"prompt": [trl_prompt(q, format_prompt=format_prompt, system_prompt=system_prompt)
                           for q in batch["question"]]}

    ds = ds.map(add_prompt, batched=True, desc="to_trl")
    ds = ds.cast_column("images", List(Image()))
    first = ["prompt", "images", "answer"]
    return ds.select_columns(first + [c for c in ds.column_names if c not in first])


def to_easyr1(ds, *, on_error: OnError = "raise"):
    """Canonical rows -> EasyR1's layout (`problem` with `<image>` placeholders, `answer`, `images`).

    The format instruction is not added: EasyR1 appends its own `data.format_prompt` (the RAP
    recipe passes the paper's think + boxed prompt there). `rap_id` is kept for traceability.
    Images are embedded as bytes; write with `ds.to_parquet(...)` and point `data.train_files` at it.
    """
    from datasets import Features, Image, List, Value

    ensure_canonical(ds, "to_easyr1")
    ds = _checked(ds, on_error, "to_easyr1")

    def convert(batch):
        return {
            "problem": [placeholder_text(q, len(refs), format_prompt=None)
                        for q, refs in zip(batch["question"], batch["images"])],
            "images": [embedded_refs(refs) for refs in batch["images"]],
        }

    features = Features(
        {"problem": Value("string"), "answer": Value("string"), "images": List(Image()), "rap_id": Value("string")}
    )
    ds = ds.select_columns(["rap_id", "question", "answer", "images"])
    ds = ds.map(convert, batched=True, remove_columns=["question"], desc="to_easyr1")
    return ds.cast(features).select_columns(["problem", "answer", "images", "rap_id"])


def to_verl(
    ds,
    *,
    data_source: str = "rap",
    split: str = "train",
    format_prompt: str | None = FORMAT_PROMPT,
    ability: str = "math",
    on_error: OnError = "raise",
):
    """Canonical rows -> verl's RL layout (as its geometry3k preprocessing writes it).

    Columns: `data_source`, `prompt` (one user message: `<image>` placeholders, question and format
    instruction), `images` (embedded bytes), `ability`, `reward_model` (`{"style": "rule",
    "ground_truth": answer}`) and `extra_info` (`split`, `index`, `answer`, `question`, `rap_id`).
    """
    ensure_canonical(ds, "to_verl")
    ds = _checked(ds, on_error, "to_verl")

    def convert(batch, indices):
        out = {k: [] for k in ("data_source", "prompt", "images", "ability", "reward_model", "extra_info")}
        for i, index in enumerate(indices):
            refs, question, answer = batch["images"][i], batch["question"][i], batch["answer"][i]
            content = placeholder_text(question, len(refs), format_prompt=format_prompt)
            out["data_source"].append(data_source)
            out["prompt"].append([{"role": "user", "content": content}])
            out["images"].append(embedded_refs(refs))
            out["ability"].append(ability)
            out["reward_model"].append({"style": "rule", "ground_truth": answer})
            out["extra_info"].append(
                {"split": split, "index": index, "answer": answer, "question": question, "rap_id": batch["rap_id"][i]}
            )
        return out

    from datasets import Image, List

    ds = ds.select_columns(["rap_id", "question", "answer", "images"])
    ds = ds.map(convert, batched=True, with_indices=True, remove_columns=ds.column_names, desc="to_verl")
    return ds.cast_column("images", List(Image()))
