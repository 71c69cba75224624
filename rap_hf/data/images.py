"""Undecoded image references and their decoding, one row at a time.

Canonical rows keep images as `{"bytes", "path"}` dicts (`Image(decode=False)`), so that a corrupt
picture never aborts a `datasets.map` over a million rows. Stages that need pixels call
`decode_row_images`, which raises `ImageDecodeError` naming the row; callers turn that into a
per-row `rap_error` (scoring) or a clear error (exports). A path to a file that does not exist is
kept (as a `file://` URL, which `datasets` does not try to read when it saves rows) and fails its
row alone when decoded.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from .image_sources import ImageSources, is_remote

ImageRef = dict[str, Any]  # {"bytes": bytes | None, "path": str | None}


class RemoteImage(FileNotFoundError):
    """An image that is an http(s) URL with no bytes: rap-hf downloads images only when asked."""

    def __init__(self, url: str):
        super().__init__(f"{url} is a URL, and rap-hf downloads images only when asked: convert the rows with "
                         "to_rap_format(..., fetch_images=True) (rap-hf: --fetch-images), which fetches each once, "
                         "with retries and a cache")


class ImageDecodeError(ValueError):
    """An image of one row could not be read or decoded."""

    def __init__(self, rap_id: str | None, index: int, reason: str):
        self.rap_id = rap_id
        self.index = index
        self.reason = reason
        where = f"row {rap_id!r}" if rap_id is not None else "a row"
        super().__init__(f"Image {index} of {where} could not be decoded: {reason}")


def to_image_ref(value: Any, image_root: str | os.PathLike | ImageSources | None = None) -> ImageRef | None:
    """Normalise one source image value to an undecoded `{"bytes", "path"}` reference.

    Accepts what source datasets hold: the dicts of `Image(decode=False)`, raw bytes, a path or
    `file://` URL (resolved by `image_root`: see `rap_hf.data.image_sources.ImageSources`), an
    http(s) URL (downloaded when `image_root` says to fetch, else kept), a `data:image/...;base64,`
    URI, or a decoded `PIL.Image` (re-encoded as PNG). Returns None for a missing image (None, an
    empty string). Nothing is read from disk here: a path that names no file stays a path, and
    decoding it later fails that row alone (`decode_row_images`).
    """
    if value is None:
        return None
    sources = ImageSources.parse(image_root)
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if isinstance(path, str) and not path.strip():
            path = None
        if data is None and path is not None:
            return _located(path, sources)
        if data is None and path is None:
            return None
        return {"bytes": data, "path": path}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None} if value else None
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value).strip()
        if not text:
            return None
        if text.startswith("data:image/") and ";base64," in text:
            return {"bytes": base64.b64decode(text.split(";base64,", 1)[1]), "path": None}
        return _located(text, sources)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}
    raise TypeError(f"Cannot read an image from a value of type {type(value).__name__}")


def to_image_refs(value: Any, image_root: str | os.PathLike | ImageSources | None = None) -> list[ImageRef]:
    """Every image of one source cell, in order: one image, a list of them, or a list written as
    text (`'["a.png", "b.png"]'`, as CSV files hold lists). Missing entries (None, "") are skipped."""
    if isinstance(value, str):
        value = parse_listed(value)
    if isinstance(value, (list, tuple)):
        refs: list[ImageRef] = []
        for item in value:
            refs.extend(to_image_refs(item, image_root))
        return refs
    ref = to_image_ref(value, image_root)
    return [] if ref is None else [ref]


def parse_listed(text: str) -> Any:
    """A JSON or Python list literal written as text, parsed; any other text unchanged."""
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return text
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            return text


_IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|bmp|webp|tiff?)$", re.IGNORECASE)


def looks_like_image_path(text: Any) -> bool:
    """Whether a text names an image: a file with an image extension, a `file://` URL to one, a
    `data:image/` URI, or a list of them written as text."""
    if not isinstance(text, str):
        return False
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.startswith("data:image/"):
        return True
    listed = parse_listed(stripped)
    if isinstance(listed, (list, tuple)):
        items = [item for item in listed if item not in (None, "")]
        return bool(items) and all(looks_like_image_path(item) for item in items)
    return bool(_IMAGE_FILE.search(stripped.split("?", 1)[0]))


def is_unresolved_path(ref: ImageRef) -> bool:
    """A reference that is only a relative path (no bytes): it names no file until a folder is known."""
    path = _local(ref.get("path"))
    return ref.get("bytes") is None and bool(path) and not os.path.isabs(path) and not _is_url(path)


def names_missing_file(ref: ImageRef) -> bool:
    """A reference that is only a local path (no bytes) to a file that does not exist."""
    path = _local(ref.get("path"))
    return ref.get("bytes") is None and bool(path) and not _is_url(path) and not os.path.isfile(path)


def keep_missing_file(ref: ImageRef) -> ImageRef:
    """A reference to a missing local file, written as a `file://` URL so that it stays a path.

    `datasets` reads every local image path into the file when it saves a dataset
    (`save_to_disk`, the scoring shards), and one missing file would abort the whole save; a
    `file://` URL is left as it is. Decoding strips it again and fails that row alone, naming it
    (or reads the file, if it exists by then).
    """
    if names_missing_file(ref) and not ref["path"].startswith("file://"):
        return {"bytes": None, "path": "file://" + ref["path"]}
    return ref


def _local(path: str | None) -> str | None:
    return path[len("file://"):] if path and path.startswith("file://") else path


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _located(path: str, sources: ImageSources) -> ImageRef:
    """The reference of a path or URL: resolved (absolute, so rows decode the same in any working
    folder: Ray's workers run in their own), and a URL's bytes fetched when asked for."""
    path = sources.resolve(path)
    if is_remote(path) and sources.fetch:
        return {"bytes": sources.downloader().get(path), "path": path}
    return {"bytes": None, "path": path}


def read_image_bytes(ref: ImageRef) -> bytes:
    """The encoded bytes of a reference, read from its path when it holds none."""
    if ref.get("bytes") is not None:
        return ref["bytes"]
    path = _local(ref.get("path"))
    if not path:
        raise ValueError("image reference has neither bytes nor a path")
    if is_remote(path):
        raise RemoteImage(path)
    if not os.path.isfile(path):
        # The conversion keeps a path whatever it names; a missing file fails its row here.
        if not os.path.isabs(path):
            raise FileNotFoundError(f"image file not found: {path} (a relative path, and no folder holds it: convert "
                                    "with image_root= the folder it is relative to; rap-hf: --image-root)")
        raise FileNotFoundError(f"image file not found: {path}")
    with open(path, "rb") as f:
        return f.read()


def embedded_refs(refs: Sequence[ImageRef] | None) -> list[ImageRef]:
    """A row's image references with their bytes read in, so a written file is self-contained."""
    return [{"bytes": read_image_bytes(ref), "path": None} for ref in refs or []]


def decode_image(ref: ImageRef):
    """Decode one reference to an RGB `PIL.Image` (fully loaded, so errors surface here)."""
    from PIL import Image

    image = Image.open(io.BytesIO(read_image_bytes(ref)))
    image.load()
    return image.convert("RGB")


_ADDRESS = re.compile(r" <[\w.]+ object at 0x[0-9a-f]+>")


def decode_row_images(refs: Sequence[ImageRef] | None, rap_id: str | None = None) -> list:
    """Decode all images of one row, or raise `ImageDecodeError` naming the row and image."""
    images = []
    for index, ref in enumerate(refs or []):
        try:
            images.append(decode_image(ref))
        except Exception as error:  # PIL raises many types; all mean "this row's image is bad"
            # PIL names the in-memory file it read by its address ("<_io.BytesIO object at 0x7f..>"),
            # which would make the same row's error differ from run to run.
            reason = _ADDRESS.sub("", f"{type(error).__name__}: {error}")
            raise ImageDecodeError(rap_id, index, reason) from error
    return images
