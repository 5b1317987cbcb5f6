"""The wizard's tables (nodes, checks, fixes, steps, pods, findings, events, labels): one
widget on Textual's public Line API - a `ScrollView` drawing each line in `render_line`.

Why not Textual's DataTable: it measures every cell of every new row to size its columns,
keys its row order and every rendered cell on one update counter (one changed cell rebuilt
O(rows) lists and re-rendered every visible row) and re-sorts every row for an insert; at
1,000 nodes or 10,000 pods each of these is the operator's wait (bench/scale.py). Making it
fast meant
subclassing its private members, which any Textual release may change.

The widget is split by concern, each module saying how it keeps the cost to what changed:
- screens/widgets/tablemodel.py: the columns and keyed rows, their order, fill, in-place
  update, sorted insert and sort (no Textual; tests/unit/test_tablemodel.py);
- screens/widgets/tablelines.py: drawing a line as DataTable draws it, and the lines and
  cells kept between frames;
- screens/widgets/tablecursor.py: the cursor, the keys and the mouse that move it;
- screens/widgets/tablekeys.py: the operator's `/` filter and column sort, and the `d`, `y`
  and `l` keys on the row's cluster object;
- here: the widget that joins them - its API, its look (component classes `keyed-table--
  header`, `--cursor`, `--hover`, `--even-row`, `--odd-row`, `--header-cursor`,
  `--header-hover`, which app.tcss can style), its messages, and when it redraws.

Rows are reached by key (`cursor_key`, `get_row`, `get_row_index`); the display order is
the one list `row_keys`, the filter's rows out of every row (`total_rows`). A screen says
which cluster object a row is by setting `objects` (a row key to a RowObject).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from screens.widgets.tablecursor import CursorType, TableCursor
from screens.widgets.tablefill import MAX_COLUMN_WIDTH
from screens.widgets.tablekeys import RowObject, TableKeys
from screens.widgets.tablelines import STYLE_NAMES, Frame, TableLines
from screens.widgets.tablemodel import Column, TableModel

FILL_COLLECT_ROWS = 2_000  # a table this big settles the collector itself (see _settle)


__all__ = ["KeyedTable", "RowObject"]


class KeyedTable(TableKeys, TableCursor, ScrollView, can_focus=True):
    """A table of keyed rows with a fixed header and a row (or cell) cursor."""

    ALLOW_SELECT = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "cursor_right", "Cursor right", show=False),
        Binding("left", "cursor_left", "Cursor left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "first_row", "Top", show=False),
        Binding("ctrl+end", "last_row", "Bottom", show=False),
        Binding("home", "home", "Home", show=False),
        Binding("end", "end", "End", show=False),
        Binding("slash", "filter", "Filter", tooltip="Show only rows containing a text"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("greater_than_sign", "sort(1)", "Sort",
                tooltip="Sort by the next column (< the one before, S reverses)"),
        Binding("less_than_sign", "sort(-1)", "Sort by the column before", show=False),
        Binding("S", "reverse_sort", "Reverse the sort", show=False),
        Binding("d", "inspect('describe')", "Describe"),
        Binding("y", "inspect('yaml')", "YAML"),
        Binding("l", "inspect('logs')", "Logs"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = set(STYLE_NAMES)

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;

        &:focus {
            background-tint: $foreground 5%;
            & > .keyed-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .keyed-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark {
            & > .keyed-table--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .keyed-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .keyed-table--odd-row {
        }
        & > .keyed-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .keyed-table--header-cursor {
            background: $accent-darken-1;
            color: $foreground;
        }
        & > .keyed-table--header-hover {
            background: $accent 30%;
        }
        & > .keyed-table--hover {
            background: $block-hover-background;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor came to a row (moved, or the table's first row arrived)."""

        def __init__(self, table: KeyedTable, cursor_row: int, row_key: str) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row
            self.row_key = row_key

        @property
        def control(self) -> KeyedTable:
            return self.table

    class RowSelected(RowHighlighted):
        """Enter on the cursor's row, or a click on it."""

    class CellHighlighted(Message):
        """The cell cursor came to a cell."""

        def __init__(self, table: KeyedTable, coordinate: Coordinate, row_key: str,
                     column_key: str) -> None:
            super().__init__()
            self.table = table
            self.coordinate = coordinate
            self.row_key = row_key
            self.column_key = column_key

        @property
        def control(self) -> KeyedTable:
            return self.table

    class CellSelected(CellHighlighted):
        """Enter on the cursor's cell, or a click on it."""

    class HeaderSelected(Message):
        """A click on a column's header (what a column sort will listen to)."""

        def __init__(self, table: KeyedTable, column_key: str, column_index: int) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key
            self.column_index = column_index

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, *, cursor_type: CursorType = "row", zebra_stripes: bool = False,
                 show_header: bool = True, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.cursor_type: CursorType = cursor_type
        self.zebra_stripes = zebra_stripes
        self.show_header = show_header
        self._model = TableModel()
        self._drawn = TableLines(self._model)
        self._cursor = Coordinate(0, 0)
        self._hover = Coordinate(0, 0)
        self._show_hover = False
        self._frame: Frame | None = None
        self._settled_rows = 0  # the rows when the collector was last settled (_settle)

    # ---- reading -------------------------------------------------------------------------

    @property
    def columns(self) -> dict[str, Column]:
        return self._model.columns

    @property
    def row_count(self) -> int:
        return len(self._model.keys)

    @property
    def row_keys(self) -> list[str]:
        """The rows' keys in display order (the table's own list: do not change it)."""
        return self._model.keys

    @property
    def ordered_columns(self) -> list[Column]:
        return list(self._model.columns.values())

    @property
    def header_height(self) -> int:
        """The header's lines: the column labels, and the filter line above them."""
        return (1 if self.show_header else 0) + (1 if self.filtering else 0)

    def __contains__(self, key: object) -> bool:
        return key in self._model

    def get_row(self, key: str) -> list[Any]:
        return list(self._model.cells[key])

    def get_row_at(self, index: int) -> list[Any]:
        return list(self._model.cells[self._model.keys[index]])

    def get_cell(self, key: str, column: str) -> Any:
        return self._model.cells[key][self._model.column_index(column)]

    def get_row_index(self, key: str) -> int:
        return self._model.index_of(key)

    def get_column_index(self, column: str) -> int:
        return self._model.column_index(column)

    @property
    def cursor_coordinate(self) -> Coordinate:
        return self._cursor

    @property
    def cursor_row(self) -> int:
        return self._cursor.row

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor; None when the table is empty."""
        keys = self._model.keys
        return keys[self._cursor.row] if self._cursor.row < len(keys) else None

    @property
    def cursor_column_key(self) -> str | None:
        columns = list(self._model.columns)
        return columns[self._cursor.column] if self._cursor.column < len(columns) else None

    @property
    def hover_coordinate(self) -> Coordinate:
        return self._hover

    # ---- filling and updating (the model changes, then what it moved is redrawn) ---------

    def clear(self, columns: bool = False) -> None:
        """No rows (and no columns); the cursor and the scroll back at the top."""
        self._model.clear(columns)
        self._settled_rows = 0
        self._cursor = self._hover = Coordinate(0, 0)
        self._drawn.forget()
        self._resized()
        self.scroll_to(0, 0, animate=False, immediate=True)

    def fill_rows(self, columns: Iterable[tuple[str, str]],
                  rows: Iterable[tuple[str, Sequence[Any]]], *,
                  max_width: int = MAX_COLUMN_WIDTH,
                  widths: Mapping[str, int] | None = None) -> None:
        """Replace the columns and rows (`TableModel.fill` says how columns are sized). The
        cursor stays on its row's key (else its index, within the rows)."""
        rows = list(rows)
        keep = self.cursor_key
        self._model.fill(list(columns), rows, max_width=max_width, widths=widths)
        self._drawn.forget()
        self._resized()
        row = self._model.index_of(keep) if keep is not None and keep in self._model \
            and self._model.matches(keep) else self._cursor.row
        # As a refilled DataTable: scrolled back to the top, then to the cursor, and the
        # cursor's row announced (the screens show its details from that message).
        self.scroll_to(0, 0, animate=False, immediate=True)
        self._move(Coordinate(row, self._cursor.column), scroll=True, announce=True)
        self.refresh()
        self.counted()
        self._settle()

    def update_rows(self, columns: Sequence[tuple[str, str]],
                    changed: Mapping[str, Sequence[Any]], sort_by: Sequence[str] = ()
                    ) -> bool:
        """Put these rows' cells in place (`TableModel.update` says how) and redraw what
        moved: every line when a column grew, the window when rows went in, else only the
        edited rows. False, and nothing changed, when the table must be refilled instead:
        it is empty or its columns differ."""
        done = self._model.update(columns, changed, sort_by)
        if done is None:
            return False
        if done.wider:  # as wide as a refill would make it - not a refill of every row
            self._drawn.forget()
        if done.wider or done.added:
            self._resized()
            self.refresh()
        for key in done.edited:
            self._drawn.forget(key)
            if not done.added and self._model.matches(key):
                self._refresh_row(self._model.index_of(key))
        if done.added:
            self.counted()
            self._settle()
        return True

    def _settle(self) -> None:
        """Once the table has grown big (FILL_COLLECT_ROWS, then each doubling), collect and
        freeze what exists. A big fill leaves the collector owing a full pass over what it
        made, which the next allocation-heavy moment pays (the first pod change after 10,000
        rows was the slowest); and every later full pass - one each time a quarter more
        objects have grown old, which a stream of pod changes keeps doing - walks every row
        again unless the rows are frozen. Frozen, a full pass at 10,000 pods costs a quarter
        of its CPU (bench/podtable.py, bench/scale.py); the app unfreezes on exit
        (screens/app.py)."""
        rows = self._model.total
        if rows >= max(FILL_COLLECT_ROWS, 2 * self._settled_rows):
            gc.collect()
            gc.freeze()
            self._settled_rows = rows

    def sort(self, *columns: str, key: Callable[[list[Any]], Any] | None = None,
             reverse: bool = False) -> None:
        """Order the rows by these columns' values, or by `key` of each row's cells. The
        cursor keeps its index (as in DataTable)."""
        self._model.sort(*columns, key=key, reverse=reverse)
        self.refresh()

    def _reordered(self, keep: str | None) -> None:
        """The filter or the operator's sort changed the rows shown: every line is drawn
        again, and the cursor stays on its row while that row is shown."""
        self._drawn.forget()
        self._resized()
        shown = self._model.keys
        row = self._model.index_of(keep) if keep is not None and keep in self._model \
            and self._model.matches(keep) else min(self._cursor.row, max(0, len(shown) - 1))
        self._move(Coordinate(row, self._cursor.column), scroll=True, announce=True)
        self.refresh()
        self.counted()

    def _resized(self) -> None:
        count = len(self._model.keys)
        self.virtual_size = Size(self._model.width(), count + self.header_height)
        if self._cursor.row >= count and count:
            self._cursor = Coordinate(count - 1, self._cursor.column)

    # ---- drawing (screens/widgets/tablelines.py) -----------------------------------------

    def notify_style_update(self) -> None:
        """The CSS changed (focus, a theme): every line may look different."""
        super().notify_style_update()
        self._drawn.restyled()
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self._frame_of()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_of(self) -> Frame:
        scroll_x, scroll_y = self.scroll_offset
        get = self.get_component_rich_style
        return Frame(self.rich_style, self.size.width, scroll_x, scroll_y, self.header_height,
                     self._show_hover, tuple(get(name) for name in STYLE_NAMES),
                     self.background_colors[1], self.cursor_type == "row",
                     self.zebra_stripes, self.app.console, self.app.console_options)

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._frame_of()
        if y < frame.header:
            if y == 0 and self.filtering:
                return self.filter_line(self.scrollable_content_region.width, frame.styles[0])
            return self._drawn.line(frame, -1, None, self._cursor, self._hover)
        index = y - frame.header + frame.scroll_y
        keys = self._model.keys
        if index >= len(keys):
            return Strip.blank(frame.width, frame.base)
        return self._drawn.line(frame, index, keys[index], self._cursor, self._hover)
