"""A KeyedTable's cursor: where it is, the keys and the mouse that move it, the rows redrawn
when it moves and the messages that tell the screen.

A mixin of KeyedTable (screens/widgets/keyedtable.py), in a module of its own so the widget's
module stays readable; it keeps no state of its own beyond the cursor and the hover, and it
posts the widget's messages (`KeyedTable.RowHighlighted`, ...), so screens handle
`on_keyed_table_row_selected` as they always have. The keys are bound in KeyedTable.BINDINGS
(Textual collects bindings from widget classes only) to the `action_*` methods here.

The mouse: each drawn cell carries `{"row", "column"}` in its style's meta (the header is row
-1, the blank past the last column is `out_of_bounds`), as DataTable's cells do
(screens/widgets/tablelines.py draws them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual import events
from textual.coordinate import Coordinate
from textual.geometry import Region, Spacing, clamp

from screens.widgets.tablemodel import TableModel

if TYPE_CHECKING:  # for a type checker, the widget the mixin will be part of
    from textual.scroll_view import ScrollView

    from screens.widgets.keyedtable import KeyedTable

    _Base = ScrollView
else:
    _Base = object

CursorType = Literal["row", "cell"]


class TableCursor(_Base):
    """The cursor and hover of a KeyedTable (see the module docstring)."""

    # What KeyedTable provides (bare annotations: nothing is set here).
    RowHighlighted: type[KeyedTable.RowHighlighted]
    RowSelected: type[KeyedTable.RowSelected]
    CellHighlighted: type[KeyedTable.CellHighlighted]
    CellSelected: type[KeyedTable.CellSelected]
    HeaderSelected: type[KeyedTable.HeaderSelected]
    cursor_type: CursorType
    show_header: bool
    header_height: int
    _model: TableModel
    _cursor: Coordinate
    _hover: Coordinate
    _show_hover: bool  # the hover cursor hides while the keyboard is used

    def move_cursor(self, *, row: int | None = None, column: int | None = None,
                    animate: bool = False, scroll: bool = True) -> None:
        target = Coordinate(self._cursor.row if row is None else row,
                            self._cursor.column if column is None else column)
        self._move(target, scroll=scroll, animate=animate)

    def _clamp(self, where: Coordinate) -> Coordinate:
        return Coordinate(clamp(where.row, 0, max(0, len(self._model.keys) - 1)),
                          clamp(where.column, 0, max(0, len(self._model.columns) - 1)))

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
        if (where != old or announce) and self._model.keys:
            self._highlighted()
        if scroll and self._model.keys:
            if self.size.height:
                self._scroll_cursor_into_view(animate)
            else:
                self.call_after_refresh(self._scroll_cursor_into_view)

    def _highlighted(self) -> None:
        row, column = self._cursor
        keys = self._model.keys
        if getattr(self, "objects", None) is not None:
            self.refresh_bindings()  # `l` is offered on pod rows only
        if self.cursor_type == "row":
            self.post_message(self.RowHighlighted(self, row, keys[row]))
        elif self._model.columns:
            self.post_message(self.CellHighlighted(self, self._cursor, keys[row],
                                                   list(self._model.columns)[column]))

    def _selected(self) -> None:
        keys = self._model.keys
        if not keys:
            return
        row, column = self._cursor
        if self.cursor_type == "row":
            self.post_message(self.RowSelected(self, row, keys[row]))
        elif self._model.columns:
            self.post_message(self.CellSelected(self, self._cursor, keys[row],
                                                list(self._model.columns)[column]))

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        row, column = self._cursor
        if row >= len(self._model.keys):
            return
        top = self.header_height
        y = row + top
        if self.cursor_type == "row":
            width = max(self.size.width, self.virtual_size.width)
            region = Region(int(self.scroll_x), y, width, 1)
        else:
            columns = list(self._model.columns.values())[:column + 1]
            x = sum(c.render_width for c in columns[:-1])
            region = Region(x, y, columns[-1].render_width if columns else 0, 1)
        self.scroll_to_region(region, animate=animate, spacing=Spacing(top, 0, 0, 0),
                              force=True)

    def _refresh_row(self, index: int) -> None:
        if 0 <= index < len(self._model.keys):
            self.refresh_line(index + self.header_height)

    def _set_hover(self, shown: bool) -> None:
        self._show_hover = shown
        self._refresh_row(self._hover.row)

    # ---- the keys (bound in KeyedTable.BINDINGS) -----------------------------------------

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
        self._move(Coordinate(len(self._model.keys) - 1, self._cursor.column))

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
            self._move(Coordinate(self._cursor.row, len(self._model.columns) - 1))
        else:
            self.action_last_row()

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        self._selected()

    # ---- the mouse -----------------------------------------------------------------------

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
        if row == -1 and self.show_header:  # the header: the last of the top lines
            self.refresh(Region(0, self.header_height - 1, self.size.width, 1))
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
            keys = list(self._model.columns)
            if 0 <= column < len(keys):
                self.post_message(self.HeaderSelected(self, keys[column], column))
            return
        where = Coordinate(row, column)
        again = where == self._cursor
        self._move(where, animate=True)
        if again:
            self._selected()
        event.stop()
