"""The pod table's update cost at 10,000 rows, against Textual's own DataTable doing the same.

    .venv/bin/python bench/podtable.py            # 10,000 rows, 10 creates + 10 changes
    .venv/bin/python bench/podtable.py --changes 100 --bursts 5   # + bursts of 100 pods
    .venv/bin/python bench/podtable.py --quick    # 1,000 rows (CI)

No cluster: rows are filled, then pods are created (a new row, sorted in by namespace/pod -
"bench-pod-*" sorts above every "scale-pod-*", so the whole window shifts, the worst case)
and changed (a phase cell), each timed from the update call until the screen has drawn it:
wall time and this process's CPU time; then bursts (`--burst-size` pods created in one
update, then all of them changed in one), timed the same way per burst. Peer: a plain
DataTable given the same rows and changes the documented way (add_row then sort("ns",
"pod"); update_cell). Sides alternate round by round in one process, so machine load hits
both alike. The table part of bench/scale.py's update latency, without the watch and the API
server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from installer.cluster.podread import PodReading
from screens.widgets.podtable import COLUMNS, PodTable

Timings = dict[str, list[tuple[float, float]]]  # kind -> (wall s, cpu s) per change


def row(name: str, phase: str, node: str, ready: str) -> PodReading:
    return PodReading("lab-scale", name, phase, node, ready)


class PlainTable(DataTable):
    """Textual's DataTable fed the documented way."""

    def update_pods(self, pods: list[PodReading]) -> None:
        if not self.columns:
            for key, label in COLUMNS:
                self.add_column(label, key=key)
        added = False
        for p in pods:
            key = f"{p.namespace}/{p.name}"
            cells = (p.namespace, p.name, p.phase, p.ready, str(p.restarts), p.node or "",
                     p.reason, "")  # Age: the pods here have no creation time
            if key in self.rows:
                for (column, _), cell in zip(COLUMNS, cells, strict=True):
                    self.update_cell(key, column, cell)
            else:
                self.add_row(*cells, key=key)
                added = True
        if added:
            self.sort("ns", "pod")


class Bench(App):
    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


async def drawn(app: App) -> None:
    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await done.wait()


async def one_side(make: type, rows: int, changes: int, out: Timings, bursts: int = 0,
                   burst_size: int = 100) -> float:
    """Fill, then time each create and change; returns the fill's wall time."""
    app = Bench(make())
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.table
        t = time.monotonic()
        table.update_pods([row(f"scale-pod-{i:05d}", "Running", f"scale-node-{i % 1000:04d}",
                               "1/1") for i in range(rows)])
        await drawn(app)
        fill = time.monotonic() - t
        await pilot.pause()
        for i in range(changes):
            for kind, phase in (("create", "Pending"), ("change", "Deleted")):
                wall, cpu = time.monotonic(), time.process_time()
                table.update_pods([row(f"bench-pod-{i:03d}", phase, "scale-node-0000", "0/1")])
                await drawn(app)
                out[kind].append((time.monotonic() - wall, time.process_time() - cpu))
        for b in range(bursts):
            for kind, phase in (("burst create", "Pending"), ("burst change", "Deleted")):
                wall, cpu = time.monotonic(), time.process_time()
                table.update_pods([row(f"burst-{b}-{i:03d}", phase, "scale-node-0000", "0/1")
                                   for i in range(burst_size)])
                await drawn(app)
                out[kind].append((time.monotonic() - wall, time.process_time() - cpu))
        assert table.row_count == rows + changes + bursts * burst_size
    return fill


def summary(xs: list[tuple[float, float]]) -> str:
    wall = [1000 * w for w, _ in xs]
    cpu = [1000 * c for _, c in xs]
    return (f"{statistics.median(wall):6.1f} / {max(wall):6.1f} ms   "
            f"CPU {statistics.median(cpu):6.1f} / {max(cpu):6.1f} ms")


def p95(xs: list[float]) -> float:
    """Nearest rank: the 19th of 20 values."""
    ordered = sorted(xs)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def percentiles(xs: list[tuple[float, float]]) -> str:
    wall = [1000 * w for w, _ in xs]
    cpu = [1000 * c for _, c in xs]
    return (f"p50 {statistics.median(wall):6.1f}  p95 {p95(wall):6.1f}  "
            f"max {max(wall):6.1f} ms   CPU p50 {statistics.median(cpu):5.1f}  "
            f"p95 {p95(cpu):5.1f}  max {max(cpu):5.1f} ms   over {len(wall)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 rows, 3 changes (CI)")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--changes", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--bursts", type=int, default=None,
                    help="bursts per side and round (default 2, quick 1)")
    ap.add_argument("--burst-size", type=int, default=None, help="default 100, quick 20")
    a = ap.parse_args()
    rows = a.rows or (1000 if a.quick else 10000)
    changes = a.changes or (3 if a.quick else 10)
    rounds = a.rounds or (1 if a.quick else 2)
    bursts = a.bursts if a.bursts is not None else (1 if a.quick else 2)
    burst_size = a.burst_size or (20 if a.quick else 100)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {rows} rows, "
          f"{changes} creates + {changes} changes per side, {bursts} burst(s) of {burst_size}, "
          f"{rounds} round(s)")
    sides = {"PodTable (wizard)": PodTable, "DataTable (add_row+sort, update_cell)": PlainTable}
    kinds = ("create", "change", "burst create", "burst change")
    results: dict[str, Timings] = {name: {k: [] for k in kinds} for name in sides}
    fills: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, make in sides.items():
            fills[name].append(asyncio.run(one_side(make, rows, changes, results[name],
                                                    bursts, burst_size)))
    print(f"\n{'side':40} {'fill':>7}   {'create: median / max drawn':45} "
          f"{'phase change: median / max drawn'}")
    for name in sides:
        r = results[name]
        print(f"{name:40} {statistics.median(fills[name]):6.2f}s   {summary(r['create'])}   "
              f"{summary(r['change'])}")
    print("\nupdate call -> drawn:")
    for name in sides:
        for kind in kinds:
            if results[name][kind]:
                print(f"  {name:40} {kind:13} {percentiles(results[name][kind])}")
    worst = max(w for kind in kinds for w, _ in results["PodTable (wizard)"][kind])
    print(f"\ngoal (the table's part of an update <= 100 ms): "
          f"{'met' if worst <= 0.1 else 'NOT met'} (worst {1000 * worst:.0f} ms)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
