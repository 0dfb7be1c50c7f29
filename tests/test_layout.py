"""The package's shape: no import circle between its modules, and the layers' rules.

Imports are read from the source (``ast``), all of them: at module level, inside
functions, and under ``TYPE_CHECKING``, since each is an import all the same.  An import
names a module of the package (``from pytest_celerybase.recorder import records``: the
module ``records``) or a package's face (``from pytest_celerybase.recorder import
HookRecorder``: ``recorder/__init__.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_celerybase

PACKAGE = Path(pytest_celerybase.__file__).resolve().parent
MAX_LINES = 450


def modules_of(root: Path, name: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([name, *parts])] = path
    return found


def import_graph(root: Path, name: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    modules = modules_of(root, name)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_the_package_modules() -> None:
    assert circles(import_graph(PACKAGE, "pytest_celerybase")) == []


@pytest.mark.parametrize(
    "back_import",
    [
        "def later():\n    from pkg.low import helper\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import low\n",
        "from . import low\n",
    ],
    ids=["inside-a-function", "under-TYPE_CHECKING", "relative"],
)
def test_the_check_finds_a_circle_made_of_any_import(tmp_path: Path, back_import: str) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from pkg import high\n\ndef helper():\n    pass\n")
    (pkg / "high.py").write_text(back_import)
    assert circles(import_graph(pkg, "pkg")) == [["pkg.high", "pkg.low"]]
    (pkg / "high.py").write_text("import os\n")
    assert circles(import_graph(pkg, "pkg")) == []


def test_nothing_imports_the_plugin_module() -> None:
    graph = import_graph(PACKAGE, "pytest_celerybase")
    assert [m for m, targets in graph.items() if "pytest_celerybase.plugin" in targets] == []


def test_the_bases_import_nothing_of_the_plugin_but_its_bindings() -> None:
    graph = import_graph(PACKAGE, "pytest_celerybase")
    allowed = {"pytest_celerybase.resources.bindings", "pytest_celerybase._compat"}
    outside = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("pytest_celerybase.bases")
        for target in targets
        if not target.startswith("pytest_celerybase.bases") and target not in allowed
    }
    assert outside == set()


def test_only_the_pytest_glue_imports_pytest() -> None:
    glue = {"plugin.py", "fixtures.py", "_settings.py"}
    importing = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(n == "pytest" or n.startswith(("pytest.", "_pytest")) for n in names):
                importing.add(path.relative_to(PACKAGE).as_posix())
    assert importing == glue


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {p: n for p, n in lengths.items() if n > MAX_LINES} == {}
