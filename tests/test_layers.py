"""The code's layers point one way: sht_model <- tracker <- train <- benchmarks, and no module imports
another that imports it back (imports inside functions count: a lazy cycle is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("sht_model", "tracker", "train", "benchmarks")
# What each package may import of the others.
ALLOWED = {"sht_model": set(), "tracker": {"sht_model"}, "train": {"sht_model", "tracker"},
           "benchmarks": {"sht_model", "tracker", "train"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}     # `from pkg import submodule`
    return {m for m in found if m.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for module in _imports(path, name):
            while module and module not in files:       # `from x.y import func` -> module x.y
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_layers_point_one_way():
    wrong = [f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
             if b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = {k: {t for t in v if not k.startswith(t + ".") and not (k.endswith("__init__") and t.startswith(k))}
             for k, v in import_graph().items()}
    # A package's __init__ importing its own submodules, and submodules importing the package, is one unit.
    found = [c for c in cycles(graph) if not _package_with_its_parts(c)]
    assert not found, found


def _package_with_its_parts(component: list[str]) -> bool:
    roots = [m for m in component if all(o == m or o.startswith(m + ".") for o in component)]
    return bool(roots)


def test_the_walker_sees_lazy_imports_and_cycles():
    """The checks can fail: a function-level import is found, and a two-module loop is reported."""
    graph = import_graph()
    assert "sht_model.weights" in graph["tracker.backends"] or any(
        t.startswith("sht_model") for t in graph["tracker.pipeline"])
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
