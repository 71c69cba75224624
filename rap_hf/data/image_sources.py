"""Where a row's image paths point: the folder relative paths are under, re-rooted prefixes, and
remote URLs, fetched only when asked.

Published rows name pictures in several ways that do not work as written on the user's machine:
- relative paths (MathVerse's `images_version_1-4/image_1.png`, a CSV's `pics/1.png`), relative to
  the data file, or to the `images/` folder its archive unpacks into (MathVista, MathVerse);
- absolute paths on the authors' servers (MM-Eureka's `/cluster/.../K12/1.png`), which a re-root rule
  `OLD=NEW` moves to where the pictures are here;
- http(s) URLs, which rap-hf never reads behind the user's back: with `fetch=True` the conversion
  downloads each one once (retries, an on-disk cache) into the rows' bytes; without it the URL is
  kept and its row fails alone, with a `rap_error` that says how to fetch it.

`ImageSources.parse` reads what `to_rap_format(image_root=...)` and `--image-root` take: a folder,
`OLD=NEW` rules, or a list of both.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IMAGE_SUBFOLDERS = ("images",)
"""Folders beside a data file that relative paths are also looked up in, in order (MathVista's and
MathVerse's releases unpack their pictures into `images/`)."""

REMOTE_SCHEMES = ("http://", "https://")


def is_remote(path: Any) -> bool:
    """Whether `path` is an http(s) URL."""
    return isinstance(path, str) and path.lower().startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class ImageSources:
    """How image paths of source rows are resolved.

    Args:
        folder: The folder relative paths are resolved against (then its `images/` subfolder).
        moves: `(old, new)` prefix rules, tried in order, applied to absolute paths and URLs: a path
            that starts with `old` (a whole path component) starts with `new` instead.
        fetch: Download http(s) images into the rows (retries, a cache); otherwise URLs are kept.
        fetcher: The downloader used when `fetch` is set (built on first use when None).
    """

    folder: str | None = None
    moves: tuple[tuple[str, str], ...] = ()
    fetch: bool = False
    fetcher: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: Any = None, *, default_folder: str | None = None, fetch: bool = False) -> ImageSources:
        """`ImageSources` from what `image_root` takes: None, a folder, `"OLD=NEW"`, a mapping
        {old: new}, a list of folders and rules (one folder at most), or an `ImageSources`."""
        if isinstance(value, ImageSources):
            return dataclasses.replace(value, fetch=True) if fetch and not value.fetch else value
        folder, moves = None, []
        items: Sequence[Any]
        if value is None:
            items = []
        elif isinstance(value, Mapping):
            items = [f"{old}={new}" for old, new in value.items()]
        elif isinstance(value, (str, os.PathLike)):
            items = [value]
        else:
            items = list(value)
        for item in items:
            text = os.fspath(item).strip()
            old, sep, new = text.partition("=")
            if sep and old.strip():
                moves.append((_trimmed(old.strip()), _trimmed(new.strip())))
            elif folder is not None:
                raise ValueError(f"image_root names two folders ({folder!r} and {text!r}): give one folder for "
                                 "relative paths, and OLD=NEW rules to re-root absolute ones")
            elif text:
                folder = text
        if folder is None:
            folder = default_folder
        return cls(os.path.abspath(folder) if folder else None, tuple(moves), fetch)

    def moved(self, path: str) -> str:
        """`path` with the first matching re-root rule applied (unchanged when none matches)."""
        for old, new in self.moves:
            if path == old or path.startswith(old + "/"):
                return new + path[len(old):]
        return path

    def resolve(self, path: str) -> str:
        """A local path or URL as rows should keep it: re-rooted, a relative path joined to the folder
        (or its `images/` subfolder, where the file is there), or, with no folder, made absolute when it
        names a file from here. A relative path that names no file stays as written (it fails its row
        alone, with the fix)."""
        if path.startswith("file://"):
            path = path[len("file://"):]
        if os.path.isabs(path) or "://" in path:
            return self.moved(path)
        if self.folder is None:
            return os.path.abspath(path) if os.path.exists(path) else path
        candidates = [os.path.join(self.folder, path)]
        candidates += [os.path.join(self.folder, sub, path) for sub in IMAGE_SUBFOLDERS]
        return next((c for c in candidates if os.path.exists(c)), candidates[0])

    def downloader(self):
        """The downloader of remote images (built once)."""
        if self.fetcher is None:
            from .remote_images import ImageFetcher

            object.__setattr__(self, "fetcher", ImageFetcher())
        return self.fetcher


def _trimmed(prefix: str) -> str:
    """A rule's prefix without a trailing slash (so `/old/` and `/old` mean the same folder)."""
    return prefix.rstrip("/") or prefix
