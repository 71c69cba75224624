"""Canonical RAP rows and `to_rap_format`, the adapter from the layouts public VLM sets use.

Canonical columns (docs/method.md, "Inputs"): `rap_id` (str, stable), `question` (str, image
placeholders resolved, choices rendered in), `answer` (str; the option letter for multiple choice),
`images` (`List(Image(decode=False))`). Every other source column is kept.

Nothing is dropped silently: a source column that looks like images but was not used, rows that
end with no image, image files that do not exist, relative paths with no folder to resolve them
against and multiple-choice answers that match no option are logged as warnings with counts, and
`preset="auto"` refuses a conversion that would drop every image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigMixin
from ..prompts import FORMAT_PROMPT
from .images import (
    ImageRef,
    is_unresolved_path,
    keep_missing_file,
    looks_like_image_path,
    names_missing_file,
    parse_listed,
    to_image_refs,
)

logger = logging.getLogger(__name__)

CANONICAL_COLUMNS = ("rap_id", "question", "answer", "images")
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Id columns, first present wins: MathVista `pid`, ViRL39K `qid`, MathVerse `sample_index`, ...
ID_COLUMNS = ("rap_id", "id", "pid", "qid", "question_id", "uid", "sample_id", "sample_index", "problem_id",
              "idx", "index")
# Image columns by name, first present wins (numbered `image_1` .. `image_N` columns come before them).
IMAGE_COLUMNS = ("images", "decoded_image", "image", "img", "imgs", "image_path", "image_paths", "image_file",
                 "image_files", "file_name", "file_names")
CHOICE_COLUMNS = ("choices", "options")
# MMMU's `image_1` .. `image_7` (also `img_2`, `image 3`, `picture_4`), taken in numeric order.
NUMBERED_IMAGE_COLUMN = re.compile(r"^(?:image|img|picture)[ _-]?(\d+)$", re.IGNORECASE)
# Columns that hold the same pictures as an image column, so not using them loses nothing:
# MathVista's `image` is the relative path of its `decoded_image`.
DUPLICATE_IMAGE_COLUMNS = {"decoded_image": ("image",)}

# `<image>`, `<image 1>`, `<image_2>`, `<ImageHere>` and Qwen's vision tokens, wherever they sit.
_PLACEHOLDER = re.compile(
    r"<\s*image(?:[ _-]?(?P<number>\d+))?\s*>|<ImageHere>|<\|vision_start\|>(?:<\|image_pad\|>)*<\|vision_end\|>"
    r"|<\|image_pad\|>",
    re.IGNORECASE,
)
_REMOVED = "\x00"  # marks a removed placeholder until the whitespace around it is tidied
_SENTENCE_END = ".?!"
# A placeholder followed by one of these (or a lower-case word) is part of its sentence.
_CONTINUES = ",.;:?!)]}"
# A placeholder ending a line after one of these words is the word's object ("... shown in <image 1>").
_NEEDS_OBJECT = {"in", "of", "at", "on", "from", "to", "and", "or", "with", "by", "between", "for", "than", "like",
                 "see", "under", "into", "onto", "within", "versus", "vs", "vs.", "per"}
# A placeholder right after one of these words is the picture the word already names ("the figure <image>").
_NAMES_PICTURE = {"figure", "fig", "fig.", "diagram", "image", "picture", "photo", "graph", "chart", "plot", "table",
                  "map", "below", "above", "following"}


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
    images: tuple[str, ...] | None = None
    """Image columns to look for; None: any layout's (numbered `image_k` columns, then `IMAGE_COLUMNS`)."""
    choices: tuple[str, ...] = CHOICE_COLUMNS
    """Option columns to look for; () where the question already holds its options."""
    messages: str | None = None  # column holding chat messages to take the question from
    id: tuple[str, ...] = ID_COLUMNS
    """Candidate columns; a dotted name ("reward_model.ground_truth") reads a field of a struct column."""
    context: str | None = None
    """Column prefixed to the question as `Context: ...` when not empty (ScienceQA's `hint`)."""
    hints: bool = True
    """Append MathVista's `unit` and `precision` to the question when those columns exist."""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("rap", required=CANONICAL_COLUMNS, question="question", images=("images",), choices=(), hints=False),
        # TRL's conversational layout: `prompt` messages + `image`/`images`, answer in `solution`.
        Preset("trl", required=("prompt",), messages="prompt", answer=("solution", "answer"),
               images=("images", "image"), choices=(), hints=False),
        # MM-Eureka's dataset.jsonl: `message` (JSON chat with image paths), `answer`, `id`.
        Preset("mm_eureka", required=("message", "answer"), messages="message", images=("images", "image"),
               choices=()),
        # EasyR1 / hiyouga/geometry3k / ThinkLite-VL: `problem` with `<image>` placeholders, `answer`, `images`.
        Preset("easyr1", required=("problem", "answer"), question="problem"),
        # verl's RL layout (what `to_verl` and verl's geometry3k preprocessing write).
        Preset("verl", required=("prompt", "reward_model"), messages="prompt",
               answer=("reward_model.ground_truth",), images=("images",), choices=(), hints=False,
               id=("extra_info.rap_id", *ID_COLUMNS)),
        # ScienceQA (derek-thomas/ScienceQA, lmms-lab/ScienceQA): `choices` list, integer `answer`, `hint`.
        Preset("scienceqa", required=("question", "choices", "answer", "hint"), question="question", context="hint"),
        # `question` + `answer` with any image and option columns: MathVista, MMMU (`options`,
        # `image_1` ..), MathVerse, ViRL39K (`image` list of paths), a CSV of `image_path`s.
        Preset("mathvista", required=("question", "answer"), question="question"),
    )
}
PresetName = Literal["auto", "rap", "trl", "mm_eureka", "easyr1", "verl", "scienceqa", "mathvista"]


@dataclass(kw_only=True)
class ColumnMapping(ConfigMixin):
    """Which source columns give the canonical ones (the arguments of `to_rap_format`).

    Every command that reads rows (`rap-hf convert`, `score`, `eval`, `quickstart --dataset`) takes
    these fields as its flags; `rap_format_kwargs()` gives them as `to_rap_format` keyword arguments.
    """

    preset: PresetName = field(default="auto", metadata={
        "help": "Source layout: auto (detect from the columns) or rap, trl, mm_eureka, easyr1, verl, scienceqa, "
                "mathvista. The column flags below override it."})
    question: str | None = field(default=None, metadata={"help": "Source column of the question text."})
    answer: str | None = field(default=None, metadata={
        "help": "Source column of the ground-truth answer (an option's text, letter or 0-based index with options)."})
    images: str | None = field(default=None, metadata={
        "help": "Source column(s) of the images, comma-separated for several in order (e.g. image_1,image_2): "
                "images, paths, bytes or lists of them."})
    id: str | None = field(default=None, metadata={
        "help": "Source column of a stable row id (default: the first of id, pid, qid, question_id, ...; else a "
                "content hash)."})
    choices: str | None = field(default=None, metadata={
        "help": "Source column of the multiple-choice options (a list, a list written as text, or a dict), rendered "
                "into the question as (A) ... lines."})
    image_root: str | None = field(default=None, metadata={
        "help": "Folder relative image paths are resolved against (default: the folder of the data file the rows "
                "were read from)."})

    def __post_init__(self) -> None:
        if self.preset != "auto" and self.preset not in PRESETS:
            raise ValueError(f"Unknown preset {self.preset!r}; choose 'auto' or one of {', '.join(PRESETS)}")

    @property
    def explicit(self) -> bool:
        """Whether anything differs from the default (auto-detect every column)."""
        return self.rap_format_kwargs() != ColumnMapping().rap_format_kwargs()

    def rap_format_kwargs(self) -> dict[str, Any]:
        """The mapping as `to_rap_format` keyword arguments (`images` split at commas)."""
        images = self.images
        if images is not None and "," in images:
            images = [name.strip() for name in images.split(",") if name.strip()]
        return {"preset": self.preset, "question": self.question, "answer": self.answer, "images": images,
                "id": self.id, "choices": self.choices, "image_root": self.image_root}


# --------------------------------------------------------------------------- text
def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\uff00" <= char <= "\uffef"


def _inline(before: str, after: str) -> bool:
    """Whether a placeholder between `before` and `after` (its line, other placeholders removed) is a
    word of its sentence ("as shown in <image 1>.") rather than a marker beside it ("<image>\\nFind x")."""
    if (before and _is_cjk(before[-1])) or (after and _is_cjk(after[0])):
        return False  # no English words inside Chinese or Japanese text: the marker is dropped
    last_word = before.split()[-1].lower() if before.split() else ""
    if last_word.strip("(") in _NAMES_PICTURE:
        return False
    if after and (after[0] in _CONTINUES or after[0].islower()):
        return True
    return not after and last_word.lstrip("(") in _NEEDS_OBJECT


def _tidy(text: str) -> str:
    """Remove the marks of removed placeholders with the whitespace they leave behind."""
    run = f"{_REMOVED}(?:[ \\t]*{_REMOVED})*"
    text = re.sub(rf"(?m)^[ \t]*{run}[ \t]*(?:\n|\Z)", "", text)  # a line that was only placeholders
    text = re.sub(rf"(?m)^[ \t]*{run}[ \t]*", "", text)
    text = re.sub(rf"(?m)[ \t]*{run}[ \t]*$", "", text)
    text = re.sub(rf"[ \t]*{run}[ \t]*(?=[,.;:?!)\]])", "", text)
    # Between words: one space, none beside Chinese or Japanese text (which has no spaces).
    return re.sub(rf"[ \t]*{run}[ \t]*", lambda m: _join(text, m), text).strip()


def _join(text: str, match: re.Match) -> str:
    before = text[match.start() - 1] if match.start() else ""
    after = text[match.end()] if match.end() < len(text) else ""
    return "" if (before and _is_cjk(before)) or (after and _is_cjk(after)) else " "


def strip_image_placeholders(text: str, *, count: int | None = None, positions: Mapping[int, int] | None = None,
                             option: bool = False) -> str:
    """Resolve the image placeholders of a text; a text without any is returned exactly as written.

    A placeholder beside the text (`<image>` on its own line, before a sentence, after a question
    mark) is removed. One inside a sentence becomes words, so no sentence is left broken: `as shown
    in <image 1>.` reads `as shown in image 1.`, and a bare `<image>` reads `the image` (`image k`,
    counting bare placeholders, when the row has several images).

    Args:
        count: How many images the row has (None: unknown).
        positions: `<image k>` -> the image's 1-based position in the row (MMMU numbers its columns
            `image_1` .. `image_7` and leaves some empty); unmapped numbers are kept.
        option: The text is a multiple-choice option: a placeholder is always the option's words.
    """
    matches = list(_PLACEHOLDER.finditer(text))
    if not matches:
        return text
    pieces, last, bare = [], 0, 0
    for match in matches:
        number = match.group("number")
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end < 0 else line_end
        before = _PLACEHOLDER.sub("", text[line_start:match.start()]).strip()
        after = _PLACEHOLDER.sub("", text[match.end():line_end]).strip()
        pieces.append(text[last:match.start()])
        last = match.end()
        if number is None:
            bare += 1
        if not (option or _inline(before, after)):
            pieces.append(_REMOVED)
            continue
        if number is not None:
            words = f"image {(positions or {}).get(int(number), int(number))}"
        else:
            words = "the image" if (count or 0) <= 1 else f"image {bare}"
        if not before or before[-1] in _SENTENCE_END:
            words = words[0].upper() + words[1:]
        pieces.append(words)
    pieces.append(text[last:])
    return _tidy("".join(pieces))


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


def render_question(question: str, choices: Sequence[str] | None = None, *, count: int | None = None,
                    positions: Mapping[int, int] | None = None) -> str:
    """The canonical question: placeholders resolved (`strip_image_placeholders`), then the options
    as `(A) ...` lines (their placeholders always become words: an option may be just `<image 2>`)."""
    question = strip_image_placeholders(question, count=count, positions=positions)
    if choices:
        lines = [f"({OPTION_LETTERS[i]}) {strip_image_placeholders(c, count=count, positions=positions, option=True)}"
                 for i, c in enumerate(choices)]
        question = question + "\nChoices:\n" + "\n".join(lines)
    return question


def _unboxed(text: str) -> str:
    """`\\boxed{X}` -> X when the whole answer is one boxed expression (ViRL39K writes answers so)."""
    if not (text.startswith("\\boxed{") and text.endswith("}")):
        return text
    depth = 0
    for i, char in enumerate(text[len("\\boxed"):], start=len("\\boxed")):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return text[len("\\boxed{"):-1].strip() if i == len(text) - 1 else text
    return text


def _index(answer: Any) -> int | None:
    """An answer that is an integer (not a bool), or None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, float) and answer.is_integer():
        return int(answer)
    return None


def canonical_answer(answer: Any, choices: Sequence[str] | None = None) -> str:
    """The answer as a string; with choices, the option letter (boxed in multiple-choice answers:
    docs/method.md, "Rollouts").

    With options, an answer is read as, in order: an integer (0-based index: ScienceQA's
    convention), an option letter (`B`, `(b)`, `B.`), an option's text, a digit string that is no
    option's text (a 0-based index written as text). Without options, numbers stay numbers ("0" is
    the answer 0). A whole-answer `\\boxed{...}` is unwrapped.
    """
    if answer is None:
        return ""
    if isinstance(answer, float) and math.isnan(answer):
        return ""
    index = _index(answer)
    if choices and index is not None and 0 <= index < len(choices):
        return OPTION_LETTERS[index]
    if isinstance(answer, (list, tuple)):
        answer = answer[0] if len(answer) == 1 else ", ".join(map(str, answer))
    text = _unboxed(str(answer).strip())
    if choices:
        letters = OPTION_LETTERS[: len(choices)]
        letter = re.fullmatch(r"\(?\s*([A-Za-z])\s*[).:]?", text)
        if letter and letter.group(1).upper() in letters:
            return letter.group(1).upper()
        for option_letter, choice in zip(letters, choices):
            if text == choice or text.lower() == choice.lower():
                return option_letter
        if text.isdigit() and int(text) < len(choices):
            return OPTION_LETTERS[int(text)]
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
    suffix = FORMAT_PROMPT.strip()
    stripped = text.rstrip()
    return stripped[: -len(suffix)].rstrip() if stripped.endswith(suffix) else text


def _with_hints(text: str, unit: Any, precision: Any) -> str:
    """MathVista's `unit` and `precision`, which its own `query` column states, kept in the question:
    ` (Unit: cm)` as MathVista writes it, and the number of decimal places asked for."""
    if isinstance(unit, str) and unit.strip() and "(unit:" not in text.lower():
        text = f"{text.rstrip()} (Unit: {unit.strip()})"
    if isinstance(precision, (int, float)) and not isinstance(precision, bool) and not math.isnan(precision):
        places = int(precision)
        rule = "a whole number" if places == 0 else f"{places} decimal place{'' if places == 1 else 's'}"
        text = f"{text.rstrip()}\nGive the answer to {rule}."
    return text


# --------------------------------------------------------------------------- columns
def _first_present(candidates: Sequence[str], columns: Sequence[str]) -> str | None:
    return next((c for c in candidates if c.split(".", 1)[0] in columns), None)


def _value(batch: dict[str, list], path: str, i: int) -> Any:
    """`batch[path][i]`, following a dotted path into struct columns (None where a field is missing)."""
    head, *fields = path.split(".")
    value = batch[head][i]
    for name in fields:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def detect_preset(columns: Sequence[str]) -> Preset | None:
    """The first preset whose required columns are all present (in `PRESETS` order)."""
    for preset in PRESETS.values():
        if all(c in columns for c in preset.required):
            if preset.name == "trl" and not _first_present(preset.answer, columns):
                continue
            return preset
    return None


def numbered_image_columns(columns: Sequence[str]) -> list[str]:
    """`image_1` .. `image_N` (any N, also `img_2`, `image 3`) in numeric order."""
    numbered = [(int(m.group(1)), c) for c in columns if (m := NUMBERED_IMAGE_COLUMN.match(c))]
    return [c for _, c in sorted(numbered)]


def _image_typed(feature) -> bool:
    """An `Image` feature, a list of them, raw bytes, or a `{"bytes", "path"}` struct."""
    from datasets import Image, List, Sequence as HFSequence, Value

    if isinstance(feature, Image):
        return True
    if isinstance(feature, (List, HFSequence)):
        return _image_typed(feature.feature)
    if isinstance(feature, Value):
        return feature.dtype in ("binary", "large_binary")
    return isinstance(feature, dict) and {"bytes", "path"} <= set(feature)


def _text_typed(feature) -> bool:
    from datasets import List, Sequence as HFSequence, Value

    if isinstance(feature, (List, HFSequence)):
        return _text_typed(feature.feature)
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def looks_like_images(ds, column: str, sample: int = 200) -> bool:
    """Whether a column holds images: typed as images or bytes, or text naming image files (paths,
    `file://` URLs, lists of them, lists written as text), judged on its first `sample` values."""
    feature = ds.features[column]
    if _image_typed(feature):
        return True
    if not _text_typed(feature) or len(ds) == 0:
        return False
    values = ds.select_columns([column])[: min(sample, len(ds))][column]
    texts = []
    for value in values:
        texts.extend(value if isinstance(value, (list, tuple)) else [value])
    texts = [t for t in texts if isinstance(t, str) and t.strip() and t.strip() != "[]"]
    return bool(texts) and 2 * sum(map(looks_like_image_path, texts)) >= len(texts)


def _has_value(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        listed = parse_listed(value)
        return _has_value(listed) if isinstance(listed, (list, tuple)) else bool(value.strip())
    if isinstance(value, (list, tuple)):
        return any(_has_value(v) for v in value)
    if isinstance(value, dict):
        return value.get("bytes") is not None or bool(value.get("path"))
    if isinstance(value, (bytes, bytearray)):
        return bool(value)
    return True


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
        "images='my_image', id='my_id') (rap-hf: --question, --answer, --images, --id, --choices)."
    )


def _image_columns_argument(images: str | Sequence[str] | None, columns: Sequence[str]) -> list[str] | None:
    if images is None:
        return None
    if isinstance(images, str):
        if images not in columns and "," in images:
            return [name.strip() for name in images.split(",") if name.strip()]
        return [images]
    return list(images)


# --------------------------------------------------------------------------- conversion
def to_rap_format(
    ds,
    preset: str = "auto",
    question: str | None = None,
    answer: str | None = None,
    images: str | Sequence[str] | None = None,
    id: str | None = None,
    *,
    choices: str | None = None,
    image_root: str | None = None,
    num_proc: int | None = None,
):
    """Convert a dataset to canonical RAP rows, keeping every source column.

    Layouts recognised with `preset="auto"` (README, "Canonical rows"): canonical rows, TRL,
    MM-Eureka, EasyR1 (geometry3k, ThinkLite-VL), verl, ScienceQA and any `question` + `answer`
    layout (MathVista, MMMU and MMMU-Pro, MathVerse, ViRL39K, imagefolder metadata, your CSV).
    Images come from numbered columns (`image_1` .. `image_N`, in numeric order, empty ones
    skipped), else the first of `IMAGE_COLUMNS` present (images, paths, bytes, lists of them, lists
    written as text); options from `choices` or `options`.

    Args:
        ds: A `datasets.Dataset` (or a `DatasetDict`, converted split by split).
        preset: "auto" (detect from the columns), or one of `PRESETS`.
        question: Source column of the question text (overrides the preset).
        answer: Source column of the ground-truth answer.
        images: Source column(s) of the images, in order: one column or a list (a comma-separated
            string works too).
        id: Source column of a stable row id; without one, `rap_id` is a hash of the content.
        choices: Source column of multiple-choice options, rendered into the question as
            `(A) ...` lines; an answer equal to an option (or its 0-based index) becomes its letter.
        image_root: Folder that relative image paths are resolved against. Default: the folder of
            the data file the rows were read from by `rap_hf.data.io.load_rows`; rows built another
            way (e.g. `datasets.load_dataset("csv", data_files=...)`, which does not record its file)
            keep relative paths as they are, with a warning, unless this is given.
        num_proc: Processes for the conversion `map`.

    Returns:
        The dataset with `rap_id`, `question`, `answer`, `images` first. A source column whose name a
        canonical column takes, and whose values the conversion changed, is kept as
        `source_<name>`; the columns the images came from are moved into `images` (not copied, so
        image bytes are not stored twice). Images stay undecoded (`Image(decode=False)`); an image
        file that does not exist keeps its path and fails its row alone when decoded.

    Raises:
        ValueError: the layout is not recognised (the message lists the columns found and the
            arguments that map them), a named column does not exist, a row cannot be read (the
            message names it), or, with `preset="auto"`, every image would be dropped while a
            column that looks like images was left unused (the message names it and `images=`).
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
    image_cols = _image_columns_argument(images, columns)
    named = [("question", question), ("answer", answer), ("id", id), ("choices", choices)]
    named += [("images", name) for name in image_cols or []]
    for arg, value in named:
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
        raise ValueError(f"No answer column found. Columns found: {', '.join(columns)}; name it with --answer "
                         "COLUMN (answer='...' in Python).")
    choices_col = choices or _first_present(spec.choices if spec else CHOICE_COLUMNS, columns)
    id_col = id or _first_present(spec.id if spec else ID_COLUMNS, columns)
    context_col = spec.context if spec and question is None and spec.context in columns else None
    hinted = spec is None or spec.hints
    unit_col = "unit" if hinted and "unit" in columns else None
    precision_col = "precision" if hinted and "precision" in columns else None
    if image_cols is None:
        image_cols = numbered_image_columns(columns) if spec is None or spec.images is None else []
        if not image_cols:
            found = _first_present(spec.images if spec and spec.images is not None else IMAGE_COLUMNS, columns)
            image_cols = [found] if found else []
    # `<image k>` names column image_k; rows skip empty columns, so k maps to a position per row.
    numbers = {c: int(m.group(1)) for c in image_cols if (m := NUMBERED_IMAGE_COLUMN.match(c))}

    # Columns that look like images and that this conversion leaves alone: never silently.
    taken = {*image_cols, messages_col, question_col, answer_col, choices_col, context_col}
    taken |= {c.split(".", 1)[0] for c in (id_col,) if c}
    duplicates = {d for c in image_cols for d in DUPLICATE_IMAGE_COLUMNS.get(c, ())}
    unused = [c for c in columns if c not in taken and looks_like_images(ds, c)]
    if preset == "auto" and not image_cols and messages_col is None and unused:
        raise _refusal(unused, "no image column of a known layout was found")

    root = image_root
    if root is None:
        from .io import source_folder

        root = source_folder(ds)

    for column in image_cols:
        ds = ds.cast_column(column, _undecoded(ds.features[column]))

    produced = ["rap_id", "question", "answer", "images"]
    # Options named by another column are also written as `choices`, where the scorer looks for them.
    emit_choices = choices_col is not None and choices_col != "choices" and "choices" not in columns
    if emit_choices:
        produced.append("choices")
    # A source column whose name we overwrite is kept as source_<name> (dropped again below
    # when the conversion left every value unchanged).
    shadowed = [c for c in ("rap_id", "question", "answer") if c in columns]
    # Per-row facts for the warnings, removed once counted.
    watched = {f"__rap_unused_{k}": c for k, c in enumerate(unused)}
    stats = ["__rap_missing", "__rap_relative", "__rap_unmatched", "__rap_ambiguous", *watched]

    def convert(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in (*produced, *stats)}
        for name in shadowed:
            out[f"source_{name}"] = list(batch[name])
        for i, index in enumerate(indices):
            try:
                rid, q, a, refs, row_choices, flags = convert_row(batch, i)
            except Exception as error:  # name the row: a bad one must not be a mystery in a million
                raise ValueError(
                    f"to_rap_format: row {index} cannot be read ({type(error).__name__}: {error}). "
                    "Fix or drop it (in Python, e.g. ds.filter(...)) and convert again."
                ) from error
            out["rap_id"].append(rid)
            out["question"].append(q)
            out["answer"].append(a)
            out["images"].append(refs)
            if emit_choices:
                out["choices"].append(row_choices)
            for name, value in flags.items():
                out[name].append(value)
            for name, column in watched.items():
                out[name].append(_has_value(batch[column][i]))
        return out

    def convert_row(batch: dict[str, list], i: int):
        """(rap_id, question, answer, image references, choices, facts for the warnings) of row i."""
        refs: list[ImageRef] = []
        if messages_col is not None:
            text, message_images = _messages_question(batch[messages_col][i])
            refs = to_image_refs(message_images, root)
        else:
            text = batch[question_col][i] or ""
        text = _without_format_prompt(str(text))
        positions: dict[int, int] = {}
        column_refs: list[ImageRef] = []
        for column in image_cols:
            found = to_image_refs(batch[column][i], root)
            if found and column in numbers:
                positions[numbers[column]] = len(column_refs) + 1
            column_refs.extend(found)
        if column_refs:  # prefer the image columns: messages may carry only placeholder references
            refs = column_refs
        refs = [keep_missing_file(ref) for ref in refs]
        if context_col is not None and str(batch[context_col][i] or "").strip():
            text = f"Context: {str(batch[context_col][i]).strip()}\n{text}"
        text = strip_image_placeholders(text, count=len(refs), positions=positions)
        text = _with_hints(text, batch[unit_col][i] if unit_col else None,
                           batch[precision_col][i] if precision_col else None)
        raw_choices = parse_choices(batch[choices_col][i]) if choices_col else None
        row_choices = [strip_image_placeholders(c, count=len(refs), positions=positions, option=True)
                       for c in raw_choices] if raw_choices else None
        q = render_question(text, row_choices)
        raw_answer = _value(batch, answer_col, i)
        a = canonical_answer(raw_answer, row_choices)
        source_id = _value(batch, id_col, i) if id_col else None
        rid = str(source_id) if source_id not in (None, "") else content_hash(q, a, refs)
        index = _index(raw_answer)
        flags = {
            "__rap_missing": sum(names_missing_file(r) for r in refs if not is_unresolved_path(r)),
            "__rap_relative": sum(map(is_unresolved_path, refs)),
            "__rap_unmatched": bool(row_choices) and a not in OPTION_LETTERS[: len(row_choices)],
            "__rap_ambiguous": bool(row_choices) and index is not None and 0 <= index < len(row_choices)
            and str(index) in row_choices and row_choices.index(str(index)) != index,
        }
        return rid, q, a, refs, row_choices, flags

    from datasets import Features, List, Value

    features = {name: feat for name, feat in ds.features.items() if name not in image_cols}
    features.update({"rap_id": Value("string"), "question": Value("string"), "answer": Value("string"),
                     "images": images_feature()})
    if emit_choices:
        features["choices"] = List(Value("string"))
    for name in shadowed:
        features[f"source_{name}"] = ds.features[name]
    features.update({"__rap_missing": Value("int32"), "__rap_relative": Value("int32"),
                     "__rap_unmatched": Value("bool"), "__rap_ambiguous": Value("bool")})
    features.update({name: Value("bool") for name in watched})
    if len(ds) == 0:
        # datasets' map returns an empty dataset as it is, without the new columns: build the empty
        # canonical dataset from the features the conversion would write.
        return _empty_canonical(ds, features, dropped=[*stats, *(f"source_{name}" for name in shadowed)])
    remove = [c for c in image_cols if c != "images"]
    converted = ds.map(
        convert,
        batched=True,
        with_indices=True,
        features=Features(features),
        remove_columns=remove,
        num_proc=num_proc,
        desc="to_rap_format",
    )
    _report(converted, watched, duplicates, image_cols, messages_col, auto=preset == "auto")
    converted = converted.remove_columns(stats)
    converted = _drop_unchanged_sources(converted, shadowed)
    converted = _deduplicate_ids(converted)
    _warn_missing_answers(converted)
    rest = [c for c in converted.column_names if c not in CANONICAL_COLUMNS]
    return converted.select_columns([*CANONICAL_COLUMNS, *rest])


def _empty_canonical(ds, features: Mapping[str, Any], dropped: Sequence[str]):
    """The conversion of `ds`, a dataset with no rows: its kept columns and the canonical ones, with
    the features a conversion writes (canonical columns first), and `ds`'s info (where the rows came
    from)."""
    from datasets import Dataset, Features

    kept = Features({name: feature for name, feature in features.items() if name not in dropped})
    info = ds.info.copy()
    info.features = kept
    empty = Dataset.from_dict({name: [] for name in kept}, features=kept, info=info, split=ds.split)
    rest = [c for c in empty.column_names if c not in CANONICAL_COLUMNS]
    return empty.select_columns([*CANONICAL_COLUMNS, *rest])


def _refusal(columns: Sequence[str], why: str) -> ValueError:
    flags = ", ".join(f"images={c!r} (rap-hf: --images {c})" for c in columns)
    return ValueError(
        f"to_rap_format would drop every image: {why}, and column{'s' if len(columns) > 1 else ''} "
        f"{', '.join(repr(c) for c in columns)} look{'' if len(columns) > 1 else 's'} like images. "
        f"Map the images explicitly: {flags}."
    )


def _report(converted, watched: Mapping[str, str], duplicates: set[str], image_cols: Sequence[str],
            messages_col: str | None, *, auto: bool) -> None:
    """Warn, with counts, about everything the conversion could not carry over; refuse (in auto mode)
    when no row kept an image that an unused column holds."""
    import pyarrow.compute as pc

    total = len(converted)
    if total == 0:
        return
    table = converted.select_columns(["rap_id", "images", "__rap_missing", "__rap_relative", "__rap_unmatched",
                                      "__rap_ambiguous", *watched]).with_format("arrow")[:]
    counts = pc.list_value_length(table.column("images"))
    empty = pc.equal(counts, 0)
    without = pc.sum(empty).as_py() or 0
    unused = {column: pc.sum(table.column(name)).as_py() or 0 for name, column in watched.items()}
    unused = {column: n for column, n in unused.items() if n}
    source = (f"column{'s' if len(image_cols) > 1 else ''} {', '.join(image_cols)}" if image_cols else
              f"the messages in {messages_col!r}" if messages_col else "no image column")

    def example(mask) -> str:
        row = pc.index(mask, True).as_py()
        return f"row {row} (rap_id {table.column('rap_id')[row].as_py()!r})"

    if auto and without == total and unused:
        raise _refusal(list(unused), f"every row ended with no image from {source}")
    for column, n in unused.items():
        # A known duplicate (MathVista's `image`, the path of `decoded_image`) loses nothing: noted only.
        log = logger.info if column in duplicates else logger.warning
        log(
            "column %r looks like images and holds values on %d of %d rows, but the conversion did not use it "
            "(images came from %s); map it with images=%r (rap-hf: --images %s)",
            column, n, total, source, column, column,
        )
    if without:
        logger.warning(
            "%d of %d rows have no image (images from %s; e.g. %s); scoring marks them with rap_error",
            without, total, source, example(empty),
        )
    def warn_rows(mask, message: str) -> None:
        """Warn, when any row is in `mask`: `message` with its count, the total and an example row."""
        count = pc.sum(mask).as_py() or 0
        if count:
            logger.warning(message, count, total, example(mask))

    missing = table.column("__rap_missing")
    has_missing = pc.greater(missing, 0)
    if pc.any(has_missing).as_py():
        row = pc.index(has_missing, True).as_py()
        path = next((r["path"] for r in table.column("images")[row].as_py() if names_missing_file(r)
                     and not is_unresolved_path(r)), "(found since)")
        logger.warning(
            "%d of %d rows name image files that do not exist (%d files; e.g. %s: %s); they keep their paths "
            "and fail alone when decoded (rap_error)",
            pc.sum(has_missing).as_py(), total, pc.sum(missing).as_py(), example(has_missing), path,
        )
    warn_rows(pc.greater(table.column("__rap_relative"), 0),
              "%d of %d rows name images by relative paths and no folder is known to resolve them against (the "
              "rows did not come from a data file through rap_hf.data.io.load_rows; e.g. %s); pass image_root= "
              "(rap-hf: --image-root) with the folder they are relative to")
    warn_rows(table.column("__rap_unmatched"),
              "%d of %d multiple-choice rows have an answer that is no option letter, option text or option index "
              "(e.g. %s); it was kept as written")
    warn_rows(table.column("__rap_ambiguous"),
              "%d of %d rows have an integer answer that is also the text of another option (e.g. %s); it was "
              "read as a 0-based option index (ScienceQA's convention): store the answer as text to match an "
              "option's text")


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
            "Convert the dataset first: `rap-hf convert` (or rap_hf.to_rap_format(ds))."
        )
