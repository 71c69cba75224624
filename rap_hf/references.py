"""Whether a dataset or model named by the user can be found, decided at once and without the network.

Every rap-hf stage takes a dataset or a model as a *reference*: a local path (a folder, a data file)
or a Hub id (`owner/name`). Handed to `datasets` or `transformers` as it is, a mistyped local path
is taken for a Hub id and ends, after the Hub's retries, in a long traceback about reaching the Hub.
`check_reference` decides first, from the file system alone:

- a reference that exists on disk is used as it is (`~` expanded);
- one that *looks local* and does not exist fails at once with `FileNotFoundError`, "no such file or
  folder: X", and the nearest fix (the closest existing name, or where it was looked for). A
  reference looks local when it is no Hub id shape (`name` or `owner/name`: it starts with `.`, `/`
  or `~`, has a backslash or more than one `/`, ...), ends with a data-file extension (`.csv`,
  `.json`, `.jsonl`, `.parquet`, `.arrow`, `.tsv`), or names an entry of a folder that exists here
  (`models/nope` while `models/` exists);
- with the Hub offline (`HF_HUB_OFFLINE=1`; `TRANSFORMERS_OFFLINE` for models, `HF_DATASETS_OFFLINE`
  for datasets), any reference that is not on disk and not in the local Hub cache fails the same
  way, saying how to download it;
- any other reference is a Hub id, passed on untouched: nothing here ever asks the Hub.

`rap_hf.data.io.load_rows` (every command's datasets) and `rap_hf.modeling.load_vlm` /
`load_processor` (every model) call it.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Literal

Kind = Literal["dataset", "model"]

# Endings of data files: a reference ending with one is a file, never a Hub id.
DATA_FILE_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".arrow")
# huggingface_hub's repo id shape: an optional namespace, a name; letters, digits, `_`, `-`, `.`.
_HUB_ID = re.compile(r"(?:[\w.-]{1,96}/)?[\w.-]{1,96}")
_TRUE = {"1", "ON", "YES", "TRUE"}  # the values huggingface_hub reads as true
_SHOWN_ENTRIES = 6  # names listed when no close match is found


def looks_like_hub_id(ref: str) -> bool:
    """Whether `ref` has the shape of a Hub id (`name` or `owner/name`, optionally `@revision`)."""
    name = ref.split("@", 1)[0]
    if not _HUB_ID.fullmatch(name) or "--" in name or ".." in name:
        return False
    return all(part and part[0] not in ".-" and part[-1] not in ".-" for part in name.split("/"))


def looks_local(ref: str) -> bool:
    """Whether `ref` can only mean a local path: not a Hub id shape, a data file's name, or an entry of
    a folder that exists here."""
    if not looks_like_hub_id(ref) or ref.lower().endswith(DATA_FILE_EXTENSIONS):
        return True
    folder = os.path.dirname(ref)
    return bool(folder) and os.path.isdir(folder)


def offline_variable(kind: Kind) -> str | None:
    """The environment variable that keeps `kind` off the Hub now (`HF_HUB_OFFLINE`, ...), or None.

    Read at each call, as the user set it; datasets' own `HF_DATASETS_OFFLINE`, when set, decides for
    datasets, as it does in `datasets`."""
    def true(name: str) -> bool:
        return os.environ.get(name, "").strip().upper() in _TRUE

    if kind == "dataset" and os.environ.get("HF_DATASETS_OFFLINE") is not None:
        return "HF_DATASETS_OFFLINE" if true("HF_DATASETS_OFFLINE") else None
    if os.environ.get("HF_HUB_OFFLINE"):
        return "HF_HUB_OFFLINE" if true("HF_HUB_OFFLINE") else None
    if kind == "model" and true("TRANSFORMERS_OFFLINE"):
        return "TRANSFORMERS_OFFLINE"
    return None


def in_hub_cache(ref: str, kind: Kind) -> bool:
    """Whether Hub id `ref` has a local copy the libraries load offline: a snapshot in the Hub cache
    (`hf download`, an earlier online load), or, for a dataset, rows `datasets` prepared before."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    repo_id = ref.split("@", 1)[0]
    snapshots = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=kind) / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    if kind == "dataset":
        from datasets import config
        from datasets.naming import camelcase_to_snakecase

        parts = repo_id.split("/")
        parts[-1] = camelcase_to_snakecase(parts[-1])
        prepared = Path(os.path.expanduser(str(config.HF_DATASETS_CACHE))) / "___".join(parts)
        return prepared.is_dir() and any(prepared.iterdir())
    return False


def closest_name(name: str, names: list[str], cutoff: float = 0.6) -> str | None:
    """The entry of `names` that `name` most likely mistypes, or None. Files of one extension are
    compared by their stems (`rws.csv` is close to `rows.csv`; `test.csv` is not close to it),
    anything else by the whole name; case alone never hides a match."""
    def similarity(candidate: str) -> float:
        if candidate.lower() == name.lower():
            return 1.0
        stem, suffix = os.path.splitext(name)
        other, other_suffix = os.path.splitext(candidate)
        if suffix and suffix.lower() == other_suffix.lower():
            name_a, name_b = stem, other
        else:
            name_a, name_b = name, candidate
        return difflib.SequenceMatcher(None, name_a.lower(), name_b.lower()).ratio()

    scored = [(similarity(candidate), candidate) for candidate in names]
    best = max(scored, default=(0.0, None), key=lambda item: item[0])
    return best[1] if best[0] >= cutoff else None


def nearest_fix(path: str) -> str:
    """For a path that does not exist, the nearest fix in a few words: the closest existing name
    (`did you mean data/rows.csv?`), else which folder lacks which entry, and "check the path"."""
    parts = Path(path).parts
    for depth in range(len(parts)):
        here = Path(*parts[: depth + 1])
        if not here.exists():
            break
    else:  # pragma: no cover - the path exists
        return "check the path"
    base = Path(*parts[:depth]) if depth else Path(".")
    missing, rest = parts[depth], parts[depth + 1:]
    where = os.path.join(str(base), "") if depth else f"the current folder ({os.getcwd()})"
    if not base.is_dir():
        return f"{base} is a file, not a folder; check the path"
    try:
        with os.scandir(base) as entries:
            names = sorted(entry.name for _, entry in zip(range(10_000), entries))
    except OSError:
        names = []
    close = closest_name(missing, names)
    if close:
        suggestion = str(Path(*parts[:depth], close, *rest))
        lead = f"there is no folder {here}" if rest else ""
        return f"{lead}{'; ' if lead else ''}did you mean {suggestion}?"
    what = "folder" if rest else "file or folder"
    visible = [name for name in names if not name.startswith(".")]
    shown = ", ".join(visible[:_SHOWN_ENTRIES]) + (", ..." if len(visible) > _SHOWN_ENTRIES else "")
    holds = f" (it holds {shown})" if visible else " (it is empty)" if not names else ""
    return f"{where} has no {what} {missing!r}{holds}; check the path"


def check_reference(ref, kind: Kind):
    """`ref` as the libraries should load it (a path with `~` expanded, or the Hub id untouched), or
    `FileNotFoundError` at once, in one line naming it and the nearest fix, when it cannot be found
    (see this module's docstring for the rules). Fast: the file system only, never the network.

    Anything that is not a string or a path (a loaded model, None) is returned as it is."""
    if not isinstance(ref, (str, os.PathLike)):
        return ref
    text = os.fspath(ref)
    if not text or "://" in text:  # empty: the library's own error; URLs are the library's business
        return ref
    path = os.path.expanduser(text)
    if os.path.exists(path):
        return path if path != text else ref
    offline = offline_variable(kind)
    ext = text.lower().endswith(DATA_FILE_EXTENSIONS)
    hub_shaped = looks_like_hub_id(text) and not ext
    local = text.startswith("~") or looks_local(text)
    if not local and offline is None:
        return ref  # a Hub id: the library fetches it (or finds it in its cache)
    if hub_shaped and in_hub_cache(text, kind):
        return ref  # a Hub id with a local copy: it loads with or without the network
    fix = nearest_fix(path)
    if local:
        note = ""
        if hub_shaped:
            owner = text.split("/", 1)[0]
            note = f" (the folder {owner}/ exists here, so {text} is read as a path, not as a Hub id)"
        raise FileNotFoundError(f"no such file or folder: {text}; {fix}{note}")
    repo_type = " --repo-type dataset" if kind == "dataset" else ""
    guess = f"; or, for a local {kind}, {fix}" if "did you mean" in fix else ""
    raise FileNotFoundError(
        f"no such file or folder: {text}, and {offline}={os.environ[offline]} is set, so the Hub is not asked and "
        f"the local Hub cache has no copy of the {kind} {text}: download it first with `hf download {text}{repo_type}` "
        f"or unset {offline}{guess}"
    )
