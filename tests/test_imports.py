"""The layers of xmodal, checked on the source: every import (at the top of a module or
inside a function) goes down the layers, a family never imports a sibling family, and no
two modules import each other, however indirectly.

The layers, lowest first (docs/architecture.md):

    0  the package root, errors, _checks, _io, _espeak, _registry
    1  representations: audio, text, vision, nn          (never each other)
    2  world                                             (the embedded data)
    3  data, metrics, viz                                (never each other)
    4  families: matching, translation, referencing      (never each other)
    5  the engine (engine/ and its task registry)
    6  tasks
    7  cli
    8  __main__
"""

from __future__ import annotations

import ast
import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest

import xmodal

ROOT = Path(xmodal.__file__).parent

LAYERS = {
    "": 0, "errors": 0, "_checks": 0, "_io": 0, "_espeak": 0, "_registry": 0,
    "audio": 1, "text": 1, "vision": 1, "nn": 1,
    "world": 2,
    "data": 3, "metrics": 3, "viz": 3,
    "matching": 4, "translation": 4, "referencing": 4,
    "engine": 5, "registry": 5,
    "tasks": 6,
    "cli": 7, "__main__": 8,
}  # fmt: skip
# Layers whose packages may import each other: the bottom one (errors under _checks) and
# the engine with the registry it keeps of the tasks.
OPEN_LAYERS = {0, 5}


def _module_name(path: Path) -> str:
    parts = ["xmodal", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _imports(path: Path) -> set[str]:
    """The xmodal modules ``path`` imports anywhere in its code."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str) -> set[str]:
    """The xmodal modules ``source`` (a module of ``package``) imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "xmodal"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "xmodal":
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if _is_module(child) else base)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer(graph):
    assert {_package(m) for m in graph} <= set(LAYERS), set(map(_package, graph)) - set(LAYERS)


def _wrong_edges(graph: dict[str, set[str]]) -> list[str]:
    """Each import that goes up the layers or to a sibling package, as a sentence."""
    wrong = []
    for module, targets in graph.items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if there == here:
                continue
            a, b = LAYERS[here], LAYERS[there]
            if b > a or (b == a and a not in OPEN_LAYERS):
                kind = "a sibling" if a == b else "a higher layer"
                wrong.append(f"{module} imports {target} ({kind}: {here} {a} -> {there} {b})")
    return sorted(wrong)


def test_imports_go_down_the_layers(graph):
    wrong = _wrong_edges(graph)
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the module graph with two or more
    modules: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    edges = defaultdict(set, {m: {t for t in ts if t in graph} for m, ts in graph.items()})

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles(graph):
    assert not _cycles(graph)


def test_the_checks_report_what_they_should():
    """On a made-up graph: an upward edge, a sibling and a cycle are all reported."""
    graph = {
        "xmodal.text.vocab": {"xmodal.engine.run", "xmodal.errors"},
        "xmodal.matching.joint": {"xmodal.translation.captioning"},
        "xmodal.translation.captioning": {"xmodal.text.vocab"},
        "xmodal.engine.run": {"xmodal.engine.task"},
        "xmodal.engine.task": {"xmodal.engine.run", "xmodal.text.vocab"},
        "xmodal.errors": set(),
    }
    wrong = _wrong_edges(graph)
    assert len(wrong) == 2
    assert "xmodal.text.vocab imports xmodal.engine.run (a higher layer" in wrong[1]
    assert "xmodal.matching.joint imports xmodal.translation.captioning (a sibling" in wrong[0]
    # text.vocab -> engine.run -> engine.task -> text.vocab: one cycle of three modules
    assert _cycles(graph) == [["xmodal.engine.run", "xmodal.engine.task", "xmodal.text.vocab"]]


def test_the_checker_sees_imports_inside_functions_and_relative_ones():
    """(else the tests above would pass on anything)"""
    source = "def f():\n    from xmodal.engine import run\n    from ..tasks import caption\n"
    found = _imports_in(source, "xmodal.text")
    assert found == {"xmodal.engine.run", "xmodal.tasks.caption"}
