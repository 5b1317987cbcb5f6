"""Every module under installer/, screens/ and remote/ is reachable from an entry point.

Why a test: a module only tests import is code the product never runs - its tests prove
nothing about the installer and it is kept up to date for nothing. The entry points are the
console script (screens.cli), `python -m installer` (installer.__main__) and the modules
named in strings for a lazy import (`"screens.nodes:NodesScreen"`, `import_module("...")`).
Nothing Python runs on a host: what a host runs is shell text (remote/probe.sh, the fixes'
scripts) held by modules the entry points reach.

The import graph is grimp's (import-linter's library), imports inside functions included and
`if TYPE_CHECKING:` imports left out, as the import contract in pyproject.toml reads them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("installer", "screens", "remote")
ENTRY_POINTS = ("screens.cli", "installer.__main__")

# Modules the product does not import, each with the reason it stays.
NOT_FROM_AN_ENTRY_POINT: dict[str, str] = {}

LAZY = re.compile(r"^((?:installer|screens|remote)(?:\.\w+)+):\w+$")


def lazy_imports(modules: set[str], root: Path = ROOT) -> set[str]:
    """Modules named by string: "module:attribute" constants, and the literal argument of
    an `import_module(...)` call."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    m = LAZY.match(node.value)
                    if m and m.group(1) in modules:
                        found.add(m.group(1))
                elif (isinstance(node, ast.Call) and node.args
                      and getattr(node.func, "attr", getattr(node.func, "id", None))
                      == "import_module"
                      and isinstance(node.args[0], ast.Constant)
                      and node.args[0].value in modules):
                    found.add(node.args[0].value)
    return found


def unreachable(graph: grimp.ImportGraph, roots: set[str]) -> set[str]:
    """The graph's modules that no chain of imports from `roots` reaches (importing a
    module imports its parent packages too)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.find_modules_directly_imported_by(module))
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    return set(graph.modules) - seen


def test_the_walk_finds_a_module_nothing_imports():
    graph = grimp.ImportGraph()
    for name in ("app", "app.main", "app.used", "app.dead", "app.sub", "app.sub.deep"):
        graph.add_module(name)
    graph.add_import(importer="app.main", imported="app.used", line_number=1,
                     line_contents="import app.used")
    graph.add_import(importer="app.used", imported="app.sub.deep", line_number=1,
                     line_contents="import app.sub.deep")
    assert unreachable(graph, {"app.main"}) == {"app.dead"}


def test_lazy_imports_are_read_from_strings(tmp_path):
    (tmp_path / "screens").mkdir()
    (tmp_path / "screens" / "app.py").write_text(
        'import importlib\nA = {"x": "screens.a:AScreen"}\nimportlib.import_module("screens.b")\n'
        'log = "screens.c"\n')
    modules = {"screens.a", "screens.b", "screens.c"}
    assert lazy_imports(modules, tmp_path) == {"screens.a", "screens.b"}


def test_every_module_is_reachable_from_an_entry_point():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    lazy = lazy_imports(set(graph.modules))
    assert "screens.nodes" in lazy  # the wizard's screens are imported by name
    dead = unreachable(graph, set(ENTRY_POINTS) | lazy)
    assert dead - set(NOT_FROM_AN_ENTRY_POINT) == set(), (
        f"imported by no entry point (only by tests?): {sorted(dead)}")
    assert set(NOT_FROM_AN_ENTRY_POINT) <= dead, "an allowed module is reachable now: drop it"
