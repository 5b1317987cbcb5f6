"""A DataTable whose columns are sized from its rows up front, and updated in place.

Why: DataTable measures every cell of every new row to size auto-width columns, and a
table refilled for each change re-measures all of them - seconds for 1,000 nodes or
10,000 pods on 2 cores (bench/scale.py). Here `fill_rows` sets every column's width from its
widest cell (so what is shown depends on the state alone, never on timing) and `update_rows`
changes only the rows that changed, refilling only when a cell outgrows its column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from textual.geometry import Size
from textual.widgets import DataTable

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
        for key, cells in changed.items():
            if key not in self.rows:
                self.add_row(*cells, key=key)
                continue
            for (column, _), old, cell in zip(columns, self.get_row(key), cells, strict=True):
                if old != cell:  # each update_cell repaints: only what differs
                    self.update_cell(key, column, cell)
        return True

    def _update_dimensions(self, new_rows: Iterable[Any]) -> None:
        """Every column has an explicit width and every row one line, so unlike DataTable
        nothing is measured: only the scrollable size is worked out."""
        header = self.header_height if self.show_header else 0
        width = sum(c.get_render_width(self) for c in self.columns.values())
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)
