"""How every push reaches the Hub: a repository tree built in a folder, then uploaded as ONE commit.

A push that fails half-way leaves the repository as it was. With `local_dir` the tree is written
there and nothing is uploaded. The token goes to `create_repo`, `list_repo_files` and
`create_commit` only: never logged, never written.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)


def _tree_folder(local_dir: str | Path | None) -> Path:
    if local_dir is None:
        return Path(tempfile.mkdtemp(prefix="rap-hf-push-"))
    folder = Path(local_dir)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new folder for the repository tree")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload(tree: Path, repo_id: str, repo_type: str, *, api, token, private, commit_message: str,
            owned: re.Pattern | None = None, create_kwargs: dict | None = None):
    """Create the repo if needed, then ONE commit: every file of `tree`, and the deletion of the
    repo's files matching `owned` that the new tree does not have (left from an earlier push)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = api if api is not None else HfApi()
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    names = {p.relative_to(tree).as_posix() for p in files}
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(tree).as_posix(), path_or_fileobj=str(p))
                  for p in files]
    api.create_repo(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token,
                    **(create_kwargs or {}))
    if owned is not None:
        existing = api.list_repo_files(repo_id=repo_id, repo_type=repo_type, token=token)
        stale = sorted(f for f in existing if owned.search(f) and f not in names)
        operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
        if stale:
            logger.info("Removing %d files of an earlier push from %s: %s", len(stale), repo_id, stale[:5])
    logger.info("Uploading %d files to the %s repository %s in one commit", len(files), repo_type, repo_id)
    return api.create_commit(repo_id=repo_id, repo_type=repo_type, operations=operations,
                             commit_message=commit_message, token=token)


def publish(local_dir: str | Path | None, repo_id: str, repo_type: str, build: Callable[[Path], None], **upload):
    """Build the tree with `build(folder)`, then upload it (or keep it, with `local_dir`). A
    temporary tree is removed whatever happens; a `local_dir` that fails half-way is left to read.

    `upload` holds `api`, `token`, `private`, `commit_message`, and optionally `owned` (a pattern of
    the files an earlier push left that this one replaces) and `create_kwargs` (for `create_repo`)."""
    tree = _tree_folder(local_dir)
    try:
        build(tree)
        if local_dir is not None:
            logger.info("Wrote the %s repository tree for %s to %s (nothing uploaded)", repo_type, repo_id, tree)
            return tree
        return _upload(tree, repo_id, repo_type, **upload)
    finally:
        if local_dir is None:
            shutil.rmtree(tree, ignore_errors=True)
