"""A DataTable whose columns are sized from its rows up front, and updated in place.

Why: DataTable measures every cell of every new row to size auto-width columns, and a
table refilled for each change re-measures all of them - seconds for 1,000 nodes or
10,000 pods on 2 cores (bench/scale.py). Here `fill_rows` sets every column's width from its
widest cell (so what is shown depends on the state alone, never on timing) and `update_rows`
changes only the rows that changed, refilling only when a cell outgrows its column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import Any

from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets._data_table import DuplicateKey, Row, RowKey

from screens.base import MAX_COLUMN_WIDTH, cell_width, fill_table


class SizedTable(DataTable):
    """Rows are keyed; columns are (key, label) pairs given to `fill_rows`."""

    def fill_rows(self, columns: Sequence[tuple[str, str]],
             rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        fill_table(self, columns, rows)

    def update_rows(self, columns: Sequence[tuple[str, str]],
               changed: Mapping[str, Sequence[Any]]) -> bool:
        """Put these rows' cells in place (new keys go to the end); unchanged cells are
        left alone, so passing every row is fine. False, and nothing
        changed, when the table must be refilled instead: it is empty, its columns differ,
        or a cell is wider than its column."""
        widths = [c.width for c in self.ordered_columns]
        if not self.row_count or [str(c.key.value) for c in self.ordered_columns] != \
                [k for k, _ in columns]:
            return False
        if any(min(cell_width(cell), MAX_COLUMN_WIDTH) > w for cells in changed.values()
               for cell, w in zip(cells, widths, strict=True)):
            return False
        self.add_keyed_rows((key, cells) for key, cells in changed.items()
                            if key not in self.rows)
        for key, cells in changed.items():
            for (column, _), old, cell in zip(columns, self.get_row(key), cells, strict=True):
                if old != cell:  # each update_cell repaints: only what differs
                    self.update_cell(key, column, cell)
        return True

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
