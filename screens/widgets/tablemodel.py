"""What a KeyedTable holds, apart from how it is drawn: its columns, its rows keyed by a str,
their display order, and the ways they change (fill, in-place update, sorted insert, add,
sort).

A module of its own, without Textual, so the rules that keep a 10,000-row table cheap are
stated and tested in one place (tests/unit/test_tablemodel.py), apart from the cursor and the
drawing (screens/widgets/keyedtable.py, tablecursor.py, tablelines.py):

- rows are lists of cells in display order (`keys`); a row's index by key is worked out when
  asked, once per change of the order;
- columns are sized from their widest cell up front (`fill`), capped at MAX_COLUMN_WIDTH, so
  what is shown depends on the state alone, never on timing;
- `update` writes changed cells in place, puts new rows at their sorted place by bisect and
  grows a column whose cell outgrew it: its cost is what changed, not what the table holds.

The widget redraws from what these methods report (`Update`); the model never asks for a
redraw itself.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from screens.widgets.tablefill import MAX_COLUMN_WIDTH, cell_width

CELL_PADDING = 1  # blank cells each side of a column, as DataTable's default


@dataclass
class Column:
    """A column: its key, its header label and its content width (without padding)."""

    key: str
    label: Text
    width: int

    @property
    def render_width(self) -> int:
        return self.width + 2 * CELL_PADDING


@dataclass
class Update:
    """What `TableModel.update` changed, for the widget to redraw no more than that."""

    wider: bool = False  # a column grew: every line moves
    added: bool = False  # new rows went in: rows below them moved
    edited: list[str] = field(default_factory=list)  # rows whose cells changed in place


def same_cell(a: Any, b: Any) -> bool:
    """Whether two cells draw alike: Text's own == ignores its style."""
    if a is b:
        return True
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans \
            and a.justify == b.justify and a.end == b.end
    return type(a) is type(b) and a == b


class TableModel:
    """Columns and keyed rows in display order."""

    def __init__(self) -> None:
        self.columns: dict[str, Column] = {}
        self.max_width = MAX_COLUMN_WIDTH  # the last fill's cap, for columns that grow
        self.keys: list[str] = []  # the display order
        self.cells: dict[str, list[Any]] = {}
        self._where: dict[str, int] | None = None  # index by key, until the order changes

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.cells

    def index_of(self, key: str) -> int:
        """The row's index in display order (KeyError for an unknown key)."""
        where = self._where
        if where is None:
            where = self._where = dict(zip(self.keys, range(len(self.keys)), strict=True))
        return where[key]

    def column_index(self, column: str) -> int:
        return list(self.columns).index(column)

    def width(self) -> int:
        """The table's width in cells, padding included."""
        return sum(c.render_width for c in self.columns.values())

    # ---- changing ------------------------------------------------------------------------

    def clear(self, columns: bool = False) -> None:
        """No rows (and no columns)."""
        self.keys, self.cells, self._where = [], {}, None
        if columns:
            self.columns = {}

    def fill(self, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[str, Sequence[Any]]],
             *, max_width: int = MAX_COLUMN_WIDTH, widths: Mapping[str, int] | None = None
             ) -> None:
        """Replace the columns and rows. A column is as wide as its widest cell or label,
        capped at `max_width`, unless `widths` fixes it."""
        fixed = widths or {}
        self.max_width = max_width
        self.columns = {}
        for i, (key, label) in enumerate(columns):
            width = fixed.get(key)
            if width is None:
                width = min(max([len(label), *(cell_width(cells[i]) for _, cells in rows)]),
                            max_width)
            self.columns[key] = Column(key, Text.from_markup(label), width)
        self.keys, self.cells, self._where = [], {}, None
        self.add(rows)

    def update(self, columns: Sequence[tuple[str, str]], changed: Mapping[str, Sequence[Any]],
               sort_by: Sequence[str] = ()) -> Update | None:
        """Put these rows' cells in place; unchanged cells are left alone, so passing every
        row is fine. New keys go where the `sort_by` columns' values put them among rows
        already in that order, else to the end (a row keeps its place when edited: sort by
        columns its key determines). A column grows to fit a wider cell, up to the last
        fill's cap. None, and nothing changed, when the table must be refilled instead: it
        is empty or its columns differ."""
        if not self.keys or list(self.columns) != [key for key, _ in columns]:
            return None
        done = Update()
        ordered, cap = list(self.columns.values()), self.max_width
        for cells in changed.values():
            for column, cell in zip(ordered, cells, strict=True):
                if column.width < cap:
                    need = min(cell_width(cell), cap)
                    if need > column.width:
                        column.width, done.wider = need, True
        new: dict[str, Sequence[Any]] = {}
        for key, cells in changed.items():
            row = self.cells.get(key)
            if row is None:
                new[key] = cells
            elif not all(map(same_cell, row, cells)):
                row[:] = cells
                done.edited.append(key)
        if new:
            if sort_by:
                self._insert_sorted(new, [self.column_index(c) for c in sort_by])
            else:
                self.add(new.items())
            done.added = True
        return done

    def add(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Rows at the end, in this order; a short row is padded with None (blank cells)."""
        count = len(self.columns)
        keys, cells = self.keys, self.cells
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

    def sort(self, *columns: str, key: Callable[[list[Any]], Any] | None = None,
             reverse: bool = False) -> None:
        """Order the rows by these columns' values, or by `key` of each row's cells."""
        at = [self.column_index(c) for c in columns]
        by = key or (lambda cells: tuple(cells[i] for i in at))
        cells = self.cells
        self.keys.sort(key=lambda k: by(cells[k]), reverse=reverse)
        self._where = None

    def _insert_sorted(self, rows: Mapping[str, Sequence[Any]], at: list[int]) -> None:
        """New rows at their bisect positions: only the ~14 rows a bisect probes are read,
        and no other row is re-indexed until an index by key is asked for."""
        keys, cells = self.keys, self.cells

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
