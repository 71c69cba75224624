"""The manual (mkdocs.yml, docs/) and the front page (README.md).

- The manual builds with `mkdocs build --strict` (offline: mkdocstrings reads the source, imports nothing).
- Its API reference names every name of `rap_hf.__all__`; its nav lists every page of docs/.
- README.md stays a front page (at most 210 lines) and keeps the test command CI runs.
- Every Python and shell block of README.md and docs/ runs, page by page, in order, in one fresh
  folder: Python blocks in one namespace per page, shell blocks with `bash -euo pipefail`. A block
  that cannot run here has a line `<!-- not runnable: REASON -->` right above its fence.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
REFERENCE = sorted([DOCS / "reference.md", *(DOCS / "reference").glob("**/*.md")])
PAGES = [README, *sorted(DOCS.glob("**/*.md"))]
README_MAX_LINES = 210
TEST_COMMAND = 'pip install -e ".[dev]" && pytest'  # .ci/run runs the README's test command

# Fence languages that are code to run; any other (text, yaml, json, bibtex, none) is shown, not run.
LANGUAGES = {"python": "python", "bash": "shell", "shell": "shell", "sh": "shell", "console": "shell"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
MARKER = re.compile(r"^[ \t]*<!--[ \t]*not runnable:(?P<reason>.*?)-->[ \t]*$")
SHELL_TIMEOUT = 900  # seconds per shell block; the slowest is the README's `rap-hf quickstart --fast`


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    kind: str  # "python" or "shell"
    code: str
    not_runnable: str | None  # the reason, when the line above the fence is a marker

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def fences(text: str) -> list[tuple[int, str, str]]:
    """`(line index of the opening fence, its info string, its body)` of every fenced block, in order."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body, j = [], i + 1
        while j < len(lines) and not re.fullmatch(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        out.append((i, opening["info"].strip(), "\n".join(body) + "\n"))
        i = j + 1
    return out


def blocks(page: Path) -> list[Block]:
    """The runnable-language blocks of `page`, in order, each with its not-runnable reason if marked."""
    text = page.read_text()
    lines = text.splitlines()
    out = []
    for index, info, body in fences(text):
        language = info.split()[0].lower() if info else ""
        if language not in LANGUAGES:
            continue
        marker = MARKER.match(lines[index - 1]) if index > 0 else None
        out.append(Block(page, index + 1, LANGUAGES[language], body, marker["reason"].strip() if marker else None))
    return out


def shell_commands(block: Block) -> str:
    """The commands of a shell block: a `console` block's `$ ` lines, or the whole block."""
    if block.code.lstrip().startswith("$ "):
        return "\n".join(line[2:] for line in block.code.splitlines() if line.startswith("$ ")) + "\n"
    return block.code


RUN_PAGES = [page for page in PAGES if any(b.not_runnable is None for b in blocks(page))]


def test_manual_builds_in_strict_mode(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "reference" / "index.html").is_file()


def test_api_reference_lists_every_public_name():
    import rap_hf

    text = "\n".join(page.read_text() for page in REFERENCE)
    directives = set(re.findall(r"^:::[ \t]+([\w.]+)", text, flags=re.MULTILINE))
    missing = [name for name in rap_hf.__all__
               if f"rap_hf.{name}" not in text and not any(d.split(".")[-1] == name for d in directives)]
    assert not missing, f"names of rap_hf.__all__ the API reference does not mention: {missing}"


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_nav_lists_every_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    listed = [page for page in _nav_pages(config["nav"]) if not re.match(r"\w+://", page)]
    pages = {page.relative_to(DOCS).as_posix() for page in DOCS.glob("**/*.md")}
    assert len(listed) == len(set(listed)), f"pages listed twice in the nav: {listed}"
    assert sorted(pages - set(listed)) == [], "pages of docs/ missing from mkdocs.yml's nav"
    assert sorted(set(listed) - pages) == [], "nav entries with no page in docs/"


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the manual (docs/) holds the rest"
    assert TEST_COMMAND in README.read_text()


def test_not_runnable_markers_give_a_reason_and_sit_above_a_fence():
    problems = []
    for page in PAGES:
        text = page.read_text()
        lines = text.splitlines()
        info = {index: info for index, info, _ in fences(text)}  # opening fence line -> its info string
        for number, line in enumerate(lines):
            marker = MARKER.match(line)
            if not marker:
                continue
            where = f"{page.relative_to(ROOT).as_posix()}:{number + 1}"
            if number + 1 not in info:
                problems.append(f"{where}: the marker is not directly above a fence")
            elif (info[number + 1].split() or [""])[0].lower() not in LANGUAGES:
                problems.append(f"{where}: the marker sits above a block that is not run anyway ({info[number + 1]!r})")
            if len(re.findall(r"[A-Za-z][\w'-]*", marker["reason"])) < 3:
                problems.append(f"{where}: the marker gives no reason (a few words: why it cannot run here)")
    assert not problems, "\n".join(problems)


def test_the_collector_finds_the_blocks():
    sample = ("intro\n<!-- not runnable: needs a GPU here -->\n```bash\nrap-hf score\n```\n\n```text\nx\n```\n"
              "- item\n\n  ```python\n  print(1)\n  ```\n")
    assert [(index, info) for index, info, _ in fences(sample)] == [(2, "bash"), (6, "text"), (11, "python")]
    assert fences(sample)[2][2] == "print(1)\n"
    assert MARKER.match(sample.splitlines()[1])["reason"].strip() == "needs a GPU here"
    readme = blocks(README)
    assert [b.kind for b in readme if b.not_runnable is None] == ["shell", "python"]
    assert any(TEST_COMMAND in b.code and b.not_runnable for b in readme)


@pytest.fixture
def registries():
    """A page may register a layout, an executor or a command (as the manual shows): each is undone
    afterwards, so no page changes the flags the other tests see."""
    from rap_hf.cli.commands import COMMANDS
    from rap_hf.data.layouts.registry import LAYOUTS
    from rap_hf.distributed import EXECUTORS

    saved = [(registry, registry.copy()) for registry in (COMMANDS, LAYOUTS, EXECUTORS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before) if isinstance(registry, dict) else registry.extend(before)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_block_of_the_page_runs(page, tmp_path, monkeypatch, registries):
    """The page's blocks in order, in one fresh folder: what one block writes, the next may read."""
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false",
           "RAP_HF_CACHE": str(tmp_path / ".rap-hf-cache")}  # the embedded scorer's cache, as on a new machine
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    namespace = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.not_runnable is not None:
            continue
        if block.kind == "python":
            exec(compile(block.code.replace("/tmp/", f"{work}/"), block.where, "exec"), namespace)
            continue
        try:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", shell_commands(block).replace("/tmp/", f"{work}/")],
                                    cwd=work, env={**os.environ, **env}, capture_output=True, text=True,
                                    timeout=SHELL_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"{block.where}: still running after {SHELL_TIMEOUT} s:\n{block.code}\n{error.stdout}\n{error.stderr}")
        assert result.returncode == 0, (f"{block.where} exited {result.returncode}:\n{block.code}\n"
                                        f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}")
