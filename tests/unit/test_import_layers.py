"""Issue 26, section 5: obslab's modules import downward only. The handle module (telemetry) no longer
imports the distro, nor evaluations the handle module: the distro and the configurator sit on top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import obslab

PACKAGE = Path(obslab.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def imported_modules(path: Path) -> set[str]:
    """The obslab modules ``path`` imports anywhere (in functions too), but for type checking only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                   for node in ast.walk(block)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "obslab":
            parts = node.module.split(".")
            found |= {alias.name for alias in node.names} & set(MODULES) if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("obslab.")}
    return found - {path.stem}


def import_graph() -> dict[str, set[str]]:
    return {module: imported_modules(PACKAGE / f"{module}.py") for module in MODULES}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    return next((found for module in sorted(graph) if module not in state and (found := visit(module))), None)


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_obslab_modules_import_downward_only():
    graph = import_graph()
    assert graph["distro"] >= {"telemetry"} and "distro" not in graph["telemetry"]
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph) or [])


def test_the_distro_entry_point_imports_first_in_a_fresh_interpreter():
    """``opentelemetry-instrument`` loads ``obslab.distro`` before anything else of obslab."""
    code = "import obslab.distro, obslab.evaluations, obslab.telemetry; print(obslab.distro.ObslabConfigurator)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ObslabConfigurator" in out.stdout, out.stderr
