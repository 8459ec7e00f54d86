"""The import graph has no upward arrow: every module's imports (at any depth, lazy ones too) are read with `ast`.

Top level: cli -> flows -> tasks -> mnist_pipeline, and the core package never imports Prefect. Within the core,
each subpackage imports only itself and the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mnist_pipeline", "tasks", "flows", "cli")
FORBIDDEN = {
    "mnist_pipeline": {"prefect", "prefect_dask", "tasks", "flows", "cli"},
    "tasks": {"flows", "cli"},
    "flows": {"cli"},
    "cli": set(),
}
# mnist_pipeline's subpackages (and top-level modules), lowest first; a layer may import only layers before it.
CORE_LAYERS = (
    {"defaults", "errors", "markdown"},
    {"files"},
    {"data"},
    {"validation", "modeling"},
    {"config"},
    {"runs"},
    {"champion", "report"},
    {"predict"},
    {"increments"},
    {"review"},
    {"web"},
)
RANK = {part: rank for rank, layer in enumerate(CORE_LAYERS) for part in layer}


def list_imports(path: Path, source: str) -> set[str]:
    """Every module `source` (the text of `path`) imports, absolute: `from .. import defaults` in mnist_pipeline/data
    is mnist_pipeline.defaults."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found |= {f"{module}.{alias.name}" for alias in node.names} if module == "mnist_pipeline" else {module}
    # `from mnist_pipeline import __version__` names the package itself, not a module in it
    return {name.removesuffix(".__version__") for name in found}


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def find_upward_imports(path: Path, source: str) -> list[str]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    top, wrong = parts[0], []
    for name in sorted(list_imports(path, source)):
        target = name.split(".")
        if target[0] in FORBIDDEN[top]:
            wrong.append(name)
        elif top == "mnist_pipeline" == target[0] and parts[1] != "__init__" and len(target) > 1:
            here, there = parts[1], target[1]
            if here != there and RANK[there] >= RANK[here]:
                wrong.append(name)
    return wrong


def test_every_core_part_has_a_layer() -> None:
    parts = {path.relative_to(ROOT / "mnist_pipeline").parts[0] for path in (ROOT / "mnist_pipeline").rglob("*.py")}
    assert {Path(part).stem for part in parts} - {"__init__"} == set(RANK)


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    assert find_upward_imports(path, path.read_text()) == []


def test_the_check_sees_each_kind_of_upward_import() -> None:
    """The violations this test was written against: data -> validation, config -> champion, the core -> Prefect."""
    source = "import prefect\nfrom mnist_pipeline.validation import x\n\ndef f():\n    from ..champion import rule\n"
    found = find_upward_imports(ROOT / "mnist_pipeline" / "data" / "ingest.py", source)
    assert found == ["mnist_pipeline.champion", "mnist_pipeline.validation", "prefect"]
    source = "from mnist_pipeline.champion.rule import PromotionPolicy\nfrom mnist_pipeline import defaults\n"
    assert find_upward_imports(ROOT / "mnist_pipeline" / "config.py", source) == ["mnist_pipeline.champion.rule"]
    assert find_upward_imports(ROOT / "tasks" / "guard.py", "from flows.pipeline import x\n") == ["flows.pipeline"]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def find_import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph (module -> modules it imports), as the modules along it, or [] when there is none."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[module] = "done"
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return []


def list_imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project's modules that `path` imports: for `from a.b import c`, `a.b.c` when that is a module, else `a.b`."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found |= {f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names}
    return (found & known) - {module_name(path)}


def test_no_module_imports_itself_round_a_circle() -> None:
    """Lazy imports count: a circle hidden in a function still ties two modules into one."""
    known = {module_name(path) for path in modules()}
    graph = {module_name(path): list_imported_modules(path, known) for path in modules()}
    assert find_import_cycle(graph) == []
    assert find_import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
