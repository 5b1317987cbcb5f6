"""The wizard's tables (nodes, checks, fixes, steps, pods, findings, events, labels): one
widget on Textual's public Line API - a `ScrollView` drawing each line in `render_line`.

Why not Textual's DataTable: it measures every cell of every new row to size its columns,
keys its row order and every rendered cell on one update counter (one changed cell rebuilt
O(rows) lists and re-rendered every visible row) and re-sorts every row for an insert; at
1,000 nodes or 10,000 pods on 2 cores that was seconds (bench/scale.py). Making it fast meant
subclassing its private members, which any Textual release may change. Here:

- rows are keyed by a str and held as lists of cells in display order (`row_keys`); a row's
  index by key is worked out when asked, once per change of the order;
- columns are sized from their widest cell up front (`fill_rows`), capped at
  MAX_COLUMN_WIDTH, so what is shown depends on the state alone, never on timing;
- `update_rows` writes changed cells in place, puts new rows at their sorted place by bisect
  and grows a column whose cell outgrew it: its cost is what changed, not what the table
  holds;
- a drawn line is kept per row until the row, its index or the frame's look changes, and a
  cell's rendering is kept by its content, width and style (columns like namespace, phase
  and ready repeat from row to row), so rows moved by an insert above are re-joined from
  cached cells, not rendered through rich again.

What it draws is what DataTable draws for the same rows (text, styles and each cell's mouse
meta `{"row", "column"}`): tests/screens/test_podtable.py compares the two line by line. The
look comes from component classes (`keyed-table--header`, `--cursor`, `--hover`,
`--even-row`, `--odd-row`, `--header-cursor`, `--header-hover`) that app.tcss can style.
Cells are data, never markup (`datatext.cell_text`).

Shaped for what the screens will add (a `/` filter, a column sort, keys acting on the row
under the cursor): rows are reached by key (`cursor_key`, `get_row`, `get_row_index`),
`sort` takes column keys or a key function, and the display order is the one list
`row_keys`, which a filter predicate would narrow.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Region, Size, Spacing, clamp
from textual.message import Message
from textual.renderables.styled import Styled
from textual.scroll_view import ScrollView
from textual.strip import Strip

from screens.widgets.datatext import cell_text
from screens.widgets.tablefill import MAX_COLUMN_WIDTH, cell_width

CursorType = Literal["row", "cell"]
CELL_PADDING = 1  # blank cells each side of a column, as DataTable's default
CELL_CACHE = 4096  # cell renderings kept by content (a window shows a few hundred cells)
LINE_ROWS = 1_000  # rows whose drawn line is kept (a window is tens); past that all go
FILL_COLLECT_ROWS = 2_000  # a fill this big runs the collector itself (see fill_rows)


@dataclass
class Column:
    """A column: its key, its header label and its content width (without padding)."""

    key: str
    label: Text
    width: int

    @property
    def render_width(self) -> int:
        return self.width + 2 * CELL_PADDING


def _identity(cell: Any) -> tuple[Any, ...] | None:
    """What a cell's rendering depends on, hashable; None for cells not cached this way."""
    if isinstance(cell, str):
        return ("s", cell)
    if isinstance(cell, Text):
        return ("t", cell.plain, str(cell.style), cell.justify, cell.overflow, cell.no_wrap,
                cell.end, tuple((sp.start, sp.end, str(sp.style)) for sp in cell.spans))
    return None


def _same(a: Any, b: Any) -> bool:
    """Whether two cells draw alike: Text's own == ignores its style."""
    if a is b:
        return True
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans \
            and a.justify == b.justify and a.end == b.end
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class _Frame:
    """What every line of one frame shares, worked out once per frame: the widget's style
    (over every ancestor's) and the component styles cost a walk each."""

    base: Style
    width: int
    scroll_x: int
    scroll_y: int
    header: int  # the header's height (0: no header)
    show_hover: bool
    styles: tuple[Style, ...]  # header, cursor, hover, header-cursor, header-hover, even, odd
    background: Color


class KeyedTable(ScrollView, can_focus=True):
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
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header", "keyed-table--cursor", "keyed-table--hover",
        "keyed-table--header-cursor", "keyed-table--header-hover",
        "keyed-table--even-row", "keyed-table--odd-row",
    }
    _STYLE_NAMES = ("keyed-table--header", "keyed-table--cursor", "keyed-table--hover",
                    "keyed-table--header-cursor", "keyed-table--header-hover",
                    "keyed-table--even-row", "keyed-table--odd-row")

    # The look of Textual's DataTable (textual/widgets/_data_table.py@8.2.8, DEFAULT_CSS), so
    # the screens look as they did; app.tcss may restyle any of it.
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
        self.columns: dict[str, Column] = {}
        self._max_width = MAX_COLUMN_WIDTH  # the last fill's cap, for columns that grow
        self._keys: list[str] = []  # the display order
        self._cells: dict[str, list[Any]] = {}
        self._where: dict[str, int] | None = None  # index by key, until the order changes
        self._cursor = Coordinate(0, 0)
        self._hover = Coordinate(0, 0)
        self._show_hover = False  # the hover cursor hides while the keyboard is used
        self._frame: _Frame | None = None
        self._lines: dict[str, tuple[tuple[Any, ...], Strip]] = {}
        self._cell_cache: LRUCache[tuple[Any, ...], list[Segment]] = LRUCache(CELL_CACHE)
        self._styles_for: dict[tuple[Any, ...], tuple[Style, Style]] = {}

    # ---- reading -------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def row_keys(self) -> list[str]:
        """The rows' keys in display order (the table's own list: do not change it)."""
        return self._keys

    @property
    def ordered_columns(self) -> list[Column]:
        return list(self.columns.values())

    @property
    def header_height(self) -> int:
        return 1 if self.show_header else 0

    def __contains__(self, key: object) -> bool:
        return key in self._cells

    def get_row(self, key: str) -> list[Any]:
        return list(self._cells[key])

    def get_row_at(self, index: int) -> list[Any]:
        return list(self._cells[self._keys[index]])

    def get_cell(self, key: str, column: str) -> Any:
        return self._cells[key][self.get_column_index(column)]

    def get_row_index(self, key: str) -> int:
        where = self._where
        if where is None:
            where = self._where = dict(zip(self._keys, range(len(self._keys)), strict=True))
        return where[key]

    def get_column_index(self, column: str) -> int:
        return list(self.columns).index(column)

    @property
    def cursor_coordinate(self) -> Coordinate:
        return self._cursor

    @property
    def cursor_row(self) -> int:
        return self._cursor.row

    @property
    def cursor_column(self) -> int:
        return self._cursor.column

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor; None when the table is empty."""
        return self._keys[self._cursor.row] if self._cursor.row < len(self._keys) else None

    @property
    def cursor_column_key(self) -> str | None:
        columns = list(self.columns)
        return columns[self._cursor.column] if self._cursor.column < len(columns) else None

    @property
    def hover_coordinate(self) -> Coordinate:
        return self._hover

    # ---- filling and updating ------------------------------------------------------------

    def clear(self, columns: bool = False) -> None:
        """No rows (and no columns); the cursor and the scroll back at the top."""
        self._keys, self._cells, self._where = [], {}, None
        if columns:
            self.columns = {}
        self._cursor = self._hover = Coordinate(0, 0)
        self._forget_lines()
        self._resized()
        self.scroll_to(0, 0, animate=False, immediate=True)

    def fill_rows(self, columns: Iterable[tuple[str, str]],
                  rows: Iterable[tuple[str, Sequence[Any]]], *,
                  max_width: int = MAX_COLUMN_WIDTH,
                  widths: Mapping[str, int] | None = None) -> None:
        """Replace the columns and rows. A column is as wide as its widest cell or label,
        capped at `max_width`, unless `widths` fixes it. The cursor stays on its row's key
        (else its index, within the rows)."""
        columns = list(columns)
        rows = list(rows)
        fixed = widths or {}
        keep = self.cursor_key
        self._max_width = max_width
        self.columns = {}
        for i, (key, label) in enumerate(columns):
            width = fixed.get(key)
            if width is None:
                width = min(max([len(label), *(cell_width(cells[i]) for _, cells in rows)]),
                            max_width)
            self.columns[key] = Column(key, Text.from_markup(label), width)
        self._keys, self._cells, self._where = [], {}, None
        self._add(rows)
        self._forget_lines()
        self._resized()
        row = self.get_row_index(keep) if keep is not None and keep in self._cells \
            else self._cursor.row
        # As a refilled DataTable: scrolled back to the top, then to the cursor, and the
        # cursor's row announced (the screens show its details from that message).
        self.scroll_to(0, 0, animate=False, immediate=True)
        self._move(Coordinate(row, self._cursor.column), scroll=True, announce=True)
        self.refresh()
        if len(rows) >= FILL_COLLECT_ROWS:
            # A big fill leaves the collector owing a full pass over everything it made,
            # which the next allocation-heavy moment pays: the first pod change after 10,000
            # rows took 50-100 ms more (bench/podtable.py, bench/scale.py). Paid here, it
            # hides in the fill, and the objects are old by the next update.
            gc.collect()

    def update_rows(self, columns: Sequence[tuple[str, str]],
                    changed: Mapping[str, Sequence[Any]], sort_by: Sequence[str] = ()
                    ) -> bool:
        """Put these rows' cells in place; unchanged cells are left alone, so passing every
        row is fine. New keys go where the `sort_by` columns' values put them among rows
        already in that order, else to the end (a row keeps its place when edited: sort by
        columns its key determines). A column grows to fit a wider cell. False, and nothing
        changed, when the table must be refilled instead: it is empty or its columns
        differ."""
        if not self._keys or list(self.columns) != [key for key, _ in columns]:
            return False
        ordered, cap, wider = self.ordered_columns, self._max_width, False
        for cells in changed.values():
            for column, cell in zip(ordered, cells, strict=True):
                if column.width < cap:
                    need = min(cell_width(cell), cap)
                    if need > column.width:
                        column.width, wider = need, True
        if wider:  # as wide as a refill would make it - not a refill of every row
            self._forget_lines()
            self._resized()
            self.refresh()
        new: dict[str, Sequence[Any]] = {}
        edited: list[str] = []
        for key, cells in changed.items():
            row = self._cells.get(key)
            if row is None:
                new[key] = cells
            elif not all(map(_same, row, cells)):
                row[:] = cells
                edited.append(key)
        if new:
            if sort_by:
                self._insert_sorted(new, [list(self.columns).index(c) for c in sort_by])
            else:
                self._add(new.items())
            self._resized()
            self.refresh()
        for key in edited:
            self._lines.pop(key, None)
            if not new:
                self._refresh_row(self.get_row_index(key))
        return True

    def add_rows(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Rows at the end, in this order."""
        was_empty = not self._keys
        self._add(rows)
        self._resized()
        if was_empty:
            self._move(self._cursor, scroll=False, announce=True)
        self.refresh()

    def remove_row(self, key: str) -> None:
        index = self.get_row_index(key)
        del self._keys[index]
        del self._cells[key]
        self._where = None
        self._lines.pop(key, None)
        self._resized()
        if self._cursor.row >= len(self._keys) and self._keys:
            self._move(Coordinate(len(self._keys) - 1, self._cursor.column), scroll=True)
        self.refresh()

    def sort(self, *columns: str, key: Callable[[list[Any]], Any] | None = None,
             reverse: bool = False) -> None:
        """Order the rows by these columns' values, or by `key` of each row's cells. The
        cursor keeps its index (as in DataTable)."""
        at = [self.get_column_index(c) for c in columns]
        by = key or (lambda cells: tuple(cells[i] for i in at))
        cells = self._cells
        self._keys.sort(key=lambda k: by(cells[k]), reverse=reverse)
        self._where = None
        self.refresh()

    def _add(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        count = len(self.columns)
        keys, cells = self._keys, self._cells
        for key, row in rows:
            if key in cells:
                raise ValueError(f"the row key {key!r} is already in the table")
            values = list(row)
            if len(values) < count:
                values += [None] * (count - len(values))
            cells[key] = values
            keys.append(key)
            if self._where is not None:
                self._where[key] = len(keys) - 1

    def _insert_sorted(self, rows: Mapping[str, Sequence[Any]], at: list[int]) -> None:
        """New rows at their bisect positions: only the ~14 rows a bisect probes are read,
        and no other row is re-indexed until an index by key is asked for."""
        keys, cells = self._keys, self._cells

        def value(key: str) -> tuple[Any, ...]:
            row = cells[key]
            return tuple(row[i] for i in at)

        for key, row in rows.items():
            if key in cells:
                raise ValueError(f"the row key {key!r} is already in the table")
            values = list(row)
            i = bisect_right(keys, tuple(values[j] for j in at), key=value)
            cells[key] = values
            keys.insert(i, key)
        self._where = None

    def _resized(self) -> None:
        width = sum(c.render_width for c in self.columns.values())
        self.virtual_size = Size(width, len(self._keys) + self.header_height)
        if self._cursor.row >= len(self._keys) and self._keys:
            self._cursor = Coordinate(len(self._keys) - 1, self._cursor.column)

    def _forget_lines(self) -> None:
        self._lines.clear()

    # ---- the cursor ----------------------------------------------------------------------

    def move_cursor(self, *, row: int | None = None, column: int | None = None,
                    animate: bool = False, scroll: bool = True) -> None:
        target = Coordinate(self._cursor.row if row is None else row,
                            self._cursor.column if column is None else column)
        self._move(target, scroll=scroll, animate=animate)

    def _clamp(self, where: Coordinate) -> Coordinate:
        return Coordinate(clamp(where.row, 0, max(0, len(self._keys) - 1)),
                          clamp(where.column, 0, max(0, len(self.columns) - 1)))

    def _move(self, where: Coordinate, *, scroll: bool = True, animate: bool = False,
              announce: bool = False) -> None:
        """Put the cursor here (clamped to the table); redraw the rows it left and reached
        and tell the screen when it changed (or `announce`)."""
        where = self._clamp(where)
        old = self._cursor
        self._cursor = where
        if where != old:
            self._refresh_row(old.row)
            self._refresh_row(where.row)
        if (where != old or announce) and self._keys:
            self._highlighted()
        if scroll and self._keys:
            if self.size.height:
                self._scroll_cursor_into_view(animate)
            else:
                self.call_after_refresh(self._scroll_cursor_into_view)

    def _highlighted(self) -> None:
        row, column = self._cursor
        if self.cursor_type == "row":
            self.post_message(self.RowHighlighted(self, row, self._keys[row]))
        elif self.columns:
            self.post_message(self.CellHighlighted(self, self._cursor, self._keys[row],
                                                   list(self.columns)[column]))

    def _selected(self) -> None:
        if not self._keys:
            return
        row, column = self._cursor
        if self.cursor_type == "row":
            self.post_message(self.RowSelected(self, row, self._keys[row]))
        elif self.columns:
            self.post_message(self.CellSelected(self, self._cursor, self._keys[row],
                                                list(self.columns)[column]))

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        row, column = self._cursor
        if row >= len(self._keys):
            return
        top = self.header_height
        y = row + top
        if self.cursor_type == "row":
            width = max(self.size.width, self.virtual_size.width)
            region = Region(int(self.scroll_x), y, width, 1)
        else:
            columns = self.ordered_columns[:column + 1]
            x = sum(c.render_width for c in columns[:-1])
            region = Region(x, y, columns[-1].render_width if columns else 0, 1)
        self.scroll_to_region(region, animate=animate, spacing=Spacing(top, 0, 0, 0),
                              force=True)

    def _refresh_row(self, index: int) -> None:
        if 0 <= index < len(self._keys):
            self.refresh_line(index + self.header_height)

    def _set_hover(self, shown: bool) -> None:
        self._show_hover = shown
        self._refresh_row(self._hover.row)

    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self._move(self._cursor.up())

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self._move(self._cursor.down())

    def action_cursor_left(self) -> None:
        self._set_hover(False)
        if self.cursor_type == "cell":
            self._move(self._cursor.left(), animate=True)
        else:
            self.scroll_left()

    def action_cursor_right(self) -> None:
        self._set_hover(False)
        if self.cursor_type == "cell":
            self._move(self._cursor.right(), animate=True)
        else:
            self.scroll_right()

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - self.header_height)

    def action_page_down(self) -> None:
        self._set_hover(False)
        height = self._page()
        self.scroll_relative(y=height, animate=False, force=True)
        self._move(Coordinate(self._cursor.row + height, self._cursor.column), scroll=False)

    def action_page_up(self) -> None:
        self._set_hover(False)
        height = self._page()
        self.scroll_relative(y=-height, animate=False, force=True)
        self._move(Coordinate(self._cursor.row - height, self._cursor.column), scroll=False)

    def action_first_row(self) -> None:
        self._set_hover(False)
        self._move(Coordinate(0, self._cursor.column))

    def action_last_row(self) -> None:
        self._set_hover(False)
        self._move(Coordinate(len(self._keys) - 1, self._cursor.column))

    def action_home(self) -> None:
        """The first column for a cell cursor, the first row for a row cursor."""
        if self.cursor_type == "cell":
            self._set_hover(False)
            self._move(Coordinate(self._cursor.row, 0))
        else:
            self.action_first_row()

    def action_end(self) -> None:
        if self.cursor_type == "cell":
            self._set_hover(False)
            self._move(Coordinate(self._cursor.row, len(self.columns) - 1))
        else:
            self.action_last_row()

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        self._selected()

    # ---- the mouse (each drawn cell carries {"row", "column"} in its style's meta) -------

    def on_mouse_move(self, event: events.MouseMove) -> None:
        meta = event.style.meta
        if not meta or "row" not in meta or (self.cursor_type != "row"
                                             and meta.get("out_of_bounds", False)):
            self._set_hover(False)
            return
        old = self._hover
        self._hover = Coordinate(meta["row"], meta["column"])
        self._show_hover = True
        if self._hover != old:
            self._refresh_hover_row(old.row)
        self._refresh_hover_row(self._hover.row)

    def _refresh_hover_row(self, row: int) -> None:
        if row == -1 and self.show_header:
            self.refresh(Region(0, 0, self.size.width, 1))
        else:
            self._refresh_row(row)

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(False)

    async def on_click(self, event: events.Click) -> None:
        self._show_hover = True
        meta = event.style.meta
        if "row" not in meta or "column" not in meta:
            return
        if self.cursor_type != "row" and meta.get("out_of_bounds", False):
            return
        row, column = meta["row"], meta["column"]
        if row == -1:
            keys = list(self.columns)
            if 0 <= column < len(keys):
                self.post_message(self.HeaderSelected(self, keys[column], column))
            return
        where = Coordinate(row, column)
        again = where == self._cursor
        self._move(where, animate=True)
        if again:
            self._selected()
        event.stop()

    # ---- drawing -------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """The CSS changed (focus, a theme): every line may look different."""
        super().notify_style_update()
        self._forget_lines()
        self._styles_for.clear()
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self._frame_of()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_of(self) -> _Frame:
        scroll_x, scroll_y = self.scroll_offset
        get = self.get_component_rich_style
        return _Frame(self.rich_style, self.size.width, scroll_x, scroll_y, self.header_height,
                      self._show_hover, tuple(get(name) for name in self._STYLE_NAMES),
                      self.background_colors[1])

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._frame_of()
        if y < frame.header:
            return self._line(frame, -1, None)
        index = y - frame.header + frame.scroll_y
        if index >= len(self._keys):
            return Strip.blank(frame.width, frame.base)
        return self._line(frame, index, self._keys[index])

    def _line(self, frame: _Frame, index: int, key: str | None) -> Strip:
        """Row `index`'s line (-1: the header), kept per row until the row, its index, the
        cursor or hover on it, or the frame's look changes."""
        cursor = self._cursor if self._cursor.row == index else None
        hover = self._hover if self._hover.row == index and frame.show_hover else None
        if key is None:  # the header: one line, drawn each frame
            return self._draw(frame, index, key, cursor, hover)
        state = (index, cursor, hover, frame)
        kept = self._lines.get(key)
        if kept is not None and kept[0] == state:
            return kept[1]
        strip = self._draw(frame, index, key, cursor, hover)
        if len(self._lines) >= LINE_ROWS:
            self._lines.clear()
        self._lines[key] = (state, strip)
        return strip

    def _cell_styles(self, frame: _Frame, header: bool, hover: bool, cursor: bool
                     ) -> tuple[Style, Style]:
        """The cursor's and hover's styles over a cell, and the style put after the cell's
        own (the cursor's colour wins over the cell's foreground), as DataTable has them
        (textual/widgets/_data_table.py@8.2.8, `_get_styles_to_render_cell`)."""
        key = (frame.styles, header, hover, cursor, frame.show_hover)
        found = self._styles_for.get(key)
        if found is not None:
            return found
        _, cursor_style, hover_style, header_cursor, header_hover, _, _ = frame.styles
        component = Style()
        if hover and frame.show_hover:
            component += hover_style
            if header:
                component += header_hover
        if cursor:
            component += cursor_style
            if header:
                component += header_cursor
        found = self._styles_for[key] = (component, Style.from_color(color=component.color)
                                         + Style.null())
        return found

    def _row_style(self, frame: _Frame, index: int) -> Style:
        header, _, _, _, _, even, odd = frame.styles
        if index == -1:
            return header
        if self.zebra_stripes:
            return odd if index % 2 else even
        return frame.base

    def _draw(self, frame: _Frame, index: int, key: str | None, cursor: Coordinate | None,
              hover: Coordinate | None) -> Strip:
        header = index == -1
        row_style = self._row_style(frame, index)
        columns = self.ordered_columns
        cells = [c.label for c in columns] if key is None else self._cells[key]
        by_row = self.cursor_type == "row"
        segments: list[Segment] = []
        for i, (column, cell) in enumerate(zip(columns, cells, strict=False)):
            on_cursor = cursor is not None and (by_row or cursor.column == i)
            on_hover = hover is not None and (by_row or hover.column == i)
            component, post = self._cell_styles(frame, header, on_hover, on_cursor)
            meta = Style.from_meta({"row": index, "column": i})
            for seg in self._render_cell(cell, column.render_width, row_style + component,
                                         post, header):
                segments.append(Segment(seg.text, seg.style + meta if seg.style is not None
                                        else meta))
        rest = max(0, frame.width - sum(c.render_width for c in columns))
        if by_row:
            extend, _ = self._cell_styles(frame, header, hover is not None, cursor is not None)
            extend = row_style + extend
        elif row_style.bgcolor is not None:
            faded = Color.from_rich_color(row_style.bgcolor).blend(frame.background, 0.25)
            extend = Style.from_color(color=row_style.color, bgcolor=faded.rich_color)
        else:
            extend = Style.from_color(row_style.color, row_style.bgcolor)
        segments.append(Segment(" " * rest, extend + Style.from_meta(
            {"row": index, "column": 0, "out_of_bounds": True})))
        total = sum(c.render_width for c in columns) + rest
        strip = Strip(segments, total).crop(frame.scroll_x, frame.scroll_x + frame.width)
        return strip.adjust_cell_length(frame.width, frame.base).simplify()

    def _render_cell(self, cell: Any, width: int, style: Style, post: Style, header: bool
                     ) -> list[Segment]:
        """One cell's segments, padded to its column: rich renders it as DataTable has it
        rendered, and the result is kept by content, width and styles."""
        identity = _identity(cell)
        key = (identity, width, style, post) if identity is not None else None
        if key is not None:
            found = self._cell_cache.get(key)
            if found is not None:
                return found
        shown = cell if header else cell_text(cell)
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        lines = self.app.console.render_lines(
            Styled(Padding(shown, (0, CELL_PADDING)), pre_style=style, post_style=post),
            options)
        segments = lines[0] if lines else []
        if key is not None:
            self._cell_cache.set(key, segments)
        return segments
