"""The core never imports textual, and remote imports neither installer nor screens."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules(package: str) -> list[str]:
    pkg_path = ROOT / package
    return [package] + [m.name for m in pkgutil.walk_packages([str(pkg_path)], f"{package}.")]


@pytest.mark.parametrize(("package", "forbidden"), [
    ("installer", ("textual", "screens")),
    ("remote", ("textual", "screens", "installer")),
])
def test_dependency_direction(package, forbidden):
    names = modules(package)
    assert names[0] == package
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "", f"{package} imported {out}"


def test_every_core_subpackage_says_what_it_holds():
    """The folder tree is the map (ARCHITECTURE.md): each subpackage of the core opens with a
    paragraph on its concern, and holds modules, not a single file dressed as a package."""
    packages = [p for p in (ROOT / "installer").iterdir() if (p / "__init__.py").is_file()]
    assert {p.name for p in packages} >= {"answers", "cluster", "charts", "hosts", "diagnosis",
                                          "engine", "commands"}
    for package in packages:
        init = (package / "__init__.py").read_text()
        doc = init.split('"""')[1] if init.startswith('"""') else ""
        assert len(doc.split()) >= 25, f"installer/{package.name}/__init__.py has no paragraph"
        assert len(list(package.glob("*.py"))) >= 3, package.name
