"""The screens use Textual's public API only: no module of `screens/` imports a private
Textual module (`textual._segment_tools`, `textual.widgets._data_table`, ...).

Why: those modules change in any Textual release without notice; the tables used to subclass
DataTable through them (screens/widgets/keyedtable.py now draws on the public Line API).
import-linter cannot name every private submodule of an external package, so this reads the
imports of each file (ast) instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def private_textual_imports(source: str) -> list[str]:
    """The private Textual modules (or names imported from `textual` itself) in `source`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "textual" or node.module.startswith("textual."):
                names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "textual" and any(part.startswith("_") for part in parts[1:]):
                found.append(name)
    return found


def test_the_check_finds_each_way_of_importing_a_private_module():
    source = ("from textual._segment_tools import line_crop\n"
              "import textual._two_way_dict\n"
              "from textual.widgets._data_table import RowKey\n"
              "from textual import _types\n"
              "from textual.widgets import DataTable\n"
              "from textual.scroll_view import ScrollView\n")
    assert private_textual_imports(source) == [
        "textual._segment_tools", "textual._segment_tools.line_crop", "textual._two_way_dict",
        "textual.widgets._data_table", "textual.widgets._data_table.RowKey",
        "textual._types"]


def test_no_screen_module_imports_a_private_textual_module():
    files = sorted((ROOT / "screens").rglob("*.py"))
    assert len(files) > 10 and ROOT / "screens" / "widgets" / "keyedtable.py" in files
    bad = {str(f.relative_to(ROOT)): found for f in files
           if (found := private_textual_imports(f.read_text()))}
    assert bad == {}
