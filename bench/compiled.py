"""The product's modules compiled to bytecode before anything is timed, as an installed copy
has them (`pip install` compiles what it installs).

Why: a source tree keeps no bytecode when PYTHONDONTWRITEBYTECODE is set (this machine's
shells set it), so every process compiled each module edited since its .pyc was last written
again - 0.2-0.3 s per start in a fresh clone, a cost no operator's installed copy pays."""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("installer", "screens", "remote")


def compile_product(root: Path = ROOT) -> None:
    """Write the .pyc of every product module that lacks an up-to-date one."""
    for package in PACKAGES:
        if not compileall.compile_dir(root / package, quiet=1):
            raise SystemExit(f"could not compile {root / package}")
