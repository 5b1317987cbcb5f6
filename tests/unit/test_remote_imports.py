"""remote/ is the bottom layer: it imports neither installer, screens nor textual."""

from __future__ import annotations

import ast
from pathlib import Path

REMOTE = Path(__file__).resolve().parents[2] / "remote"
FORBIDDEN = ("installer", "screens", "textual")


def test_remote_imports_nothing_above_it():
    bad = []
    for py in REMOTE.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{py.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert bad == []
