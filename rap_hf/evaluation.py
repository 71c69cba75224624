"""Answer-accuracy evaluation of a VLM on canonical rows: `evaluate_model` and `rap-hf eval`.

The model answers each row once (greedy by default) with the prompt every other stage uses
(`rap_hf.prompts`), and the `answer_accuracy` metric (`rap_hf/metrics`, an `evaluate` module on
`rap_hf.verify`) grades the responses. A row that cannot be evaluated (an image that does not
decode, a prompt longer than the model's context, a failed generation, no ground truth) gets an
`error` and counts as wrong: it stays in `total`, so a broken benchmark never looks easier.

Example:
    >>> result = evaluate_model("path/to/model", "path/to/world", split="test")  # doctest: +SKIP
    >>> result.summary["accuracy"], result.save("eval-out")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .prompts import FORMAT_PROMPT

ROWS_FILE = "rows.jsonl"
SUMMARY_FILE = "summary.json"
# The Hub task of an image + question -> text answer model (model-index `task.type`).
TASK_TYPE = "image-text-to-text"


@dataclass
class _EvalRow:
    """What evaluating one row needs, and what became of it."""

    rap_id: str
    question: str
    answer: str
    choices: list[str] | None = None
    prompt: Any = None  # rap_hf.rollouts.Prompt, once built
    response: str | None = None
    error: str | None = None


@dataclass
class EvalResult:
    """Per-row results and the summary of one evaluation.

    Attributes:
        rows: One row per evaluated input row, in input order: `rap_id`, `question`, `answer`,
            `choices` (None without options), `response` (None when the row failed), `correct`,
            `formatted`, `error` (None, or why the row could not be evaluated).
        summary: accuracy, correct, total, errors, format_rate, model, dataset, split, the generation
            settings, seconds, and `eval_results` (a list of keyword dicts for
            `huggingface_hub.EvalResult`, ready for a model card's metadata).
    """

    rows: Any  # datasets.Dataset
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write `rows.jsonl` (one JSON object per row, readable line by line and by
        `load_dataset("json", ...)`) and `summary.json` into `folder`; return their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"rows": folder / ROWS_FILE, "summary": folder / SUMMARY_FILE}
        self.rows.to_json(str(paths["rows"]), lines=True, force_ascii=False)
        paths["summary"].write_text(json.dumps(self.summary, indent=2, ensure_ascii=False) + "\n")
        return paths

    def hub_eval_results(self) -> list:
        """The summary's `eval_results` as `huggingface_hub.EvalResult` objects, for
        `ModelCardData(eval_results=..., model_name=...)`."""
        from huggingface_hub import EvalResult as HubEvalResult

        return [HubEvalResult(**entry) for entry in self.summary["eval_results"]]

    def table(self) -> str:
        """A short plain-text summary for the terminal."""
        s = self.summary
        lines = [
            f"model    {s['model']}",
            f"dataset  {s['dataset']} [{s['split']}]",
            f"accuracy {s['accuracy']:.4f} ({s['correct']} / {s['total']})",
            f"format   {s['format_rate']:.4f}",
            f"errors   {s['errors']}",
            f"seconds  {s['seconds']:.1f}",
        ]
        return "\n".join(lines)


def evaluate_model(
    model,
    dataset,
    *,
    split: str | None = None,
    processor=None,
    format_prompt: str | None = FORMAT_PROMPT,
    system_prompt: str | None = None,
    max_new_tokens: int = 2048,
    batch_size: int = 8,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    device: str | None = None,
    dtype: str = "auto",
    limit: int | None = None,
    dataset_name: str | None = None,
    show_progress: bool = True,
) -> EvalResult:
    """Generate one answer per row and grade it with the `answer_accuracy` metric.

    Args:
        model: A Hub id or local folder (loaded with `rap_hf.modeling.load_vlm`), or a loaded
            `transformers` model (then pass `processor`, or it is loaded from `model.name_or_path`).
        dataset: A `Dataset`, a `DatasetDict`, or what `rap_hf.data.io.load_rows` reads (a
            `save_to_disk` folder, a data file, a Hub id). Rows that are not canonical go through
            `to_rap_format` (preset auto).
        split: The split to evaluate. Without one, a dataset of several splits uses `test` if it
            has one (and is an error otherwise).
        processor: The model's processor, when `model` is a loaded model.
        format_prompt: Instruction appended to every question (the paper's think + boxed prompt).
        system_prompt: Optional system turn.
        max_new_tokens: Longest response, in tokens.
        batch_size: Rows generated together.
        temperature: 0 for greedy decoding (the default); above 0, each row is sampled from its own
            seed, so a response does not depend on the rows batched with it.
        top_p: Nucleus sampling threshold when sampling.
        seed: Seed of the sampled responses.
        device: Where to load the model (default: a GPU if there is one, else the CPU). A loaded
            model stays where it is.
        dtype: "auto" (bfloat16 on GPU, float32 on CPU), "float32", "bfloat16" or "float16"; used
            when loading the model.
        limit: Evaluate only the first `limit` rows.
        dataset_name: The dataset's name in the summary and the model-card entry (default: the
            Hub id, or the folder's name for a local dataset).
        show_progress: Show a tqdm bar over rows.
    """
    from tqdm.auto import tqdm

    from .metrics import load_answer_accuracy
    from .rollouts.transformers_engine import TransformersEngine

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    rows, split = _resolve_rows(dataset, split, limit)
    if len(rows) == 0:
        raise ValueError("There are no rows to evaluate")
    model, processor, model_name = _resolve_model(model, processor, device, dtype)
    engine = TransformersEngine(model, processor)
    metric = load_answer_accuracy(keep_in_memory=True)  # before the clock starts (its import is slow)

    start = time.perf_counter()
    evaluated: list[_EvalRow] = []
    with tqdm(total=len(rows), desc="rap-hf eval", unit="row", disable=not show_progress) as bar:
        for batch in rows.iter(batch_size=batch_size):
            prepared = _prepare(batch, processor, model, format_prompt, system_prompt)
            _generate(engine, [r for r in prepared if r.error is None], max_new_tokens=max_new_tokens,
                      temperature=temperature, top_p=top_p, seed=seed)
            for row in prepared:
                row.prompt = None  # its pixel tensors are not needed any more
            evaluated.extend(prepared)
            bar.update(len(prepared))

    # Failed rows are graded too (as empty responses: wrong), so they stay in `total`.
    scores = metric.compute(predictions=[r.response or "" for r in evaluated],
                            references=[r.answer for r in evaluated],
                            choices=[r.choices for r in evaluated], per_row=True)
    seconds = time.perf_counter() - start

    out_rows = _rows_dataset(evaluated, scores["correct_per_row"], scores["formatted_per_row"])
    name = dataset_name or _dataset_name(dataset)
    summary = {
        "accuracy": scores["accuracy"],
        "correct": scores["correct"],
        "total": scores["total"],
        "errors": sum(r.error is not None for r in evaluated),
        "format_rate": scores["format_rate"],
        "model": model_name,
        "dataset": name,
        "split": split,
        "limit": limit,
        "generation": {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "batch_size": batch_size,
            "format_prompt": format_prompt,
            "system_prompt": system_prompt,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "device": str(next(model.parameters()).device),
        },
        "seconds": seconds,
        "rap_hf_version": __version__,
        "eval_results": [
            {
                "task_type": TASK_TYPE,
                "task_name": "Image-Text-to-Text",
                "dataset_type": name,
                "dataset_name": name,
                "dataset_split": split,
                "metric_type": "accuracy",
                "metric_name": "Answer accuracy (boxed answer, rap_hf.verify)",
                "metric_value": scores["accuracy"],
                "metric_args": {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p},
            }
        ],
    }
    return EvalResult(rows=out_rows, summary=summary)


# --------------------------------------------------------------------------- pieces
def _resolve_rows(dataset, split: str | None, limit: int | None = None):
    """(canonical rows with undecoded images, the split's name or None) from what the caller passed.

    `limit` is applied before any conversion, so `--limit 10` on a large source converts 10 rows.
    """
    from datasets import DatasetDict

    from .data.io import load_rows
    from .data.schema import CANONICAL_COLUMNS, images_feature, to_rap_format

    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_rows(os.fspath(dataset), split)
    if isinstance(dataset, DatasetDict):
        if split is None:
            if "test" in dataset:
                split = "test"
            elif len(dataset) == 1:
                split = next(iter(dataset))
            else:
                raise ValueError(f"The dataset has several splits ({', '.join(dataset)}) and none is called "
                                 "'test'; choose one with split=... (--split)")
        if split not in dataset:
            raise ValueError(f"The dataset has no split {split!r}; splits: {', '.join(dataset)}")
        dataset = dataset[split]
    if split is None and getattr(dataset, "split", None) is not None:
        split = str(dataset.split)
    if limit is not None:
        dataset = dataset.select(range(min(max(limit, 0), len(dataset))))
    if not all(c in dataset.column_names for c in CANONICAL_COLUMNS):
        dataset = to_rap_format(dataset)
    # Decoded images would be decoded while iterating, where one corrupt picture stops the whole run.
    if dataset.features["images"] != images_feature():
        dataset = dataset.cast_column("images", images_feature())
    return dataset, split


def _resolve_model(model, processor, device: str | None, dtype: str):
    """(model, processor, the model's name) from a reference or a loaded model."""
    from .modeling import load_vlm, pick_device, pick_dtype

    if isinstance(model, (str, os.PathLike)):
        ref = os.fspath(model)
        target = pick_device(device)
        loaded, loaded_processor = load_vlm(ref, device=target, dtype=pick_dtype(dtype, target))
        return loaded, processor or loaded_processor, ref
    name = str(getattr(model, "name_or_path", "") or type(model).__name__)
    if processor is None:
        from transformers import AutoProcessor

        if not getattr(model, "name_or_path", None):
            raise ValueError("Pass processor= with a loaded model that was not loaded from a folder or the Hub")
        processor = AutoProcessor.from_pretrained(model.name_or_path)
    return model, processor, name


def _dataset_name(dataset) -> str:
    """A Hub id as given; a local folder or file by its name (a path means nothing on a model card)."""
    if isinstance(dataset, (str, os.PathLike)):
        ref = os.fspath(dataset)
        return Path(ref).name if os.path.exists(ref) else ref
    info = getattr(dataset, "info", None)
    return getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset"


def _prepare(batch: dict[str, list], processor, model, format_prompt: str | None,
             system_prompt: str | None) -> list[_EvalRow]:
    """Decode the images and build the prompt of each row; failures become `row.error`."""
    from .data.images import ImageDecodeError, decode_row_images
    from .data.schema import parse_choices
    from .prompts import render_prompt
    from .rollouts.transformers_engine import Prompt, ensure_fits

    choices_column = batch.get("choices")
    rows = []
    for i in range(len(batch["rap_id"])):
        row = _EvalRow(rap_id=str(batch["rap_id"][i]), question=batch["question"][i] or "",
                       answer=(batch["answer"][i] or "").strip())
        rows.append(row)
        row.choices = parse_choices(choices_column[i]) if choices_column is not None else None
        if not row.answer:
            row.error = "empty answer: the row has no ground truth to grade against"
            continue
        try:
            images = decode_row_images(batch["images"][i], row.rap_id)
        except ImageDecodeError as error:
            row.error = str(error)
            continue
        try:
            text = render_prompt(processor, row.question, len(images), with_images=True,
                                 format_prompt=format_prompt, system_prompt=system_prompt)
            row.prompt = Prompt(text, images)
            ensure_fits(processor, model, row.prompt)
        except Exception as error:  # processor failures (odd aspect ratios, ...) are per-row
            row.error = f"prompt could not be built: {type(error).__name__}: {error}"
            row.prompt = None
    return rows


def _generate(engine, rows: list[_EvalRow], *, max_new_tokens: int, temperature: float, top_p: float,
              seed: int) -> None:
    """One response per row, written into `row.response`; a failing batch is retried row by row."""
    from .rollouts.sampling import sample_seed
    from .retry import batch_or_alone

    if not rows:
        return

    def draw(part: list[_EvalRow]) -> list[str]:
        seeds = [[sample_seed(seed, r.rap_id, "eval", 0)] for r in part]
        out = engine.generate([r.prompt for r in part], 1, temperature=temperature, top_p=top_p,
                              max_new_tokens=max_new_tokens, seed=seed, sample_seeds=seeds)
        return [responses[0] for responses in out]

    for row, response in zip(rows, batch_or_alone(rows, draw, "generation")):
        row.response = response


def _rows_dataset(rows: list[_EvalRow], correct: list[bool], formatted: list[bool]):
    from datasets import Dataset, Features, List, Value

    features = Features({
        "rap_id": Value("string"),
        "question": Value("string"),
        "answer": Value("string"),
        "choices": List(Value("string")),
        "response": Value("string"),
        "correct": Value("bool"),
        "formatted": Value("bool"),
        "error": Value("string"),
    })
    return Dataset.from_dict(
        {
            "rap_id": [r.rap_id for r in rows],
            "question": [r.question for r in rows],
            "answer": [r.answer for r in rows],
            "choices": [r.choices for r in rows],
            "response": [r.response for r in rows],
            "correct": correct,
            "formatted": formatted,
            "error": [r.error for r in rows],
        },
        features=features,
    )


# --------------------------------------------------------------------------- command line
def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of `rap-hf eval`."""
    parser.add_argument("--model", required=True, help="The VLM to evaluate: a Hub id or a local folder")
    parser.add_argument("--dataset", required=True,
                        help="Benchmark rows: a save_to_disk folder, a data file or a Hub id (converted to "
                             "canonical rows if needed)")
    parser.add_argument("--split", help="Split to evaluate (default: 'test' when the dataset has several splits)")
    parser.add_argument("--output", required=True, help=f"Folder for {ROWS_FILE} and {SUMMARY_FILE}")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="Longest response, in tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="Rows generated together")
    parser.add_argument("--limit", type=int, help="Evaluate only the first N rows")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy decoding (default)")
    parser.add_argument("--top-p", type=float, default=1.0, help="Nucleus sampling threshold when sampling")
    parser.add_argument("--seed", type=int, default=0, help="Seed of sampled responses")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: a GPU if there is one)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--format-prompt", default=FORMAT_PROMPT,
                        help="Instruction appended to each question (default: the paper's think + boxed "
                             "prompt; '' for none)")
    parser.add_argument("--system-prompt", help="Optional system turn")
    parser.add_argument("--dataset-name", help="Dataset name for the summary and model card (default: the Hub id "
                                               "or the folder's name)")
    return parser


def run_eval_command(args: argparse.Namespace) -> int:
    """`rap-hf eval`: evaluate, write the files, print the summary and where it went."""
    result = evaluate_model(
        args.model,
        args.dataset,
        split=args.split,
        format_prompt=args.format_prompt or None,
        system_prompt=args.system_prompt,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        limit=args.limit,
        dataset_name=args.dataset_name,
    )
    paths = result.save(args.output)
    print(result.table())
    print(f"Wrote {len(result.rows)} rows to {paths['rows']} and the summary to {paths['summary']}")
    return 0
