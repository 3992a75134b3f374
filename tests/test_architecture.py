"""The package tree is the architecture: role packages in layers, imports flowing one way, no cycles.

Layers, lowest first (a module may import its own package and any package of a lower layer, never a
higher one; lazy imports inside functions count too)::

    system ← config ← model ← streaming ← data ← engine ← analysis ← study ← cli
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ipslib"
LAYERS = ("system", "config", "model", "streaming", "data", "engine", "analysis", "study", "cli")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """Every ipslib module ``path`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ipslib"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.split(".")[0] != "ipslib":
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    known = modules()
    return {m for m in found if m in known}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the root package: the public API, above every layer
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else -1


def test_every_module_is_in_a_layer():
    stray = [m for m in modules() if layer(m) == -1]
    assert not stray, f"modules outside the layer packages {LAYERS}: {stray}"


def test_imports_flow_one_way():
    wrong = []
    for name, path in modules().items():
        own = layer(name)
        for target in imports_of(path, name):
            theirs = layer(target)
            if own is None:
                continue
            if theirs is None or theirs > own:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layer order " + " <- ".join(LAYERS) + ":\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules().items():
        # a package's __init__ importing its own submodules (lazy exports) is not a cycle through them
        graph[name] |= {t for t in imports_of(path, name) if t != name and not name.startswith(t + ".")}
    return graph


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_cycle_detection_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layer_violation_is_reported(tmp_path, monkeypatch):
    bad = PACKAGE / "model" / "_probe_violation.py"
    bad.write_text("from ipslib.study import experiments\n")
    try:
        with pytest.raises(AssertionError, match="ipslib.model._probe_violation imports ipslib.study"):
            test_imports_flow_one_way()
    finally:
        bad.unlink()


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_and_function_sizes(name):
    path = modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path} has {len(text.splitlines())} lines"
    long = [
        f"{n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(ast.parse(text))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_readme_layout_names_every_package():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Layout")
    table = readme[start : readme.index("\n## ", start + 1)]
    named = set(re.findall(r"`ipslib/([a-z_]+)/`", table))
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert named == packages, f"README layout table names {sorted(named)}, the tree has {sorted(packages)}"
