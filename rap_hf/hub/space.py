"""Publishing the Gradio Space: the demo app, with the `rap_hf` package that is running next to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from .commits import publish

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # rap_hf/, copied into the Space
SPACE_DIR = PACKAGE_DIR.parent / "spaces_demo"  # the Space's source, in a checkout


def _copy_tree(origin: Path, tree: Path) -> None:
    """Every file under `origin` into `tree`, without Python's bytecode caches."""
    for path in sorted(origin.rglob("*")):
        relative = path.relative_to(origin)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            (tree / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tree / relative)


def push_space(repo_id: str, *, space_dir: str | Path | None = None, api=None, token: str | None = None,
               private: bool | None = None, local_dir: str | Path | None = None,
               commit_message: str | None = None, include_package: bool = True):
    """Publish the Gradio Space (`spaces_demo/` of a source checkout, or `space_dir`: app.py,
    README.md with the Space front matter, requirements.txt) in one commit; the repository is
    created as a Gradio Space if missing.

    With `include_package` (default) the `rap_hf` package that is running goes into the Space next
    to `app.py`, so the Space runs exactly this version (its `requirements.txt` installs the
    package's dependencies); without it, `requirements.txt` must install `rap-hf` itself.
    """
    source = Path(space_dir) if space_dir is not None else SPACE_DIR
    missing = [name for name in ("app.py", "README.md", "requirements.txt") if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} is not a Space folder: missing {', '.join(missing)}")
    if "sdk: gradio" not in (source / "README.md").read_text():
        raise ValueError(f"{source / 'README.md'} needs the Space front matter with `sdk: gradio`")

    def build(tree: Path) -> None:
        _copy_tree(source, tree)
        if include_package:
            _copy_tree(PACKAGE_DIR, tree / "rap_hf")

    return publish(local_dir, repo_id, "space", build, api=api, token=token, private=private,
                   commit_message=commit_message or "Update the RAP Space", create_kwargs={"space_sdk": "gradio"})
