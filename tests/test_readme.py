"""Every Python example in README.md runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.fixture
def registries():
    """An example may register a layout, an executor or a command (as the README shows): each is
    undone afterwards, so no example changes the flags the other tests see."""
    from rap_hf.cli.commands import COMMANDS
    from rap_hf.data.layouts.registry import LAYOUTS
    from rap_hf.distributed import EXECUTORS

    saved = [(registry, registry.copy()) for registry in (COMMANDS, LAYOUTS, EXECUTORS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before) if isinstance(registry, dict) else registry.extend(before)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, registries):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index].replace("/tmp/", f"{tmp_path}/")
    exec(compile(code, f"README.md example {index + 1}", "exec"), {"__name__": "__readme__"})
