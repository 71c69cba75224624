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

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from . import __version__
from .config import EvalConfig
from .rows import PreparedRow, prepare_rows

ROWS_FILE = "rows.jsonl"
SUMMARY_FILE = "summary.json"
# The Hub task of an image + question -> text answer model (model-index `task.type`).
TASK_TYPE = "image-text-to-text"


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
    config: EvalConfig | None = None,
    mapping: Mapping[str, Any] | None = None,
    show_progress: bool = True,
    **settings: Any,
) -> EvalResult:
    """Generate one answer per row and grade it with the `answer_accuracy` metric.

    Args:
        model: A Hub id or local folder (loaded with `rap_hf.modeling.load_vlm`), or a loaded
            `transformers` model (then pass `processor`, or it is loaded from `model.name_or_path`).
        dataset: A `Dataset`, a `DatasetDict`, or what `rap_hf.data.io.load_rows` reads (a
            `save_to_disk` folder, a data file, a Hub id). Rows that are not canonical go through
            `to_rap_format` (preset auto), as `rap_hf.data.conversion.as_canonical` decides.
        split: The split to evaluate. Without one, a dataset of several splits uses `test` if it
            has one (and is an error otherwise).
        processor: The model's processor, when `model` is a loaded model.
        config: How the model answers (`rap_hf.EvalConfig`: tokens, batch size, sampling, prompts,
            device, dtype, limit, the dataset's name); defaults when None.
        mapping: Keyword arguments of `to_rap_format` (`preset`, `question`, `answer`, `images`,
            `id`, `choices`, `image_root`) for rows that are not canonical yet; a mapping that maps
            anything is applied to canonical rows too.
        show_progress: Show a tqdm bar over rows.
        **settings: `EvalConfig` fields overriding `config`, e.g. `max_new_tokens=512`.
    """
    from tqdm.auto import tqdm

    from .metrics import load_answer_accuracy
    from .rollouts.transformers_engine import TransformersEngine

    config = dataclasses.replace(config or EvalConfig(), **settings)
    rows, split = _resolve_rows(dataset, split, config.limit, mapping)
    if len(rows) == 0:
        raise ValueError("There are no rows to evaluate")
    served = None
    if config.uses_server:  # the model is the name the servers give it; they render the prompts
        from .scoring.served import ServedModel

        served = ServedModel(str(model), config)
        engine, model, processor, model_name = served.engine(), None, None, served.name
    else:
        model, processor, model_name = _resolve_model(model, processor, config)
        engine = TransformersEngine(model, processor)
    metric = load_answer_accuracy(keep_in_memory=True)  # before the clock starts (its import is slow)

    start = time.perf_counter()
    evaluated: list[PreparedRow] = []
    responses: list[str | None] = []
    with tqdm(total=len(rows), desc="rap-hf eval", unit="row", disable=not show_progress) as bar:
        for batch in rows.iter(batch_size=config.batch_size):
            # Text-only benchmark rows are fine here: the model answers with whatever images a row has.
            prepared = prepare_rows(batch, processor, model=model, format_prompt=config.format_prompt,
                                    system_prompt=config.system_prompt, text_prompt=False, require_image=False)
            responses += _generate(engine, prepared, config)
            for row in prepared:
                row.image_prompt = None  # its pixel tensors are not needed any more
            evaluated.extend(prepared)
            bar.update(len(prepared))
    if served is not None:
        served.close()

    # Failed rows are graded too (as empty responses: wrong), so they stay in `total`.
    scores = metric.compute(predictions=[r or "" for r in responses],
                            references=[r.answer for r in evaluated],
                            choices=[r.choices for r in evaluated], per_row=True)
    seconds = time.perf_counter() - start

    out_rows = _rows_dataset(evaluated, responses, scores["correct_per_row"], scores["formatted_per_row"])
    name = config.dataset_name or _dataset_name(dataset)
    errors = sum(r.error is not None for r in evaluated)
    summary = _summary(scores, config, model, model_name, name, split, errors=errors, seconds=seconds)
    return EvalResult(rows=out_rows, summary=summary)


# --------------------------------------------------------------------------- pieces
def _resolve_rows(dataset, split: str | None, limit: int | None = None, mapping: Mapping[str, Any] | None = None):
    """(canonical rows with undecoded images, the split's name or None) from what the caller passed.

    `limit` is applied before any conversion, so `--limit 10` on a large source converts 10 rows.
    """
    from datasets import DatasetDict

    from .data.canonical import images_feature
    from .data.conversion import as_canonical
    from .data.io import load_rows

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
    dataset = as_canonical(dataset, mapping)
    # Decoded images would be decoded while iterating, where one corrupt picture stops the whole run.
    if dataset.features["images"] != images_feature():
        dataset = dataset.cast_column("images", images_feature())
    return dataset, split


def _summary(scores: Mapping[str, Any], config: EvalConfig, model, model_name: str, name: str, split: str | None,
             *, errors: int, seconds: float) -> dict[str, Any]:
    """The summary of an evaluation (`EvalResult.summary`): the metric's scores, what was evaluated
    and how, and `eval_results` for a model card."""
    return {
        "accuracy": scores["accuracy"],
        "correct": scores["correct"],
        "total": scores["total"],
        "errors": errors,
        "format_rate": scores["format_rate"],
        "model": model_name,
        "dataset": name,
        "split": split,
        "limit": config.limit,
        "generation": {
            "max_new_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "seed": config.seed,
            "batch_size": config.batch_size,
            "format_prompt": config.format_prompt,
            "system_prompt": config.system_prompt,
            **_where(model, config),
            "min_pixels": config.min_pixels,
            "max_pixels": config.max_pixels,
            "processor_kwargs": config.processor_kwargs,
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
                "metric_args": {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                                "top_p": config.top_p},
            }
        ],
    }


def _resolve_model(model, processor, config: EvalConfig):
    """(model, processor, the model's name) from a reference or a loaded model; a processor the
    scorer loads gets `config`'s pixel bounds and processor_kwargs, one passed in is used as it is."""
    from .modeling import load_processor, load_vlm, pick_device, pick_dtype

    if isinstance(model, (str, os.PathLike)):
        ref = os.fspath(model)
        target = pick_device(config.device)
        loaded, loaded_processor = load_vlm(ref, device=target, dtype=pick_dtype(config.dtype, target),
                                            processor_settings=config.processor_settings())
        return loaded, processor or loaded_processor, ref
    name = str(getattr(model, "name_or_path", "") or type(model).__name__)
    if processor is None:
        if not getattr(model, "name_or_path", None):
            raise ValueError("Pass processor= with a loaded model that was not loaded from a folder or the Hub")
        processor = load_processor(model.name_or_path, **config.processor_settings())
    return model, processor, name


def _where(model, config: EvalConfig) -> dict[str, Any]:
    """Where the answers were generated: the local model's dtype and device, or the servers."""
    if model is None:
        return {"backend": "server", "server_urls": list(config.server_urls or []), "server_n": config.server_n}
    return {"dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "device": str(next(model.parameters()).device)}


def _dataset_name(dataset) -> str:
    """A Hub id as given; a local folder or file by its name (a path means nothing on a model card)."""
    if isinstance(dataset, (str, os.PathLike)):
        ref = os.fspath(dataset)
        return Path(ref).name if os.path.exists(ref) else ref
    info = getattr(dataset, "info", None)
    return getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset"


def _generate(engine, rows: list[PreparedRow], config: EvalConfig) -> list[str | None]:
    """One response per row (None for a row that failed, with its `error` set); a failing batch is
    retried row by row."""
    from .retry import batch_or_alone
    from .rollouts.sampling import sample_seed

    live = [r for r in rows if r.error is None]

    def draw(part: list[PreparedRow]) -> list[str]:
        seeds = [[sample_seed(config.seed, r.rap_id, "eval", 0)] for r in part]
        out = engine.generate([r.image_prompt for r in part], 1, temperature=config.temperature, top_p=config.top_p,
                              max_new_tokens=config.max_new_tokens, seed=config.seed, sample_seeds=seeds)
        return [responses[0] for responses in out]

    drawn = dict(zip((r.index for r in live), batch_or_alone(live, draw, "generation") if live else []))
    return [drawn.get(r.index) for r in rows]


def _rows_dataset(rows: list[PreparedRow], responses: list[str | None], correct: list[bool], formatted: list[bool]):
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
            "response": responses,
            "correct": correct,
            "formatted": formatted,
            "error": [r.error for r in rows],
        },
        features=features,
    )
