"""The rooms of the package import only downward (docs/architecture.md).

Every module's imports are read with ``ast`` (the ones inside functions too: a lazy
import is still a dependency) and resolved to the modules they name. From the bottom:
``_check``; the KPI formulas (``kpis``) and the models (``models``); the input side
(``data``); the period engine (``engine``); the KPI catalogue; the output side
(``report``); and on top what runs it: ``refresh``, the command line, the Excel script,
the Excel functions (``udfs/``) and the template generator (``workbook/``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxkpi_xl._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cxkpi_xl"
MAPPED = {"udfs": ROOT / "udfs", "workbook": ROOT / "workbook"}
"""Packages pyproject.toml maps into cxkpi_xl from folders beside it."""

ALLOWED = {
    "_check": set(),
    "kpis": {"_check"},
    "models": {"_check"},
    "data": {"_check", "kpis"},
    "engine": {"_check", "kpis", "models", "data"},
    "catalogue": {"_check", "kpis", "models", "engine"},
    "report": {"_check", "kpis", "engine", "catalogue", "data"},
}
"""The rooms each room may import besides itself. Rooms not listed (the package's
``__init__``, ``_moved``, ``refresh``, ``cli``, ``excel``, ``udfs``, ``workbook``) are the
top: they may import any room, and no room listed here may import them."""

REPORT_MAY_READ = {"data.cells", "data.issues", "data.periods", "data.schema", "data.zipparts"}
"""What the report may import of the input side: the issue record, cell values and
references, what a package's zip directory says of its sheets, the periods and the
schema; never a reader of a source."""


def _modules() -> dict[str, Path]:
    """Every module of the product by dotted name."""
    found = {}
    folders = {PACKAGE: ROOT / PACKAGE} | {f"{PACKAGE}.{k}": v for k, v in MAPPED.items()}
    for prefix, folder in folders.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((prefix, *parts))] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, module named, name imported from it or None) of every import of a module,
    relative ones made absolute."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                up = parts[: len(parts) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, base, alias.name


def _targets(module: str, imported: str | None) -> list[str]:
    """The product modules an import statement depends on."""
    if not (module == PACKAGE or module.startswith(PACKAGE + ".")):
        return []
    if imported is not None and f"{module}.{imported}" in MODULES | _aliases():
        return [f"{module}.{imported}"]  # a module of a package (the package runs first)
    return [module]


def _aliases() -> dict[str, str]:
    return {f"{PACKAGE}.{old}": f"{PACKAGE}.{new}" for old, new in MOVED.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    aliases = _aliases()
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        deps = graph.setdefault(name, set())
        for _, module, imported in _imports(name):
            for target in _targets(module, imported):
                deps.add(aliases.get(target, target))
    return graph


def test_every_import_of_the_product_names_a_module_that_exists():
    """A relative import one level off (easy to leave after moving a file) or an old name
    in the rooms fails here, not in a user's hands."""
    aliases = _aliases()
    wrong = []
    for name, path in MODULES.items():
        outside_rooms = not path.is_relative_to(ROOT / PACKAGE)
        for line, module, _ in _imports(name):
            if not (module == PACKAGE or module.startswith(PACKAGE + ".")):
                continue
            if module in MODULES or (outside_rooms and module in aliases):
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_the_rooms_below_it(room):
    graph = _graph()
    upward = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if _room(name) == room
        for target in targets
        if _room(target) not in ALLOWED[room] | {room}
    )
    assert upward == []


def test_the_report_never_imports_a_reader():
    graph = _graph()
    readers = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if _room(name) == "report"
        for target in targets
        if _room(target) == "data" and target.removeprefix(PACKAGE + ".") not in REPORT_MAY_READ
    )
    assert readers == []


def test_no_module_imports_itself_through_others():
    """No circle of imports, however long (Tarjan's strongly connected components)."""
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_walk_sees_lazy_and_relative_imports():
    """The walk finds imports inside functions and resolves relative ones: the engine's
    lazy import of the models is seen, as engine -> models."""
    graph = _graph()
    assert f"{PACKAGE}.models" in graph[f"{PACKAGE}.engine.predictive"]
    assert f"{PACKAGE}.data.reader" in graph[f"{PACKAGE}.engine.tables"]
    assert f"{PACKAGE}._check" in graph[f"{PACKAGE}.kpis.surveys"]


def test_no_module_is_longer_than_a_room_should_hold():
    """The engine is split by what it computes and the models by model; none of their
    modules, nor of the formula families, passes 400 lines."""
    long = {
        name: n
        for name, path in MODULES.items()
        if _room(name) in ("engine", "models", "kpis")
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


def test_the_old_module_names_are_the_modules_of_the_rooms():
    """``cxkpi_xl.reader`` is ``cxkpi_xl.data.reader`` itself (a patch on one is on both),
    and every name of MOVED points at a module that exists."""
    import importlib

    for old, new in MOVED.items():
        assert f"{PACKAGE}.{new}" in MODULES, new
        a = importlib.import_module(f"{PACKAGE}.{old}")
        b = importlib.import_module(f"{PACKAGE}.{new}")
        assert a is b, old
        assert a.__spec__.name == f"{PACKAGE}.{new}"


def test_every_room_is_in_the_wheel():
    """pyproject.toml lists the packages by name: a room left out of it would be missing
    from a normal (non-editable) install while every test here passes."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages <= listed, sorted(packages - listed)


def test_the_old_names_are_imported_only_when_asked_for():
    """``import cxkpi_xl`` loads neither the report side nor xlwings (Excel's runtime is
    chosen when xlwings is first imported), old names or not."""
    import subprocess
    import sys

    code = (
        "import sys, cxkpi_xl\n"
        "print(sorted(m for m in sys.modules if m.startswith('cxkpi_xl.report')"
        " or m in ('xlwings', 'cxkpi_xl.excel', 'cxkpi_xl.refresh')))\n"
        "import cxkpi_xl.package\n"
        "print(sorted(m for m in sys.modules if m.startswith('cxkpi_xl.report')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == str(
        sorted(f"cxkpi_xl.report{m}" for m in ("", ".charts", ".layout", ".package", ".printing"))
    )
