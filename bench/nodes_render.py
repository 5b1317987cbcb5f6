"""The wizard's Nodes screen, first render, in a fresh process: run by bench/scale.py.

    .venv/bin/python bench/nodes_render.py KUBECONFIG EXPECTED_NODES
    .venv/bin/python bench/nodes_render.py KUBECONFIG EXPECTED_NODES --screen-only [--profile F]

Prints one JSON line: seconds from the wizard's start to the Nodes screen drawn with every
node, of which discovery; to the Cluster screen's first frame (the wizard's first frame, here
with a real cluster to discover beside it - bench/logpane.py times it with recorded facts);
this process's CPU seconds (its threads, not helm's) and peak RSS. Why a process of its own:
the scale bench has already imported the lab's client (the `kubernetes` package) and the pod
parts, which the wizard starts without - the client's import (0.2-0.35 s on 2 cores) is part of
the wizard's first render, and measuring inside the bench hid it.

--screen-only: the cluster is discovered before the app starts (not timed) and handed to it
at once, so only the Nodes screen's own part is timed: from the switch to the table drawn with
every node ("screen"), the part the wizard's code decides, beside the API server's list.
--profile F writes cProfile's figures of that part to F.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
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


def time_first_frames(app: InstallerApp) -> dict[str, float]:
    """When each of the app's screens first rendered a frame (headless: composed, laid out
    and drawn into strips, which a terminal would then be sent), by step."""
    frames: dict[str, float] = {}
    display = app._display

    def timed(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None:
            frames.setdefault(getattr(screen, "STEP", ""), time.monotonic())

    app._display = timed  # type: ignore[method-assign]
    return frames


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def until(pilot: Any, cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.005)


async def nodes_table(kubeconfig: str, expect: int, screen_only: bool = False,
                      profile: str | None = None) -> dict[str, float]:
    """Seconds from the app's start to: the Nodes screen's first rows drawn ("first_rows":
    the pages read so far, the screen opened as soon as discovery started; without
    --screen-only), the Nodes screen drawn with every node ("shown"),
    discovery done ("discovered"), the Cluster screen's first frame ("first_frame"), and from
    the switch to the Nodes screen to its table drawn ("screen"; "screen_cpu": this process's
    CPU seconds in that time, which other processes' load moves less)."""
    services = Services()
    if screen_only:
        from screens.services import discover_facts

        state = WizardState()
        state.edit({"cluster.kubeconfig": kubeconfig, "cluster.context": None})
        found = await discover_facts(state.answers.cluster)

        async def known(cluster: Any) -> Any:
            return found

        services = Services(facts=known)
    elif "kubernetes" in sys.modules:
        raise SystemExit("the kubernetes client is already imported: the wizard would not "
                         "pay its import, so this would not measure the wizard's start")
    state = WizardState()
    state.edit({"cluster.kubeconfig": kubeconfig, "cluster.context": None})
    app = InstallerApp(state, services=services, start="cluster")
    profiler = cProfile.Profile() if profile else None
    frames = time_first_frames(app)
    t0 = time.monotonic()
    first_rows = None
    async with app.run_test(size=(160, 50)) as pilot:
        if not screen_only:
            # An operator who moves on to the Nodes screen once discovery has started: its
            # first rows are the pages read so far (screens/nodes.py shown_nodes).
            await until(pilot, lambda: app.discovering or app.state.facts is not None, 60,
                        "discovery to start")
            early = app.screen_for("nodes")
            app.goto("nodes")
            await until(pilot, lambda: app.screen is early and bool(early.query("#nodes"))
                        and early.query_one("#nodes").row_count > 0, 120, "the first rows")
            drawn_first = asyncio.Event()
            app.screen.call_after_refresh(drawn_first.set)
            await drawn_first.wait()
            first_rows = time.monotonic() - t0
        await until(pilot, lambda: app.state.facts is not None or app.facts_error, 120,
                    "discovery")
        if app.facts_error:
            raise SystemExit(f"discovery failed: {app.facts_error}")
        discovered = time.monotonic() - t0
        await pilot.pause()
        switched, cpu = time.monotonic(), time.process_time()
        if profiler:
            profiler.enable()
        screen = app.screen_for("nodes")
        app.goto("nodes")

        def rows() -> int:
            tables = screen.query("#nodes") if app.screen is screen else []
            return tables[0].row_count if tables else 0

        await until(pilot, lambda: rows() == expect, 60, f"{expect} rows in the nodes table")
        drawn = asyncio.Event()
        app.screen.call_after_refresh(drawn.set)
        await drawn.wait()
        end, cpu = time.monotonic(), time.process_time() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        shown = end - t0
    return {"shown": shown, "discovered": discovered, "screen": end - switched,
            "screen_cpu": cpu, "first_rows": first_rows if first_rows is not None else shown,
            "first_frame": frames["cluster"] - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("kubeconfig")
    ap.add_argument("expected_nodes", type=int)
    ap.add_argument("--screen-only", action="store_true",
                    help="discover before the app starts; time the Nodes screen's part only")
    ap.add_argument("--profile", metavar="FILE", help="cProfile of the screen's part")
    a = ap.parse_args()
    times = asyncio.run(nodes_table(a.kubeconfig, a.expected_nodes, a.screen_only,
                                    a.profile))
    print(json.dumps({**times, "cpu": time.process_time(), "peak_mb": peak_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
