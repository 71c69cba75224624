"""Downloading http(s) images once, when the user asks for it (`to_rap_format(fetch_images=True)`,
`--fetch-images`): retries with backoff on what may pass (timeouts, refused connections, 429 and
5xx answers), none on what will not (404, 403), many downloads in flight, and an on-disk cache keyed
by the URL, so converting again reads no byte twice.

A URL that cannot be fetched is not an error of the conversion: its row keeps the URL, and fails
alone when decoded, with the reason recorded here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

CACHE_ENV = "RAP_HF_IMAGE_CACHE"
"""Environment variable naming the image cache folder (default: ~/.cache/rap_hf/images)."""

_PASSING_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def default_cache_dir() -> str:
    """The image cache folder: `$RAP_HF_IMAGE_CACHE`, else `$XDG_CACHE_HOME/rap_hf/images` (~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rap_hf", "images")


class ImageFetcher:
    """Fetches http(s) images into memory and an on-disk cache.

    Args:
        cache_dir: Where fetched images are kept (`default_cache_dir()` when None).
        tries: Attempts per URL (the first included) for failures that may pass.
        timeout: Seconds per attempt.
        backoff: Seconds before the second attempt, doubled after each.
        workers: Downloads in flight at once (`fetch_all`).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, tries: int = 3, timeout: float = 30.0,
                 backoff: float = 0.5, workers: int = 16):
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
        self.tries, self.timeout, self.backoff, self.workers = max(1, tries), timeout, backoff, workers
        self.errors: dict[str, str] = {}
        """URL -> why it could not be fetched (the last attempt's error)."""

    def cache_path(self, url: str) -> str:
        return os.path.join(self.cache_dir, hashlib.sha256(url.encode()).hexdigest())

    def get(self, url: str) -> bytes | None:
        """The image at `url`: from the cache, else downloaded (and cached); None when it cannot be
        fetched (`errors[url]` says why)."""
        cached = self.cache_path(url)
        if os.path.isfile(cached):
            with open(cached, "rb") as f:
                return f.read()
        if url in self.errors:
            return None
        try:
            data = self._download(url)
        except Exception as error:  # every failure is this URL's: its row fails alone
            self.errors[url] = _reason(error, self.tries)
            return None
        self._store(cached, data)
        return data

    def fetch_all(self, urls: Iterable[str]) -> None:
        """Fetch every URL not cached yet, `workers` at a time (the results land in the cache)."""
        missing = sorted({u for u in urls if not os.path.isfile(self.cache_path(u)) and u not in self.errors})
        if len(missing) <= 1:
            for url in missing:
                self.get(url)
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(missing))) as pool:
            list(pool.map(self.get, missing))

    def _download(self, url: str) -> bytes:
        from .. import __version__

        request = urllib.request.Request(url, headers={"User-Agent": f"rap-hf/{__version__}"})
        delay = self.backoff
        for attempt in range(1, self.tries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    data = response.read()
                if not data:
                    raise ValueError("the server answered with no bytes")
                return data
            except urllib.error.HTTPError as error:
                if error.code not in _PASSING_STATUSES or attempt == self.tries:
                    raise
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == self.tries:
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _store(self, path: str, data: bytes) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        # Written beside its final name and renamed: a reader never sees half an image.
        handle, temporary = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)


def _reason(error: Exception, tries: int) -> str:
    if isinstance(error, urllib.error.HTTPError):
        tried = f" (after {tries} tries)" if error.code in _PASSING_STATUSES else ""
        return f"HTTP {error.code} {error.reason}{tried}"
    if isinstance(error, urllib.error.URLError):
        return f"{error.reason} (after {tries} tries)"
    return f"{type(error).__name__}: {error}"
