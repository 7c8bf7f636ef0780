"""The desktop app's modules form no import cycle: controllers are handed their collaborators,
so nothing below the main window imports it (not even for type checking), and every module
imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "app" / "gui"


def gui_import_graph(folder: Path = GUI) -> dict[str, set[str]]:
    """Module → the app.gui modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    names = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                if parts[:2] == ["app", "gui"] and len(parts) >= 3 and parts[2] in names:
                    edges.add(parts[2])
        graph[path.stem] = edges - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, …, a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_gui_modules_import_graph_has_no_cycle() -> None:
    graph = gui_import_graph()
    assert {"asking", "controller", "mainwindow"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"
    assert [m for m, edges in graph.items() if "mainwindow" in edges] == ["__init__"]


def test_each_controller_imports_first_in_a_fresh_interpreter() -> None:
    """Importing a controller before the window must work (it would not with a cycle)."""
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(f'app.gui.{name}')\n"
    )
    order = ["asking", "controller", "document", "mainwindow"]
    result = subprocess.run(
        [sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{order}: {result.stderr}"


def _private_names_defined(tree: ast.AST) -> set[str]:
    """``_name``s a module defines: functions, methods, classes and attributes it assigns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_gui_module_reaches_into_another_modules_private_members() -> None:
    """``window._x``, ``self.studio._timer``: a private name is only used by the module that
    defines it (a document's own undo commands may call its raw mutations)."""
    reach_ins: list[str] = []
    for path in sorted(GUI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _private_names_defined(tree)
        # The standard library's own private API (os._exit) is not another module of ours.
        stdlib = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.split(".")[0] in sys.stdlib_module_names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Name) and node.value.id in stdlib)
                and node.attr not in own
            ):
                reach_ins.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert reach_ins == []
