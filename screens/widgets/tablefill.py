"""How wide a table cell is drawn, and the cap on a column's width: what
`tablemodel.TableModel.fill` sizes its columns by.

A module of its own under widgets/ so that the tables and the screens share it without the
widgets importing the screens' base.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from installer.textsafe import display
from screens.widgets.datatext import data_text


def cell_width(cell: Any) -> int:
    """The width of the cell as a table draws it (controls escaped: see
    datatext.cell_text). Asked for every cell of a 10,000-pod fill, so a plain str is
    measured without a call."""
    if isinstance(cell, str) and cell.isprintable():
        return len(cell)
    if isinstance(cell, Text):
        return (cell if cell.plain.isprintable() else data_text(cell, multiline=False)).cell_len
    return len(display(str(cell)))


MAX_COLUMN_WIDTH = 120
