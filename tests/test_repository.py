"""The repository as a whole: what it cites, what it names, how its modules use one another.

Fast, no models: these tests read the text of the repository's files, the ones `git ls-files`
lists plus new files git does not ignore (what the next commit holds), binary files skipped.

- Every `*.md` document a file names exists in the repository: under the repository root, beside
  the citing file, or, for a bare name or a path tail such as `model_cards/model_card.md`, somewhere
  in the repository. URLs are exempt, and so are the few names in `NOT_CITATIONS`, which name files
  the code writes or an example's own file, not documents.
- No file names a folder of one particular machine: a user's or CI worker's home or work folder,
  or a Windows drive path. `/tmp/...` is allowed: the examples of README.md and docs/ write there,
  and `tests/test_docs.py` redirects it to pytest's temporary folder.
- No module of `rap_hf/`, `benchmarks/`, `spaces_demo/` or `docs/` uses another module's private
  names: `from rap_hf.x import _name` (relative or absolute), or `module._name` /
  `getattr(module, "_name")` on an imported rap_hf module; the same for the `benchmarks` package.
  What modules share is public, named without an underscore. Private attributes of third-party
  modules and objects (`config._name_or_path`) are not this project's business, and `tests/` may
  reach into the module each test file tests, so it is not scanned.
"""

from __future__ import annotations

import ast
import posixpath
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rap_hf"
# Packages whose private names other modules must not use: the library, and the benchmarks package.
FIRST_PARTY = (PACKAGE, "benchmarks")

# Names of `.md` files that are mentioned without citing a document of the repository.
NOT_CITATIONS = {
    "report.md": "the selection report that `rap-hf select`, `Selection.save_to_disk` and the quickstart write",
    "my_card.md": "a user's own card template, in the example of model_cards/README.md",
    "no-such-card.md": "a template that does not exist on purpose, in a test of the error",
}

_URL = re.compile(r"\b(?:https?|ftp)://\S+")
_MARKDOWN_NAME = re.compile(r"(?<![\w.-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])")
# A home or work folder of a machine (Linux, macOS), or a Windows drive path. Preceded by nothing
# that would make it part of a relative path or an expression (`{tmp}/home/...`, `base/root/`).
_MACHINE_PATH = re.compile(
    r"(?<![\w.~$/\\})\]-])(/(?:work|home|root|Users|mnt)/[^\s\"'`)\]]*"
    r"|[A-Za-z]:\\{1,2}(?![ntr]\b)[\w.$-][^\s\"'`]*)"  # not "s:\n{...}", an escape after a colon
)
_SCANNED_PACKAGES = ("rap_hf/", "benchmarks/", "spaces_demo/", "docs/")


@lru_cache(maxsize=1)
def repository_files() -> tuple[str, ...]:
    """Paths (relative, POSIX) of the repository's files that exist in the working tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout, so the repository's files cannot be listed: {error}")
    return tuple(sorted({p for p in listed.split("\0") if p and (ROOT / p).is_file()}))


@lru_cache(maxsize=1)
def text_files() -> tuple[tuple[str, str], ...]:
    """`(path, text)` of every repository file that is UTF-8 text (no NUL byte)."""
    out = []
    for path in repository_files():
        data = (ROOT / path).read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            out.append((path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return tuple(out)


def _numbered_lines(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, _URL.sub(" ", line)


def resolves(name: str, citing: str, files: frozenset[str]) -> bool:
    """Whether the `.md` name mentioned in file `citing` is a file of the repository."""
    candidates = {posixpath.normpath(name), posixpath.normpath(posixpath.join(posixpath.dirname(citing), name))}
    if candidates & files:
        return True
    tail = posixpath.normpath(name).lstrip("./")
    return any(f == tail or f.endswith("/" + tail) for f in files)


def test_the_repository_is_listed():
    assert "README.md" in repository_files() and "tests/test_repository.py" in repository_files()
    assert any(path.endswith(".py") for path, _ in text_files())


def test_every_cited_document_is_in_the_repository():
    files = frozenset(repository_files())
    offenders = []
    for path, text in text_files():
        for number, line in _numbered_lines(text):
            for name in _MARKDOWN_NAME.findall(line):
                if posixpath.basename(name) in NOT_CITATIONS or resolves(name, path, files):
                    continue
                offenders.append(f"{path}:{number}: cites {name}, which is not in the repository")
    assert not offenders, "Documents cited but not in the repository (add them, or cite one that is):\n" + "\n".join(
        offenders)


def test_no_file_names_a_folder_of_one_machine():
    offenders = []
    for path, text in text_files():
        for number, line in _numbered_lines(text):
            for found in _MACHINE_PATH.findall(line):
                offenders.append(f"{path}:{number}: names the machine path {found}")
    assert not offenders, ("Paths of one machine in the repository (use a path relative to the repository, "
                           "a temporary folder, or a placeholder):\n" + "\n".join(offenders))


# --------------------------------------------------------------------------- private names
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_first_party(module: str | None) -> bool:
    return module is not None and any(module == name or module.startswith(name + ".") for name in FIRST_PARTY)


def module_of(path: str) -> tuple[str, bool]:
    """(dotted module name, whether it is a package's `__init__`) of a repository `.py` file."""
    parts = path[: -len(".py")].split("/")
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def is_module(dotted: str, files: frozenset[str]) -> bool:
    base = dotted.replace(".", "/")
    return f"{base}.py" in files or f"{base}/__init__.py" in files


def imported_module(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute name of the module an import statement reads from (None when it cannot be)."""
    if node.level == 0:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(base):
        return None
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else [])) or None


def private_uses(path: str, source: str, files: frozenset[str]) -> list[str]:
    """`path:line: offender` for every use of another rap_hf module's private names in `source`."""
    tree = ast.parse(source, filename=path)
    module, is_package = module_of(path)
    modules: dict[str, str] = {}  # local name -> rap_hf module it is bound to
    offenders: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_first_party(alias.name):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            source_module = imported_module(node, module, is_package)
            if not _is_first_party(source_module):
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    offenders.append((node.lineno, f"from {source_module} import {alias.name}"))
                elif is_module(f"{source_module}.{alias.name}", files):
                    modules[alias.asname or alias.name] = f"{source_module}.{alias.name}"

    def resolve(expr: ast.expr) -> str | None:
        """The rap_hf module an expression names (`ace_math`, `rap_hf.scoring.ace`), if any."""
        if isinstance(expr, ast.Name):
            return modules.get(expr.id)
        if isinstance(expr, ast.Attribute):
            parent = resolve(expr.value)
            if parent is not None and is_module(f"{parent}.{expr.attr}", files):
                return f"{parent}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = resolve(node.value)
            if owner is not None:
                offenders.append((node.lineno, f"{ast.unparse(node.value)}.{node.attr} ({owner}.{node.attr})"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _is_private(node.args[1].value)):
            owner = resolve(node.args[0])
            if owner is not None:
                offenders.append((node.lineno, f"{node.func.id}({ast.unparse(node.args[0])}, "
                                               f"{node.args[1].value!r}) ({owner}.{node.args[1].value})"))
    return [f"{path}:{line}: {offender}" for line, offender in sorted(offenders, key=lambda item: item[0])]


def test_modules_use_only_public_names_of_other_modules():
    files = frozenset(repository_files())
    sources = [(p, t) for p, t in text_files() if p.endswith(".py") and p.startswith(_SCANNED_PACKAGES)]
    assert any(p.startswith(PACKAGE + "/") for p, _ in sources)
    offenders = [line for path, text in sources for line in private_uses(path, text, files)]
    assert not offenders, ("Private names used across modules (make the name public in its module, or move "
                           "the code that needs it there):\n" + "\n".join(offenders))


# --------------------------------------------------------------------------- the checks check
def test_the_checks_catch_what_they_should_and_nothing_else():
    files = frozenset({"README.md", "docs/method.md", "rap_hf/__init__.py", "rap_hf/selection.py",
                       "rap_hf/scoring/__init__.py", "rap_hf/scoring/ace.py", "rap_hf/model_cards/model_card.md",
                       "benchmarks/README.md"})
    # Citations: by root path, beside the file, by bare name or path tail; a missing one fails.
    assert resolves("docs/method.md", "rap_hf/config.py", files)
    elsewhere = "docs/notes" + ".md"  # a citing file; spelt in two parts, like every missing name here
    assert resolves("method.md", elsewhere, files)
    assert resolves("../README.md", elsewhere, files)
    assert resolves("model_cards/model_card.md", "README.md", files)
    assert not resolves("NOTES" + ".md", "rap_hf/config.py", files)
    assert not resolves("docs/Method" + ".md", "README.md", files)
    line = "see docs/method.md and https://example.org/x/SPEC" + ".md and `benchmarks/README.md`"
    assert _MARKDOWN_NAME.findall(_URL.sub(" ", line)) == ["docs/method.md", "benchmarks/README.md"]
    assert _MARKDOWN_NAME.findall('(folder / "report.md").write_text(...); f"{out}/report.md"') == [
        "report.md", "report.md"]
    # Machine paths: absolute home and work folders and drive paths; not /tmp, URLs or relative paths.
    found = lambda text: _MACHINE_PATH.findall(_URL.sub(" ", text))  # noqa: E731
    home = "/" + "home/me/data"
    assert found(f'out = "{home}"') == [home]
    assert found("cd /" + "work/main && make") == ["/" + "work/main"]
    assert found('"C:' + '\\\\Users\\\\me"') and found("C:" + "\\data\\x")
    assert found('to_parquet("/tmp/rap/train.parquet")') == []
    assert found("https://host.example/home/page and benchmarks/results/root/x and {tmp}/home/x") == []
    assert found('pytest.fail(f"not served in 180 s:\\n{log}")') == []
    # Private names: imports (absolute and relative) and attributes of rap_hf modules only.
    source = (
        "import rap_hf\nimport rap_hf.selection as sel\nfrom rap_hf.selection import _decide, select\n"
        "from ..selection import _CODE\nfrom . import ace as ace_math\nfrom .ace import decoder_layers\n"
        "import numpy as np\n"
        "sel._paper(); rap_hf.selection._reference(); ace_math._check(); ace_math.capture_attention()\n"
        "getattr(sel, '_fingerprint'); np._internal; config._name_or_path; rap_hf.__version__\n"
    )
    offenders = private_uses("rap_hf/scoring/scorer.py", source, files)
    assert [o.split(": ", 1)[1] for o in offenders] == [
        "from rap_hf.selection import _decide",
        "from rap_hf.selection import _CODE",
        "sel._paper (rap_hf.selection._paper)",
        "rap_hf.selection._reference (rap_hf.selection._reference)",
        "ace_math._check (rap_hf.scoring.ace._check)",
        "getattr(sel, '_fingerprint') (rap_hf.selection._fingerprint)",
    ]
    assert all(o.startswith("rap_hf/scoring/scorer.py:") for o in offenders)
    assert offenders[0].startswith("rap_hf/scoring/scorer.py:3: ")


# --------------------------------------------------------------------------- sizes
# One job per module, and functions a reader takes in at once (the house's goals).
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100


def oversized(path: str, source: str) -> list[str]:
    """`path: N lines` when the module is over MAX_MODULE_LINES, and `path:line: name is N lines` for
    each function or method over MAX_FUNCTION_LINES (decorators and docstrings count)."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{path}: {lines} lines")
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno}: {node.name} is {length} lines")
    return found


def test_modules_and_functions_stay_small():
    sources = [(p, t) for p, t in text_files() if p.endswith(".py") and p.startswith(PACKAGE + "/")]
    assert sources
    offenders = [line for path, text in sources for line in oversized(path, text)]
    assert not offenders, (f"Modules over {MAX_MODULE_LINES} lines or functions over {MAX_FUNCTION_LINES} (split them "
                           "by job):\n" + "\n".join(offenders))


def test_the_size_check_counts_modules_and_functions():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    long_function = f"@decorator\ndef long():\n{body}\n"
    assert oversized("m.py", long_function) == [f"m.py:2: long is {MAX_FUNCTION_LINES + 2} lines"]
    assert oversized("m.py", "def short():\n    return 1\n") == []
    assert oversized("m.py", "x = 1\n" * (MAX_MODULE_LINES + 1)) == [f"m.py: {MAX_MODULE_LINES + 1} lines"]


# --------------------------------------------------------------------------- import circles
def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` outside `if TYPE_CHECKING:` blocks (those imports never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """`{module: the rap_hf modules it imports}`, at module level and inside functions alike, for the
    modules of `sources` (`{path: text}`). An import of a name resolves to the submodule of that name
    when there is one, else to the module it is read from. The root package is left out: its
    `__init__` imports nothing when imported (its names load lazily, through `__getattr__`), and what
    other modules take from it (`__version__`) is defined before anything else."""
    files = frozenset(sources)
    modules = {module_of(path)[0]: path for path in sources}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        if module == PACKAGE:
            continue
        is_package = path.endswith("__init__.py")
        edges = graph.setdefault(module, set())
        for node in _runtime_nodes(ast.parse(sources[path], filename=path)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = imported_module(node, module, is_package) or ""
                targets = [f"{base}.{a.name}" if is_module(f"{base}.{a.name}", files) else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and not is_module(target, files):
                    target = target.rpartition(".")[0]
                if target and target not in (module, PACKAGE) and target.split(".")[0] == PACKAGE:
                    edges.add(target)
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`: its strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circle_in_the_package():
    sources = {p: t for p, t in text_files() if p.endswith(".py") and p.startswith(PACKAGE + "/")}
    circles = import_circles(import_graph(sources))
    assert not circles, ("Modules that import each other, directly or around a circle (move what both need "
                         "into a lower module):\n" + "\n".join(" -> ".join(c) for c in circles))


def test_the_circle_check_finds_circles_through_functions_and_not_through_type_checking():
    sources = {
        "rap_hf/__init__.py": "def __getattr__(name):\n    from .a import x\n",
        "rap_hf/a.py": "from . import __version__\nfrom .b import y\n",
        "rap_hf/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n",
        "rap_hf/c.py": "def late():\n    from .d import z\n",
        "rap_hf/d.py": "import rap_hf.c\n",
    }
    graph = import_graph(sources)
    assert graph["rap_hf.a"] == {"rap_hf.b"} and graph["rap_hf.b"] == set() and PACKAGE not in graph
    assert import_circles(graph) == [["rap_hf.c", "rap_hf.d"]]


def test_the_rules_sit_below_scoring_and_selection():
    """The method's pure rules (`rap_hf.rules`) import no other rap_hf module (so neither a model nor
    the grader), and selection, the pure stage, imports nothing from scoring: both call down into the
    rules."""
    sources = {p: t for p, t in text_files() if p.endswith(".py") and p.startswith(PACKAGE + "/")}
    graph = import_graph(sources)
    assert graph["rap_hf.rules"] == set()
    assert "import torch" not in sources["rap_hf/rules.py"] and "transformers" not in sources["rap_hf/rules.py"]
    selection = {m: sorted(t for t in targets if t.startswith("rap_hf.scoring"))
                 for m, targets in graph.items() if m.startswith("rap_hf.selection")}
    assert selection and not any(selection.values()), selection
    assert any("rap_hf.rules" in graph[m] for m in selection) and "rap_hf.rules" in graph["rap_hf.scoring.rollout_cde"]
