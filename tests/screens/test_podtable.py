"""The pod table under change: new pods land in sorted order, changed pods in place, and
what it draws (text, styles and each cell's mouse meta) is exactly what a table freshly
filled with the same pods draws - the incremental paths and render caches of
screens.widgets.keyedtable must never show a stale or misplaced row."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.geometry import Region
from textual.widgets import DataTable

from installer.cluster.podread import PodReading
from screens.widgets.podtable import PodTable
from tests.screens.helpers import until


def pods(names: list[str], phase: str = "Running") -> list[PodReading]:
    return [PodReading("lab-scale", n, phase, f"node-{i % 7}", "1/1") for i, n in enumerate(names)]


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
        waiting = [PodReading("lab-scale", "scale-pod-00007", "Pending", "node-2", "0/1", 0,
                          "ContainerCreating")]
        order = live.row_keys
        live.update_pods(waiting)  # wider than its column: the column grows in place
        await pilot.pause()
        assert live.row_keys is order  # not refilled
        changed += waiting

        everything = {p.name: p for p in pods(names)}
        everything.update({p.name: p for b in batches for p in pods(b, "Pending")})
        everything.update({p.name: p for p in changed})
        fresh.replace_pods(everything.values())
        await pilot.pause()

        keys = list(live.row_keys)
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


class Beside(App):
    """The pod table beside Textual's own DataTable given the same columns and rows."""

    CSS = "PodTable, DataTable { width: 1fr; }"

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield PodTable(id="live")
            yield DataTable(id="plain", cursor_type="row", zebra_stripes=True)


def copy_into(plain: DataTable, live: PodTable) -> None:
    """Same columns (widths included), rows in the same order, cursor and scroll, filled the
    documented way."""
    plain.clear(columns=True)
    for column in live.ordered_columns:
        plain.add_column(column.label, key=column.key, width=column.width)
    for key in live.row_keys:
        plain.add_row(*live.get_row(key), key=key)
    plain.move_cursor(row=live.cursor_row, scroll=False)
    plain.scroll_to(y=live.scroll_y, animate=False, immediate=True)


async def assert_draws_like_datatable(pilot, live: PodTable, plain: DataTable,
                                      hover: tuple[int, int] = (30, 6)) -> None:
    """Unfocused, then focused with the mouse over a row (the hovered index comes from the
    mouse meta of the live table's own lines): text, styles and meta equal."""
    copy_into(plain, live)
    pilot.app.set_focus(None)
    await pilot.pause()
    assert plain.scroll_y == live.scroll_y
    assert drawn(live) == drawn(plain)
    seen = []
    for table in (live, plain):
        table.focus()
        await pilot.hover(table, offset=hover)
        await pilot.pause()
        seen.append((table.hover_coordinate, drawn(table)))
    assert live.hover_coordinate.row == (hover[1] - live.header_height + live.scroll_y
                                         if hover[1] >= live.header_height else -1)
    assert seen[0] == seen[1]


async def test_the_pod_table_draws_what_textuals_datatable_draws_after_inserts_and_changes():
    """Rows moved by inserts above the window are drawn from their kept lines with a new
    index and stripe; Textual's DataTable, given the same rows, is the reference."""
    names = [f"scale-pod-{i:05d}" for i in range(300)]
    random.Random(4).shuffle(names)
    app = Beside()
    async with app.run_test(size=(240, 24)) as pilot:
        live, plain = app.query_one("#live", PodTable), app.query_one("#plain", DataTable)
        live.update_pods(pods(names))
        await pilot.pause()
        await assert_draws_like_datatable(pilot, live, plain)
        # one above the window (every visible row moves by one: the stripes flip), two
        live.update_pods(pods(["bench-pod-000"], "Pending"))
        await pilot.pause()
        await assert_draws_like_datatable(pilot, live, plain)
        live.update_pods(pods(["bench-pod-001", "bench-pod-002"], "Pending"))
        await pilot.pause()
        await assert_draws_like_datatable(pilot, live, plain, hover=(5, 1))
        await assert_draws_like_datatable(pilot, live, plain, hover=(5, 0))  # the header
        # scrolled to the middle, the cursor on a row: above, inside and below the window
        live.move_cursor(row=150)
        await pilot.pause()
        for batch in (["aa-first"], ["scale-pod-00155x"], ["zz-last", "aaa-second"]):
            live.update_pods(pods(batch, "Pending"))
            await pilot.pause()
            assert live.cursor_row == 150  # the cursor keeps its index, as in DataTable
            await assert_draws_like_datatable(pilot, live, plain, hover=(60, 3))
        # a changed row in the window, then a cell wider than its column after the inserts
        shown_row = live.row_keys[live.cursor_row - 2].partition("/")[2]
        live.refresh()  # every line drawn as the comparison below will draw it
        await pilot.pause()
        live.update_pods(pods([shown_row], "Failed"))
        await pilot.pause()
        await assert_draws_like_datatable(pilot, live, plain)
        width = live.columns["reason"].width
        live.update_pods([PodReading("lab-scale", "aa-first", "Pending", "node-1", "0/1", 0,
                                 "ContainerCreatingForAVeryLongTime")])
        await pilot.pause()
        assert live.columns["reason"].width > width
        await assert_draws_like_datatable(pilot, live, plain, hover=(100, 10))

        keys = list(live.row_keys)  # every row's index by its key
        assert [live.get_row_index(key) for key in keys] == list(range(len(keys)))
        assert live.cursor_key == keys[150]


class Choosing(TwoTables):
    """Keeps the pods chosen (a click on the cursor's row, or Enter)."""

    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[str] = []

    def on_pod_table_pod_chosen(self, event: PodTable.PodChosen) -> None:
        self.chosen.append(event.pod)


async def test_hover_and_click_after_inserts_above_and_below_the_window():
    """The mouse meta of each drawn line names the row under it, however rows moved."""
    app = Choosing()
    async with app.run_test(size=(200, 30)) as pilot:
        live = app.query_one("#live", PodTable)
        live.update_pods(pods([f"scale-pod-{i:05d}" for i in range(0, 400, 2)]))
        await pilot.pause()
        live.focus()
        live.move_cursor(row=100)  # scrolled: the window starts well below row 0
        await pilot.pause()
        top = int(live.scroll_y)
        assert top > 0
        batches = [["aa-0"], ["scale-pod-00001"], ["zz-0"], ["aa-1", "aa-2"],
                   [f"scale-pod-{2 * top + 5:05d}"]]  # above, in and below the window
        for batch in batches:
            live.update_pods(pods(batch, "Pending"))
            await pilot.pause()
        for y in (1, 7, 20):
            await pilot.hover(live, offset=(10, y))
            await pilot.pause()
            index = y - 1 + int(live.scroll_y)
            assert live.hover_coordinate.row == index
            expected = live.row_keys[index].partition("/")[2]
            app.chosen.clear()
            await pilot.click(live, offset=(10, y), times=2)
            await until(pilot, lambda: bool(app.chosen), what="a pod chosen")
            assert set(app.chosen) == {expected}
            assert live.cursor_row == index


async def test_a_rows_index_by_key_follows_inserts_sorts_and_removals():
    """Row indices by key are worked out again after the order changes (inserts, a sort,
    a removal): every key's index must be its place in the order."""
    rng = random.Random(11)
    names = [f"pod-{i:04d}" for i in range(0, 4000, 20)]
    app = TwoTables()
    async with app.run_test(size=(200, 30)) as pilot:
        live = app.query_one("#live", PodTable)
        live.update_pods(pods(names))
        await pilot.pause()

        def check(sample: int | None = None) -> None:
            keys = list(live.row_keys)
            at = range(len(keys)) if sample is None else rng.sample(range(len(keys)), sample)
            assert [live.get_row_index(keys[i]) for i in at] == list(at)

        for step in range(150):  # single inserts and batches, anywhere; asked in between
            batch = [f"pod-{rng.randrange(4000):04d}x{step}" for _ in range(rng.choice((1, 3)))]
            live.update_pods(pods(batch, "Pending"))
            if step % 7 == 0:
                check(5)
        check()
        await pilot.pause()
        live.sort("node", "pod")
        order = [(live.get_cell(key, "node"), live.get_cell(key, "pod"))
                 for key in live.row_keys]
        assert order == sorted(order)
        check()


async def test_scrolled_sideways_the_pod_table_draws_what_textuals_datatable_draws():
    """Columns wider than the table: lines are cropped at the scroll offset, no filler."""
    app = Beside()
    async with app.run_test(size=(90, 16)) as pilot:
        live, plain = app.query_one("#live", PodTable), app.query_one("#plain", DataTable)
        app.set_focus(None)
        live.update_pods(pods([f"scale-pod-{i:05d}" for i in range(40)]))
        await pilot.pause()
        live.update_pods(pods(["bench-pod-000"], "Pending"))
        await pilot.pause()
        assert live.virtual_size.width > live.size.width
        for x in (0, 7, 30):
            live.scroll_to(x=x, animate=False, immediate=True)
            copy_into(plain, live)
            plain.scroll_to(x=x, animate=False, immediate=True)
            await pilot.pause()
            assert live.scroll_x == plain.scroll_x > 0 or x == 0
            assert drawn(live) == drawn(plain)
