"""No two modules of the package import each other (function-level and TYPE_CHECKING imports count).

A mutual import is a cycle that only works while someone remembers which import to defer; the
graph is read from the source with :mod:`ast`, so no module is executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import genai_factory

ROOT = Path(genai_factory.__file__).resolve().parent
PACKAGE = "genai_factory"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(importer: str, path: Path) -> Iterator[str]:
    """Every module name an import statement anywhere in ``path`` may bind."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, importer, is_package)
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a ``from x import y`` of a submodule counts)."""
    modules = all_modules()
    return {
        name: {
            target for target in imported_names(name, path) if target in modules and target != name
        }
        for name, path in modules.items()
    }


def mutual_pairs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (first, second)
        for first, targets in graph.items()
        for second in targets
        if first < second and first in graph.get(second, set())
    )


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "genai_factory.llm.base" in graph["genai_factory.llm"]  # from a package's __init__
    assert "genai_factory.config" in graph["genai_factory.llm.registry"]
    assert len(graph) > 100


def test_relative_imports_resolve_against_the_package() -> None:
    tree = ast.parse("from . import sibling\nfrom ..other import thing\n")
    first, second = (node for node in tree.body if isinstance(node, ast.ImportFrom))
    assert _absolute(first, "genai_factory.a.b", is_package=False) == "genai_factory.a"
    assert _absolute(second, "genai_factory.a.b", is_package=False) == "genai_factory.other"
    assert _absolute(first, "genai_factory.a", is_package=True) == "genai_factory.a"


def test_a_mutual_pair_is_found() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.a", "p.c"}, "p.c": set()}
    assert mutual_pairs(graph) == [("p.a", "p.b")]


def test_no_two_modules_import_each_other() -> None:
    pairs = mutual_pairs(import_graph())
    assert not pairs, "modules that import each other: " + "; ".join(
        f"{first} <-> {second}" for first, second in pairs
    )


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), set()) - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_serving_guards_never_reach_the_training_code() -> None:
    graph = import_graph()
    serving = [name for name in graph if name.startswith(f"{PACKAGE}.safety")]
    serving = [name for name in serving if not name.startswith(f"{PACKAGE}.safety_training")]
    assert f"{PACKAGE}.safety.registry" in serving
    leaks = {
        name: sorted(
            t for t in reachable(graph, name) if t.startswith(f"{PACKAGE}.safety_training")
        )
        for name in serving
    }
    assert not {name: found for name, found in leaks.items() if found}
