"""Undecoded image references and their decoding, one row at a time.

Canonical rows keep images as `{"bytes", "path"}` dicts (`Image(decode=False)`), so that a corrupt
picture never aborts a `datasets.map` over a million rows. Stages that need pixels call
`decode_row_images`, which raises `ImageDecodeError` naming the row; callers turn that into a
per-row `rap_error` (scoring) or a clear error (exports).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import Any

ImageRef = dict[str, Any]  # {"bytes": bytes | None, "path": str | None}


class ImageDecodeError(ValueError):
    """An image of one row could not be read or decoded."""

    def __init__(self, rap_id: str | None, index: int, reason: str):
        self.rap_id = rap_id
        self.index = index
        self.reason = reason
        where = f"row {rap_id!r}" if rap_id is not None else "a row"
        super().__init__(f"Image {index} of {where} could not be decoded: {reason}")


def to_image_ref(value: Any, image_root: str | os.PathLike | None = None) -> ImageRef | None:
    """Normalise one source image value to an undecoded `{"bytes", "path"}` reference.

    Accepts what source datasets hold: the dicts of `Image(decode=False)`, raw bytes, a path or
    `file://` URL (joined to `image_root` when relative), or a decoded `PIL.Image` (re-encoded as
    PNG). Returns None for a missing image.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is None and path is not None:
            path = _resolve(path, image_root)
        if data is None and path is None:
            return None
        return {"bytes": data, "path": path}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, (str, os.PathLike)):
        return {"bytes": None, "path": _resolve(os.fspath(value), image_root)}
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}
    raise TypeError(f"Cannot read an image from a value of type {type(value).__name__}")


def _resolve(path: str, image_root: str | os.PathLike | None) -> str:
    if path.startswith("file://"):
        path = path[len("file://") :]
    if image_root is not None and not os.path.isabs(path):
        path = os.path.join(os.fspath(image_root), path)
    return path


def read_image_bytes(ref: ImageRef) -> bytes:
    """The encoded bytes of a reference, read from its path when it holds none."""
    if ref.get("bytes") is not None:
        return ref["bytes"]
    path = ref.get("path")
    if not path:
        raise ValueError("image reference has neither bytes nor a path")
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
