"""Image placeholders in question text: `strip_image_placeholders`.

Sources mark where a picture goes in many ways (`<image>`, `<image 2>`, `<ImageHere>`, Qwen's
vision tokens). The prompt builder places the images itself, so the canonical question has none:
a placeholder beside the text is removed, one that is a word of its sentence becomes words
("as shown in image 1."), and the whitespace a removal leaves is tidied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
