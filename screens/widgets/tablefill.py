"""Filling a DataTable: every column as wide as its widest cell, the cursor kept on its row.

A module of its own under widgets/ so that the tables (SizedTable, PodTable) and the screens
share it without the widgets importing the screens' base.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from installer.textsafe import display
from screens.widgets.datatext import data_text


def cell_width(cell: Any) -> int:
    """The width of the cell as a table draws it (controls escaped: see PlainTable). Asked
    for every cell of a 10,000-pod fill, so a plain str is measured without a call."""
    if isinstance(cell, str) and cell.isprintable():
        return len(cell)
    if isinstance(cell, Text):
        return (cell if cell.plain.isprintable() else data_text(cell, multiline=False)).cell_len
    return len(display(str(cell)))


MAX_COLUMN_WIDTH = 120


def fill_table(table: DataTable, columns: Iterable[tuple[str, str]],
               rows: Iterable[tuple[str, Sequence[Any]]], *,
               max_width: int = MAX_COLUMN_WIDTH,
               add_rows: Callable[[list[tuple[str, Sequence[Any]]]], None] | None = None,
               ) -> None:
    """Replace a table's columns and rows, with every column as wide as its widest cell.

    Widths are set explicitly: left to the DataTable they are worked out lazily, and a
    table refilled between two idle moments would then show cut-off columns - what it
    shows must depend on the state alone, never on timing. The cursor stays on its row.
    """
    columns = list(columns)
    rows = list(rows)
    cursor_key = None
    if table.row_count and table.cursor_row < table.row_count:
        cursor_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    cursor_column = table.cursor_column
    table.clear(columns=True)
    for i, (key, label) in enumerate(columns):
        widest = max([len(label), *(cell_width(cells[i]) for _, cells in rows)])
        table.add_column(label, key=key, width=min(widest, max_width))
    if add_rows is not None:  # a table with a faster way to add many (SizedTable)
        add_rows(rows)
    else:
        for key, cells in rows:
            table.add_row(*cells, key=key)
    if cursor_key is not None and cursor_key in table.rows:
        table.move_cursor(row=table.get_row_index(cursor_key), column=cursor_column,
                          scroll=False)
