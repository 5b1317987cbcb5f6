"""The wizard's Nodes screen, first render, in a fresh process: run by bench/scale.py.

    .venv/bin/python bench/nodes_render.py KUBECONFIG EXPECTED_NODES

Prints one JSON line: seconds from the wizard's start to the Nodes screen drawn with every
node, of which discovery, and this process's peak RSS. Why a process of its own: the scale
bench has already imported the lab's client (the `kubernetes` package) and the pod parts,
which the wizard starts without - the client's import (0.2-0.35 s on 2 cores) is part of
the wizard's first render, and measuring inside the bench hid it.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screens.app import InstallerApp
from screens.services import Services
from screens.state import WizardState


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def until(pilot: Any, cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.005)


async def nodes_table(kubeconfig: str, expect: int) -> tuple[float, float]:
    """(seconds from start to the Nodes screen drawn with every node, of which discovery)."""
    if "kubernetes" in sys.modules:
        raise SystemExit("the kubernetes client is already imported: the wizard would not "
                         "pay its import, so this would not measure the wizard's start")
    state = WizardState()
    state.edit({"cluster.kubeconfig": kubeconfig, "cluster.context": None})
    app = InstallerApp(state, services=Services(), start="cluster")
    t0 = time.monotonic()
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: app.state.facts is not None or app.facts_error, 120,
                    "discovery")
        if app.facts_error:
            raise SystemExit(f"discovery failed: {app.facts_error}")
        discovered = time.monotonic() - t0
        screen = app.screen_for("nodes")
        app.goto("nodes")

        def rows() -> int:
            tables = screen.query("#nodes") if app.screen is screen else []
            return tables[0].row_count if tables else 0

        await until(pilot, lambda: rows() == expect, 60, f"{expect} rows in the nodes table")
        drawn = asyncio.Event()
        app.screen.call_after_refresh(drawn.set)
        await drawn.wait()
        shown = time.monotonic() - t0
    return shown, discovered


def main() -> int:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    shown, discovered = asyncio.run(nodes_table(sys.argv[1], int(sys.argv[2])))
    print(json.dumps({"shown": shown, "discovered": discovered, "peak_mb": peak_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
