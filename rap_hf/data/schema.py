"""Canonical RAP rows and `to_rap_format`, the adapter from common dataset layouts.

Canonical columns (docs/method.md, "Inputs"): `rap_id` (str, stable), `question` (str, image
placeholders removed, choices rendered in), `answer` (str; the option letter for multiple choice),
`images` (`List(Image(decode=False))`). Every other source column is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..prompts import FORMAT_PROMPT
from .images import ImageRef, to_image_ref

logger = logging.getLogger(__name__)

CANONICAL_COLUMNS = ("rap_id", "question", "answer", "images")
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ID_COLUMNS = ("rap_id", "id", "pid", "question_id", "qid", "uid", "sample_id")
IMAGE_COLUMNS = ("images", "image", "decoded_image")

# `<image>`, `<image 1>`, `<image_2>`, `<ImageHere>` and Qwen's vision tokens, wherever they sit.
_PLACEHOLDER = re.compile(
    r"<\s*image(?:[ _]?\d+)?\s*>|<ImageHere>|<\|vision_start\|>(?:<\|image_pad\|>)*<\|vision_end\|>|<\|image_pad\|>",
    re.IGNORECASE,
)


def images_feature():
    """The canonical `images` feature: a list of undecoded images."""
    from datasets import Image, List

    return List(Image(decode=False))


@dataclass(frozen=True)
class Preset:
    """How one known layout maps to canonical columns."""

    name: str
    required: tuple[str, ...]
    question: str | None = None
    answer: tuple[str, ...] = ("answer",)
    images: tuple[str, ...] = IMAGE_COLUMNS
    choices: str | None = None
    messages: str | None = None  # column holding chat messages to take the question from
    id: tuple[str, ...] = ID_COLUMNS
    """Candidate columns; a dotted name ("reward_model.ground_truth") reads a field of a struct column."""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("rap", required=CANONICAL_COLUMNS, question="question", images=("images",)),
        # TRL's conversational layout: `prompt` messages + `image`/`images`, answer in `solution`.
        Preset("trl", required=("prompt",), messages="prompt", answer=("solution", "answer")),
        # MM-Eureka's dataset.jsonl: `message` (JSON chat with image paths), `answer`, `id`.
        Preset("mm_eureka", required=("message", "answer"), messages="message"),
        # EasyR1 / hiyouga/geometry3k: `problem` with `<image>` placeholders, `answer`, `images`.
        Preset("easyr1", required=("problem", "answer"), question="problem"),
        # verl's RL layout (what `to_verl` and verl's geometry3k preprocessing write).
        Preset("verl", required=("prompt", "reward_model"), messages="prompt",
               answer=("reward_model.ground_truth",), id=("extra_info.rap_id", *ID_COLUMNS)),
        # MathVista-style: `question`, `answer`, `image`/`decoded_image`, optional `choices`, `pid`.
        Preset("mathvista", required=("question", "answer"), question="question", choices="choices",
               images=("decoded_image", "images", "image")),
    )
}


def strip_image_placeholders(text: str) -> str:
    """Remove image placeholder tokens and tidy the whitespace they leave behind."""
    text = _PLACEHOLDER.sub(" ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def parse_choices(value: Any) -> list[str] | None:
    """Choices as a list of strings, from a list, a `{"A": ...}` dict or a JSON/Python list string."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            import ast

            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        choices = [str(c).strip() for c in value if c is not None]
        return choices or None
    return None


def render_question(question: str, choices: Sequence[str] | None = None) -> str:
    """The canonical question: placeholders removed, then the options as `(A) ...` lines."""
    question = strip_image_placeholders(question)
    if choices:
        lines = [f"({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(choices)]
        question = question + "\nChoices:\n" + "\n".join(lines)
    return question


def canonical_answer(answer: Any, choices: Sequence[str] | None = None) -> str:
    """The answer as a string; with choices, the option letter (boxed in multiple-choice answers:
    docs/method.md, "Rollouts")."""
    if answer is None:
        return ""
    if isinstance(answer, (list, tuple)):
        answer = answer[0] if len(answer) == 1 else ", ".join(map(str, answer))
    text = str(answer).strip()
    if choices:
        letters = OPTION_LETTERS[: len(choices)]
        bare = text.strip("()").strip()
        if len(bare) == 1 and bare.upper() in letters:
            return bare.upper()
        for letter, choice in zip(letters, choices):
            if text == choice or text.lower() == choice.lower():
                return letter
    return text


def content_hash(question: str, answer: str, images: Sequence[ImageRef]) -> str:
    """A stable id from a row's content (used when the source has no id column)."""
    digest = hashlib.sha1()
    digest.update(question.encode())
    digest.update(b"\0")
    digest.update(answer.encode())
    for ref in images:
        digest.update(b"\0")
        if ref.get("bytes") is not None:
            digest.update(hashlib.sha1(ref["bytes"]).digest())
        else:
            digest.update(str(ref.get("path")).encode())
    return "h-" + digest.hexdigest()[:16]


def _messages_question(messages: Any) -> tuple[str, list[Any]]:
    """The last user turn's text and the images referenced in its content blocks."""
    if isinstance(messages, str):
        messages = json.loads(messages)
    if isinstance(messages, dict):
        messages = [messages]
    users = [m for m in messages or [] if m.get("role") == "user"]
    if not users:
        raise ValueError("no user message in the conversation")
    content = users[-1].get("content")
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for block in content or []:
        kind = block.get("type")
        if kind == "text" or (kind is None and "text" in block):
            texts.append(block.get("text") or "")
        elif kind in ("image", "image_url") or "image" in block:
            ref = block.get("image") or block.get("image_url") or block.get("path") or block.get("url")
            if isinstance(ref, dict):
                ref = ref.get("url") or ref.get("path") or ref
            if ref is not None:
                images.append(ref)
    return "\n".join(t for t in texts if t), images


def _without_format_prompt(text: str) -> str:
    """Drop the paper's format instruction when a source prompt already ends with it."""
    text = text.rstrip()
    suffix = FORMAT_PROMPT.strip()
    return text[: -len(suffix)].rstrip() if text.endswith(suffix) else text


def _first_present(candidates: Sequence[str], columns: Sequence[str]) -> str | None:
    return next((c for c in candidates if c.split(".", 1)[0] in columns), None)


def _value(batch: dict[str, list], path: str, i: int) -> Any:
    """`batch[path][i]`, following a dotted path into struct columns (None where a field is missing)."""
    head, *fields = path.split(".")
    value = batch[head][i]
    for field in fields:
        value = value.get(field) if isinstance(value, dict) else None
    return value


def detect_preset(columns: Sequence[str]) -> Preset | None:
    """The first preset whose required columns are all present (in `PRESETS` order)."""
    for preset in PRESETS.values():
        if all(c in columns for c in preset.required):
            if preset.name == "trl" and not _first_present(preset.answer, columns):
                continue
            return preset
    return None


def _undecoded(feature):
    """The same feature with every `Image` set to `decode=False` (no pixels decoded in maps)."""
    from datasets import Image, List, Sequence as HFSequence

    if isinstance(feature, Image):
        return Image(decode=False)
    if isinstance(feature, List):
        return List(_undecoded(feature.feature), length=feature.length)
    if isinstance(feature, HFSequence):
        return HFSequence(_undecoded(feature.feature), length=feature.length)
    if isinstance(feature, dict):
        return {k: _undecoded(v) for k, v in feature.items()}
    return feature


def _mapping_error(columns: Sequence[str]) -> ValueError:
    known = "\n".join(f"  - {p.name}: needs {', '.join(p.required)}" for p in PRESETS.values())
    return ValueError(
        f"Cannot recognise the dataset layout. Columns found: {', '.join(columns) or '(none)'}.\n"
        f"Known presets:\n{known}\n"
        "Map your columns explicitly, e.g. to_rap_format(ds, question='my_question', answer='my_answer', "
        "images='my_image', id='my_id')."
    )


def to_rap_format(
    ds,
    preset: str = "auto",
    question: str | None = None,
    answer: str | None = None,
    images: str | None = None,
    id: str | None = None,
    *,
    choices: str | None = None,
    image_root: str | None = None,
    num_proc: int | None = None,
):
    """Convert a dataset to canonical RAP rows, keeping every source column.

    Args:
        ds: A `datasets.Dataset` (or a `DatasetDict`, converted split by split).
        preset: "auto" (detect from the columns), or one of `PRESETS`: "rap" (already canonical),
            "trl", "mm_eureka", "easyr1", "mathvista".
        question: Source column of the question text (overrides the preset).
        answer: Source column of the ground-truth answer.
        images: Source column of the image(s): one image, a list, paths or bytes.
        id: Source column of a stable row id; without one, `rap_id` is a hash of the content.
        choices: Source column of multiple-choice options, rendered into the question as
            `(A) ...` lines; an answer equal to an option becomes its letter.
        image_root: Folder that relative image paths are resolved against.
        num_proc: Processes for the conversion `map`.

    Returns:
        The dataset with `rap_id`, `question`, `answer`, `images` first. A source column whose name a
        canonical column takes, and whose values the conversion changed, is kept as
        `source_<name>`; the column the images came from is moved into `images` (not copied, so
        image bytes are not stored twice). Images stay undecoded (`Image(decode=False)`).

    Raises:
        ValueError: the layout is not recognised (the message lists the columns found and the
            arguments that map them), or a named column does not exist.
    """
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        return DatasetDict(
            {
                split: to_rap_format(part, preset, question, answer, images, id, choices=choices,
                                     image_root=image_root, num_proc=num_proc)
                for split, part in ds.items()
            }
        )

    columns = list(ds.column_names)
    for arg, value in (("question", question), ("answer", answer), ("images", images), ("id", id),
                       ("choices", choices)):
        if value is not None and value not in columns:
            raise ValueError(f"{arg}={value!r} is not a column of the dataset. Columns found: {', '.join(columns)}")

    if preset == "auto":
        spec = detect_preset(columns)
        if spec is None and not (question and answer):
            raise _mapping_error(columns)
    elif preset in PRESETS:
        spec = PRESETS[preset]
        missing = [c for c in spec.required if c not in columns]
        if missing and not (question and answer):
            raise ValueError(
                f"Preset {preset!r} needs columns {', '.join(spec.required)}; missing {', '.join(missing)}. "
                f"Columns found: {', '.join(columns)}"
            )
    else:
        raise ValueError(f"Unknown preset {preset!r}; choose 'auto' or one of {', '.join(PRESETS)}")

    # Resolve which source column feeds each canonical one (explicit arguments win).
    messages_col = spec.messages if spec and question is None else None
    question_col = question or (spec.question if spec else None)
    if question_col is None and messages_col is None:
        raise _mapping_error(columns)
    answer_col = answer or _first_present(spec.answer if spec else ("answer",), columns)
    if answer_col is None:
        raise ValueError(f"No answer column found. Columns found: {', '.join(columns)}; pass answer='...'.")
    image_col = images or _first_present(spec.images if spec else IMAGE_COLUMNS, columns)
    choices_col = choices or (spec.choices if spec and spec.choices in columns else None)
    id_col = id or _first_present(spec.id if spec else ID_COLUMNS, columns)

    if image_col is not None:
        ds = ds.cast_column(image_col, _undecoded(ds.features[image_col]))

    produced = ["rap_id", "question", "answer", "images"]
    # Options named by another column are also written as `choices`, where the scorer looks for them.
    emit_choices = choices_col is not None and choices_col != "choices" and "choices" not in columns
    if emit_choices:
        produced.append("choices")
    # A source column whose name we overwrite is kept as source_<name> (dropped again below
    # when the conversion left every value unchanged).
    shadowed = [c for c in ("rap_id", "question", "answer") if c in columns]

    def convert(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in produced}
        for name in shadowed:
            out[f"source_{name}"] = list(batch[name])
        for i, index in enumerate(indices):
            try:
                rid, q, a, refs, row_choices = convert_row(batch, i)
            except Exception as error:  # name the row: a bad one must not be a mystery in a million
                raise ValueError(
                    f"to_rap_format: row {index} cannot be read ({type(error).__name__}: {error}). "
                    "Fix or drop it (e.g. ds.filter(...)) and convert again."
                ) from error
            out["rap_id"].append(rid)
            out["question"].append(q)
            out["answer"].append(a)
            out["images"].append(refs)
            if emit_choices:
                out["choices"].append(row_choices)
        return out

    def convert_row(batch: dict[str, list], i: int) -> tuple[str, str, str, list[ImageRef], list[str] | None]:
        """(rap_id, question, answer, image references, choices) of row i of a batch."""
        row_images: list[Any] = []
        if messages_col is not None:
            text, message_images = _messages_question(batch[messages_col][i])
            row_images.extend(message_images)
        else:
            text = batch[question_col][i] or ""
        text = _without_format_prompt(str(text))
        if image_col is not None:
            value = batch[image_col][i]
            source_images = value if isinstance(value, (list, tuple)) else [value]
            # Prefer the image column; messages may carry only placeholder references.
            if any(v is not None for v in source_images):
                row_images = list(source_images)
        refs = [r for r in (to_image_ref(v, image_root) for v in row_images) if r is not None]
        row_choices = parse_choices(batch[choices_col][i]) if choices_col else None
        q = render_question(str(text), row_choices)
        a = canonical_answer(_value(batch, answer_col, i), row_choices)
        source_id = _value(batch, id_col, i) if id_col else None
        rid = str(source_id) if source_id not in (None, "") else content_hash(q, a, refs)
        return rid, q, a, refs, row_choices

    from datasets import Features, List, Value

    features = {name: feat for name, feat in ds.features.items() if name != image_col}
    features.update({"rap_id": Value("string"), "question": Value("string"), "answer": Value("string"),
                     "images": images_feature()})
    if emit_choices:
        features["choices"] = List(Value("string"))
    for name in shadowed:
        features[f"source_{name}"] = ds.features[name]
    remove = [image_col] if image_col is not None and image_col != "images" else []
    converted = ds.map(
        convert,
        batched=True,
        with_indices=True,
        features=Features(features),
        remove_columns=remove,
        num_proc=num_proc,
        desc="to_rap_format",
    )
    converted = _drop_unchanged_sources(converted, shadowed)
    converted = _deduplicate_ids(converted)
    _warn_missing_answers(converted)
    rest = [c for c in converted.column_names if c not in CANONICAL_COLUMNS]
    return converted.select_columns([*CANONICAL_COLUMNS, *rest])


def _drop_unchanged_sources(ds, shadowed: Sequence[str]):
    """Remove `source_<name>` copies that equal their canonical column everywhere."""
    import pyarrow.compute as pc

    drop = []
    table = ds.with_format("arrow")[:]  # zero-copy view of the columns
    for name in shadowed:
        source = table.column(f"source_{name}")
        canonical = table.column(name)
        try:
            same = pc.all(pc.fill_null(pc.equal(pc.cast(source, canonical.type), canonical), False)).as_py()
        except Exception:  # uncastable types: they differ
            same = False
        if same or len(ds) == 0:
            drop.append(f"source_{name}")
    return ds.remove_columns(drop) if drop else ds


def _deduplicate_ids(ds):
    """Make `rap_id` unique: repeats get `#2`, `#3`, ... in dataset order, with a warning."""
    ids = ds["rap_id"]
    counts = Counter(ids)
    repeated = {k for k, v in counts.items() if v > 1}
    if not repeated:
        return ds
    seen: Counter[str] = Counter()
    new_ids = []
    for rid in ids:
        seen[rid] += 1
        new_ids.append(rid if seen[rid] == 1 else f"{rid}#{seen[rid]}")
    logger.warning(
        "%d rap_id values occur more than once (e.g. %s); later occurrences were suffixed with #2, #3, ...",
        len(repeated), ", ".join(sorted(repeated)[:3]),
    )
    column_order = ds.column_names
    ds = ds.remove_columns("rap_id").add_column("rap_id", new_ids)
    return ds.select_columns(column_order)


def _warn_missing_answers(ds) -> None:
    import pyarrow.compute as pc

    answers = ds.with_format("arrow")[:].column("answer")
    empty = pc.sum(pc.equal(answers, "")).as_py() or 0
    if empty:
        logger.warning(
            "%d of %d rows have an empty answer; scoring will mark them with rap_error instead of dropping them",
            empty, len(ds),
        )


def rap_ids_digest(rap_ids) -> str:
    """SHA-256 of the row ids in order: whether two runs see the same rows (a dataset's own
    fingerprint is not stable across processes when rows were converted on the fly)."""
    return hashlib.sha256("\n".join(str(i) for i in rap_ids).encode()).hexdigest()


def ensure_canonical(ds, where: str = "this function") -> None:
    """Raise a clear error when `ds` lacks canonical columns."""
    missing = [c for c in CANONICAL_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{where} needs canonical RAP rows; missing columns {', '.join(missing)}. "
            "Convert the dataset first with rap_hf.to_rap_format(ds)."
        )

