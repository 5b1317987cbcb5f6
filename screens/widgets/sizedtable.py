"""A DataTable whose columns are sized from its rows up front, and updated in place.

Why: DataTable measures every cell of every new row to size auto-width columns, and a
table refilled for each change re-measures all of them - seconds for 1,000 nodes or
10,000 pods on 2 cores (bench/scale.py). Here `fill_rows` sets every column's width from its
widest cell (so what is shown depends on the state alone, never on timing) and `update_rows`
changes only the rows that changed, growing a column when a cell outgrows it.

A change costs what it touches, not what the table holds: DataTable keys its row order,
line offsets and every rendered cell on one update counter, so a single changed cell
rebuilt O(rows) lists and re-rendered every visible row, and a new row re-sorted them all.
Here changed cells are written in place and only their rows' cached renderings dropped, new
rows go in by bisect with one re-indexing per batch, and the order and offsets are cached
until rows are added, removed or moved. This mirrors internals of the pinned textual; the
snapshot and pod-table tests cover what it draws.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets._data_table import DuplicateKey, Row, RowKey

from screens.base import MAX_COLUMN_WIDTH, cell_width, fill_table

FILL_COLLECT_ROWS = 2_000


def _identity(cell: Any) -> tuple[Any, ...] | None:
    """What a cell's rendering depends on, hashable; None for cells not cached this way."""
    if isinstance(cell, str):
        return ("s", cell)
    if isinstance(cell, Text):
        return ("t", cell.plain, str(cell.style), cell.justify, cell.overflow, cell.no_wrap,
                cell.end, tuple((sp.start, sp.end, str(sp.style)) for sp in cell.spans))
    return None


class SizedTable(DataTable):
    """Rows are keyed; columns are (key, label) pairs given to `fill_rows`."""

    # Class defaults: DataTable.__init__ already reads ordered_rows (a cursor watcher).
    _moves = 0  # bumped when this class re-indexes rows in place
    _order_cache: tuple[Any, list[Row], list[tuple[RowKey, int]]] | None = None
    _sorted_cache: tuple[Any, list[Any]] | None = None
    _content_cache: LRUCache[tuple[Any, ...], Any] | None = None
    _row_styles: dict[tuple[Any, ...], Style] | None = None

    def fill_rows(self, columns: Sequence[tuple[str, str]],
                  rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        fill_table(self, columns, rows)
        if self.row_count >= FILL_COLLECT_ROWS:
            # A big fill leaves the collector owing a full pass over everything it made,
            # which the next allocation-heavy moment pays: the first pod change after 10,000
            # rows took 50-100 ms more (bench/podtable.py, bench/scale.py). Paid here, it
            # hides in the fill (~0.5 s), and the objects are old by the next update.
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
        ordered = self.ordered_columns
        if not self.row_count or [str(c.key.value) for c in ordered] != [k for k, _ in columns]:
            return False
        wider: dict[Any, int] = {}
        for cells in changed.values():
            for column, cell in zip(ordered, cells, strict=True):
                need = min(cell_width(cell), MAX_COLUMN_WIDTH)
                if need > max(column.width, wider.get(column.key, 0)):
                    wider[column.key] = need
        if wider:
            self._widen(wider)
        new = {key: cells for key, cells in changed.items() if key not in self.rows}
        edited: list[RowKey] = []
        for key, cells in changed.items():
            if key in new:
                continue
            data = self._data[RowKey(key)]
            for (column, _), cell in zip(columns, cells, strict=True):
                if data[column] != cell:
                    data[column] = cell
                    edited.append(RowKey(key))
        if new and sort_by:
            at = [[k for k, _ in columns].index(c) for c in sort_by]
            self._insert_sorted(new, tuple(sort_by), lambda cells: tuple(cells[i] for i in at))
        elif new:
            self.add_keyed_rows(new.items())
        if edited:
            self._forget(set(edited))
            for key in set(edited):
                self.refresh_row(self._row_locations.get(key))
        return True

    def _widen(self, widths: Mapping[Any, int]) -> None:
        """Grow columns in place to fit a wider cell - as wide as a refill would make them
        (the widest cell, capped). Why: a pod's reason turning "ContainerCreating" refilled
        all 10,000 rows, most of a second under load (bench/scale.py's worst update)."""
        for key, width in widths.items():
            self.columns[key].width = width
        self._clear_caches()  # renderings by content stay: their key holds the width
        self._update_count += 1
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()

    def _sorted(self, sort_by: tuple[str, ...]) -> list[Any]:
        """The rows' `sort_by` values in display order, kept while the order holds."""
        shape = (self._shape(), sort_by)
        cached = self._sorted_cache
        if cached is None or cached[0] != shape:
            data = self._data
            cached = (shape, [tuple(data[r.key][c] for c in sort_by)
                              for r in self.ordered_rows])
        self._sorted_cache = None  # the caller changes the list
        return cached[1]

    def _insert_sorted(self, rows: Mapping[str, Sequence[Any]], sort_by: tuple[str, ...],
                       sort_key: Callable[[Sequence[Any]], tuple[Any, ...]]) -> None:
        """New rows at their bisect positions, the row order and line offsets updated in
        place: one re-indexing for the whole batch, where DataTable.sort called a Python key
        function for every row of the table and then rebuilt both lists."""
        values = self._sorted(sort_by)
        _, ordered, offsets = self._order()
        one_line = len(offsets) == len(ordered)  # then offsets[i] is row i's only line
        columns = self.ordered_columns
        first = len(ordered)
        for key, cells in rows.items():
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            value = sort_key(cells)
            i = bisect_right(values, value)
            values.insert(i, value)
            row = self.rows[row_key] = Row(row_key, 1, None, False)
            ordered.insert(i, row)
            if one_line:
                offsets.insert(i, (row_key, 0))
            first = min(first, i)
            self._data[row_key] = {c.key: cell for c, cell in zip_longest(columns, cells)}
            self._new_rows.add(row_key)
        self._row_locations = TwoWayDict({row.key: i for i, row in enumerate(ordered)})
        self._moves += 1
        if one_line:
            self._order_cache = (self._shape(), ordered, offsets)
        self._sorted_cache = ((self._shape(), sort_by), values)
        self._forget(set(), first)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self.check_idle()
        self.refresh()

    def _shape(self) -> tuple[Any, ...]:
        """Changes whenever rows are added, removed or moved (DataTable replaces its row
        locations when it removes or sorts, and this class when it inserts)."""
        return (self._row_locations, len(self.rows), self._moves)

    def _forget(self, rows: set[RowKey], from_index: int | None = None) -> None:
        """Drop the cached renderings of these rows and of every row from `from_index` on
        (their index, drawn into each cell for the mouse, changed). The rest stay cached."""
        where = self._row_locations.get
        start = len(self.rows) if from_index is None else from_index

        def moved(key: RowKey) -> bool:  # the header's key has no index: it never moves
            index = where(key)
            return key in rows or (index is not None and index >= start)

        for cache in (self._row_render_cache, self._cell_render_cache):
            for k in [k for k in cache.keys() if moved(k[0])]:  # noqa: SIM118 (no __iter__)
                cache.discard(k)
        indices = {where(key) for key in rows}
        for k in [k for k in self._row_renderable_cache.keys()  # noqa: SIM118
                  if k[1] in indices or k[1] >= start]:
            self._row_renderable_cache.discard(k)
        self._line_cache.clear()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        """DataTable's rendering of a cell, reused for any cell with the same content, width
        and style. Why: DataTable caches a cell by its row, and a row added above shifts
        every visible row (its index is in each cell's mouse meta, and its zebra stripe may
        flip), so each insert re-rendered the whole window through rich - most of an
        update's time. Columns like namespace, phase and ready repeat from row to row; the
        cached segments only get this row's meta."""
        identity = None
        if row_index >= 0 and column_index >= 0 and not self.fixed_rows \
                and not self.fixed_columns:
            row_key = self._row_locations.get_key(row_index)
            column_key = self._column_locations.get_key(column_index)
            identity = _identity(self._data[row_key].get(column_key)) if row_key else None
        if identity is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor,
                                        hover)
        key = (identity, width, base_style, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state, self.rows[row_key].height, self.cell_padding)
        if self._content_cache is None:
            self._content_cache = LRUCache(4096)
        lines = self._content_cache.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor,
                                         hover)
            self._content_cache.set(key, lines)
            return lines
        meta = Style.from_meta({"row": row_index, "column": column_index})
        return [[Segment(seg.text, seg.style + meta if seg.style is not None else None,
                         seg.control) for seg in line] for line in lines]

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        """DataTable's, remembered per stripe: it computed the CSS component style for
        every row drawn."""
        key = (row_index % 2 if row_index >= self.fixed_rows else row_index, base_style,
               self._pseudo_class_state)
        if self._row_styles is None:
            self._row_styles = {}
        style = self._row_styles.get(key)
        if style is None:
            style = self._row_styles[key] = super()._get_row_style(row_index, base_style)
        return style

    def notify_style_update(self) -> None:
        """The CSS changed (a theme): the one input the two caches above do not key on."""
        super().notify_style_update()
        self._content_cache = None
        self._row_styles = None

    @property
    def ordered_rows(self) -> list[Row]:
        """DataTable's, but cached until rows are added, removed or moved - not rebuilt
        after every changed cell."""
        return self._order()[1]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        return self._order()[2]

    def _order(self) -> tuple[Any, list[Row], list[tuple[RowKey, int]]]:
        shape = self._shape()
        cached = self._order_cache
        if cached is None or cached[0] != shape:
            get_key, rows = self._row_locations.get_key, self.rows
            ordered = [rows[get_key(i)] for i in range(len(rows))]
            offsets = [(row.key, y) for row in ordered for y in range(row.height)]
            cached = self._order_cache = (shape, ordered, offsets)
        return cached

    def add_keyed_rows(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """DataTable.add_row for many rows: the same bookkeeping, but the cursor (a reactive
        with watchers) is revalidated once, not once per row - 10,000 rows took seconds.
        Mirrors add_row of the pinned textual; the snapshot tests cover what it draws."""
        columns = self.ordered_columns
        was_empty = not self.rows
        for key, cells in rows:
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            self._row_locations[row_key] = len(self.rows)
            self._data[row_key] = {c.key: cell for c, cell in zip_longest(columns, cells)}
            self.rows[row_key] = Row(row_key, 1, None, False)
            self._new_rows.add(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.rows and self.columns and self.show_cursor \
                and self.cursor_type != "none":
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()

    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        """Every column has an explicit width and every row one line, so unlike DataTable
        nothing is measured: only the scrollable size is worked out."""
        header = self.header_height if self.show_header else 0
        width = sum(c.get_render_width(self) for c in self.columns.values())
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)
