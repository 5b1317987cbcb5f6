"""The table widget on its own: keys and the mouse move the cursor and tell the screen,
columns are sized from their widest cell, a refill keeps the cursor on its row, and cells
are shown as data (never markup)."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.coordinate import Coordinate

from screens.widgets.keyedtable import KeyedTable
from screens.widgets.tablefill import MAX_COLUMN_WIDTH
from tests.screens.helpers import until

COLUMNS = (("name", "Name"), ("state", "State"))


def rows(n: int) -> list[tuple[str, tuple[str, str]]]:
    return [(f"row-{i:03d}", (f"row-{i:03d}", "ok")) for i in range(n)]


class One(App):
    def __init__(self, cursor_type: str = "row") -> None:
        super().__init__()
        self.cursor_type = cursor_type
        self.seen: list[tuple[str, object]] = []

    def compose(self) -> ComposeResult:
        yield KeyedTable(id="t", cursor_type=self.cursor_type, zebra_stripes=True)

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if not isinstance(event, KeyedTable.RowSelected):
            self.seen.append(("highlighted", event.row_key))

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.seen.append(("selected", event.row_key))

    def on_keyed_table_cell_highlighted(self, event: KeyedTable.CellHighlighted) -> None:
        self.seen.append(("cell", (event.row_key, event.column_key)))


def line_text(table: KeyedTable, y: int) -> str:
    return "".join(seg.text for seg in table.render_line(y))


async def test_keys_move_the_cursor_and_each_move_is_announced():
    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(50))
        table.focus()
        await pilot.pause()
        assert app.seen[-1] == ("highlighted", "row-000")
        page = table.scrollable_content_region.height - 1  # the header stays
        for key, row in (("down", 1), ("down", 2), ("up", 1), ("pagedown", 1 + page),
                         ("pageup", 1), ("end", 49), ("home", 0), ("ctrl+end", 49),
                         ("ctrl+home", 0)):
            await pilot.press(key)
            await pilot.pause()
            assert table.cursor_row == row, key
            assert table.cursor_key == f"row-{row:03d}"
        assert ("highlighted", "row-049") in app.seen
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.seen[-1] == ("selected", "row-001"), what="selected")
        await pilot.press("end")
        await pilot.pause()
        assert table.scroll_y == 50 + 1 - table.scrollable_content_region.height
        assert line_text(table, table.size.height - 1).startswith(" row-049 ")


async def test_a_click_moves_the_cursor_and_a_second_click_selects():
    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(5))
        await pilot.pause()
        await pilot.click(table, offset=(3, 3))  # the header, then rows 0, 1, 2
        await pilot.pause()
        assert table.cursor_row == 2 and ("selected", "row-002") not in app.seen
        await pilot.click(table, offset=(3, 3))
        await until(pilot, lambda: ("selected", "row-002") in app.seen, what="selected")


async def test_columns_fit_their_widest_cell_capped_and_a_refill_keeps_the_cursors_row():
    app = One()
    async with app.run_test(size=(300, 12)) as pilot:
        table = app.query_one(KeyedTable)
        long = "x" * (MAX_COLUMN_WIDTH + 30)
        table.fill_rows(COLUMNS, [("a", ("a", "ok")), ("b", ("bbbbbbbb", long))])
        await pilot.pause()
        assert [c.width for c in table.ordered_columns] == [8, MAX_COLUMN_WIDTH]
        assert line_text(table, 0).startswith(" Name      State ")
        table.move_cursor(row=1)
        table.fill_rows(COLUMNS, [("new", ("new", "ok")), ("a", ("a", "ok")),
                                  ("b", ("b", "ok"))])
        await pilot.pause()
        assert table.cursor_key == "b" and table.cursor_row == 2
        assert [c.width for c in table.ordered_columns] == [4, 5]  # the label's width


async def test_update_rows_changes_cells_in_place_and_refuses_other_columns():
    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(3))
        await pilot.pause()
        order = table.row_keys
        assert table.update_rows(COLUMNS, {"row-001": ("row-001", Text("failing", "red"))})
        await pilot.pause()
        assert table.row_keys is order and table.columns["state"].width == 7
        assert "failing" in line_text(table, 2)
        styled = Text("failing", "bold red")  # the same text, another style: redrawn
        assert table.update_rows(COLUMNS, {"row-001": ("row-001", styled)})
        assert table.get_cell("row-001", "state") is styled
        assert not table.update_rows((("name", "Name"),), {"row-001": ("x",)})
        table.clear()
        assert not table.update_rows(COLUMNS, {"row-001": ("row-001", "ok")})


async def test_cells_are_data_not_markup():
    app = One()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, [("k", ("[bold]x[/bold]", "a\x1b[2Jb"))])
        await pilot.pause()
        line = line_text(table, 1)
        assert "[bold]x[/bold]" in line and "\x1b" not in line and "a\\x1b[2Jb" in line


async def test_a_cell_cursor_moves_by_cell_and_names_its_column():
    app = One(cursor_type="cell")
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.fill_rows(COLUMNS, rows(3))
        table.focus()
        await pilot.pause()
        await pilot.press("right", "down")
        await pilot.pause()
        assert table.cursor_coordinate == Coordinate(1, 1)
        assert app.seen[-1] == ("cell", ("row-001", "state"))
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_column_key == "name"


async def test_a_table_grown_big_freezes_its_rows_out_of_the_collector_s_full_passes():
    """Rows arriving in batches (a pod watch's pages): at 2,000 rows, then at each doubling,
    what exists is collected and frozen, so later full passes do not walk every row again."""
    import gc

    app = One()
    try:
        async with app.run_test() as pilot:
            table = app.query_one(KeyedTable)
            table.fill_rows(COLUMNS, rows(10))
            gc.unfreeze()
            for start in range(10, 4_000, 500):
                table.update_rows(COLUMNS, {f"r-{i:05d}": (f"r-{i:05d}", "ok")
                                            for i in range(start, start + 500)})
                await pilot.pause()
                if table.row_count < 2_000:
                    assert gc.get_freeze_count() == 0, table.row_count
            assert gc.get_freeze_count() > 0
            # what a full pass walks now: far fewer objects than there are rows
            assert len(gc.get_objects(generation=2)) < table.row_count
    finally:
        gc.unfreeze()
