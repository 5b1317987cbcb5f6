"""The pod table under change: new pods land in sorted order, changed pods in place, and
what it draws (text, styles and each cell's mouse meta) is exactly what a table freshly
filled with the same pods draws - the incremental paths and render caches of
screens.widgets.sizedtable must never show a stale or misplaced row."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.geometry import Region

from installer.clusterinfo import PodRow
from screens.widgets.podtable import PodTable
from tests.screens.helpers import until


def pods(names: list[str], phase: str = "Running") -> list[PodRow]:
    return [PodRow("lab-scale", n, phase, f"node-{i % 7}", "1/1") for i, n in enumerate(names)]


class TwoTables(App):
    """The table under test (updated change by change) beside one refilled from scratch."""

    CSS = "PodTable { width: 1fr; }"

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield PodTable(id="live")
            yield PodTable(id="fresh")


def drawn(table: PodTable) -> list[list[tuple[str, object]]]:
    """Every visible line as (text, style) segments - styles carry the row/column meta."""
    width, height = table.size
    return [[(seg.text, seg.style) for seg in strip]
            for strip in table.render_lines(Region(0, 0, width, height))]


async def test_changes_draw_exactly_what_a_fresh_table_draws():
    names = [f"scale-pod-{i:05d}" for i in range(300)]
    random.Random(8).shuffle(names)
    app = TwoTables()
    async with app.run_test(size=(200, 30)) as pilot:
        live, fresh = app.query_one("#live", PodTable), app.query_one("#fresh", PodTable)
        app.set_focus(None)  # both drawn alike: neither focused
        live.update_pods(pods(names))
        await pilot.pause()
        shown = list(names)
        batches = [["bench-pod-000"], ["bench-pod-001", "scale-pod-00150x", "zz-last"],
                   ["aa-first"]]
        for batch in batches:
            live.update_pods(pods(batch, "Pending"))  # new pods, several in one batch
            await pilot.pause()
            shown += batch
        changed = pods(["scale-pod-00003", "bench-pod-000"], "Deleted")
        live.update_pods(changed)  # changed cells, one of them on screen
        await pilot.pause()
        waiting = [PodRow("lab-scale", "scale-pod-00007", "Pending", "node-2", "0/1", 0,
                          "ContainerCreating")]
        row = live.ordered_rows[0]
        live.update_pods(waiting)  # wider than its column: the column grows in place
        await pilot.pause()
        assert live.ordered_rows[0] is row  # not refilled
        changed += waiting

        everything = {p.name: p for p in pods(names)}
        everything.update({p.name: p for b in batches for p in pods(b, "Pending")})
        everything.update({p.name: p for p in changed})
        fresh.replace_pods(everything.values())
        await pilot.pause()

        keys = [str(row.key.value) for row in live.ordered_rows]
        assert keys == sorted(f"lab-scale/{n}" for n in shown)
        assert keys[:3] == ["lab-scale/aa-first", "lab-scale/bench-pod-000",
                            "lab-scale/bench-pod-001"]
        assert drawn(live) == drawn(fresh)
        live.move_cursor(row=len(keys) - 1)  # scrolled to the end: the last rows too
        fresh.move_cursor(row=len(keys) - 1)
        await pilot.pause()
        assert drawn(live) == drawn(fresh)


async def test_a_click_after_an_insert_above_chooses_the_pod_under_the_mouse():
    """Each cell carries its row index for the mouse; cached cells must get the new one."""
    app = TwoTables()
    chosen: list[str] = []

    def hook(message: object) -> None:
        if isinstance(message, PodTable.PodChosen):
            chosen.append(message.pod)

    async with app.run_test(size=(200, 30), message_hook=hook) as pilot:
        live = app.query_one("#live", PodTable)
        live.update_pods(pods([f"scale-pod-{i:05d}" for i in range(100)]))
        await pilot.pause()
        live.focus()
        await pilot.pause()
        live.update_pods(pods(["bench-pod-000", "bench-pod-001"], "Pending"))
        await pilot.pause()
        await pilot.click(live, offset=(5, 4), times=2)  # header, then rows 0..3: index 3
        await until(pilot, lambda: bool(chosen), what="a pod chosen")
        assert set(chosen) == {"scale-pod-00001"}
        assert live.cursor_row == 3
