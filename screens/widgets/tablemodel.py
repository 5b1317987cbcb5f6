"""What a KeyedTable holds, apart from how it is drawn: its columns, its rows keyed by a str,
their display order, and the ways they change (fill, in-place update, sorted insert, add,
sort), and the operator's `/` filter and column sort over them.

A module of its own, without Textual, so the rules that keep a 10,000-row table cheap are
stated and tested in one place (tests/unit/test_tablemodel.py), apart from the cursor and the
drawing (screens/widgets/keyedtable.py, tablecursor.py, tablelines.py):

- rows are lists of cells in display order (`keys`); a row's index by key is worked out when
  asked, once per change of the order;
- columns are sized from their widest cell up front (`fill`), capped at MAX_COLUMN_WIDTH, so
  what is shown depends on the state alone, never on timing;
- `update` writes changed cells in place, puts new rows at their sorted place by bisect and
  grows a column whose cell outgrew it: its cost is what changed, not what the table holds;
- the filter narrows `keys` out of `order` (every row, sorted) in one pass over the rows,
  matching each row's cells joined and lowercased once (kept until the row changes); an
  update keeps it: a row edited out of the filter leaves, a new or edited row matching it
  comes in at its place;
- the operator's sort (`set_sort`) orders by one column as a person reads it (numbers,
  ready counts and kubectl's ages by value, text without case) and stays in force: new rows
  go to their place by bisect, an edited row whose sort cell changed moves.

The widget redraws from what these methods report (`Update`); the model never asks for a
redraw itself.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from screens.widgets.tablefill import MAX_COLUMN_WIDTH, cell_width

CELL_PADDING = 1  # blank cells each side of a column, as DataTable's default
SORT_MARKS = (" ▲", " ▼")  # after the sorted column's label: ascending, descending

_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_COUNT = re.compile(r"(\d+)/(\d+)")
_AGE = re.compile(r"(?:\d+[smhdy])+")
_AGE_PART = re.compile(r"(\d+)([smhdy])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


def plain(cell: Any) -> str:
    """A cell's text as the operator reads it (what the filter matches)."""
    if cell is None:
        return ""
    return cell.plain if isinstance(cell, Text) else str(cell)


def sort_value(cell: Any) -> tuple[Any, ...]:
    """How a cell compares in a column sort: numbers, `1/2` ready counts and kubectl's ages
    (`3m20s`, `5d`) by value, before text, which compares without case; blanks last."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return (0, float(cell))
    text = plain(cell).strip()
    if not text:
        return (2, "")
    if _NUMBER.fullmatch(text):
        return (0, float(text))
    if m := _COUNT.fullmatch(text):
        return (0, float(m[1]), float(m[2]))
    if _AGE.fullmatch(text):
        return (0, float(sum(int(n) * _SECONDS[u] for n, u in _AGE_PART.findall(text))))
    return (1, text.lower())


def _bisect(keys: list[str], value: Any, of: Callable[[str], Any], reverse: bool) -> int:
    """Where a row of this sort value goes among `keys` sorted by `of` (after its equals)."""
    if not reverse:
        return bisect_right(keys, value, key=of)
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if of(keys[mid]) < value:
            hi = mid
        else:
            lo = mid + 1
    return lo


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
        self.order: list[str] = []  # every row, in order
        self.keys: list[str] = self.order  # the rows shown: `order` filtered (or itself)
        self.cells: dict[str, list[Any]] = {}
        self._where: dict[str, int] | None = None  # index by key, until the order changes
        self.filter_text = ""
        self._needle = ""
        self._haystack: dict[str, str] = {}  # a row's cells joined, lowercased
        self.sort_column: str | None = None  # the operator's sort (None: the screen's order)
        self.sort_reverse = False

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

    @property
    def total(self) -> int:
        """Every row, shown or filtered out."""
        return len(self.order)

    def label_of(self, column: Column) -> Text:
        """The column's header: its label, marked ▲/▼ when the rows are sorted by it."""
        if column.key != self.sort_column:
            return column.label
        return column.label + SORT_MARKS[self.sort_reverse]

    def matches(self, key: str) -> bool:
        """Whether the row passes the filter (any cell contains its text, without case)."""
        if not self._needle:
            return True
        hay = self._haystack.get(key)
        if hay is None:
            hay = self._haystack[key] = "\0".join(map(plain, self.cells[key])).lower()
        return self._needle in hay

    # ---- the operator's filter and sort --------------------------------------------------

    def set_filter(self, text: str) -> None:
        """Show only the rows matching `text` ("" shows every row): one pass over the rows,
        and no pass at all over the rows' cells but for rows not matched before."""
        self.filter_text = text
        self._needle = text.lower()
        self._refilter()

    def _refilter(self) -> None:
        self.keys = [k for k in self.order if self.matches(k)] if self._needle else self.order
        self._where = None

    def set_sort(self, column: str, reverse: bool = False) -> bool:
        """Sort by this column from now on (kept through fills and updates). True when the
        column grew to fit its ▲/▼ mark."""
        self.sort_column, self.sort_reverse = column, reverse
        self._resort()
        col = self.columns[column]
        need = self.label_of(col).cell_len
        if col.width < need:
            col.width = need
            return True
        return False

    def _sort_key(self) -> Callable[[str], tuple[Any, ...]]:
        at, cells = self.column_index(self.sort_column or ""), self.cells
        return lambda key: sort_value(cells[key][at])

    def _resort(self) -> None:
        if self.sort_column is None or self.sort_column not in self.columns:
            return
        self.order.sort(key=self._sort_key(), reverse=self.sort_reverse)
        self._refilter()

    # ---- changing ------------------------------------------------------------------------

    def clear(self, columns: bool = False) -> None:
        """No rows (and no columns)."""
        self._empty()
        if columns:
            self.columns = {}

    def _empty(self) -> None:
        self.order, self.cells, self._where, self._haystack = [], {}, None, {}
        self.keys = [] if self._needle else self.order

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
        self._empty()
        self.add(rows)
        if self.sort_column in self.columns:
            self.set_sort(self.sort_column, self.sort_reverse)

    def update(self, columns: Sequence[tuple[str, str]], changed: Mapping[str, Sequence[Any]],
               sort_by: Sequence[str] = ()) -> Update | None:
        """Put these rows' cells in place; unchanged cells are left alone, so passing every
        row is fine. New keys go where the `sort_by` columns' values put them among rows
        already in that order, else to the end (a row keeps its place when edited: sort by
        columns its key determines). A column grows to fit a wider cell, up to the last
        fill's cap. None, and nothing changed, when the table must be refilled instead: it
        is empty or its columns differ."""
        if not self.order or list(self.columns) != [key for key, _ in columns]:
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
        sorting = self.sort_column in self.columns
        at = self.column_index(self.sort_column or "") if sorting else -1
        regroup = False  # a row left or joined the filter, or its sort cell changed
        for key, cells in changed.items():
            row = self.cells.get(key)
            if row is None:
                new[key] = cells
            elif not all(map(same_cell, row, cells)):
                shown = self.matches(key)
                moved = sorting and not same_cell(row[at], cells[at])
                row[:] = cells
                self._haystack.pop(key, None)
                regroup = regroup or moved or shown != self.matches(key)
                done.edited.append(key)
        if regroup:
            if sorting:
                self._resort()
            else:
                self._refilter()
            done.added = True
        if new:
            if sorting:
                self._insert_sorted(new, self._sort_key(), self.sort_reverse)
            elif sort_by:
                at_ = [self.column_index(c) for c in sort_by]
                self._insert_sorted(new, lambda k: tuple(self.cells[k][i] for i in at_))
            else:
                self.add(new.items())
            done.added = True
        return done

    def add(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Rows at the end, in this order; a short row is padded with None (blank cells)."""
        count = len(self.columns)
        order, keys, cells = self.order, self.keys, self.cells
        for key, row in rows:
            if key in cells:
                raise ValueError(f"the row key {key!r} is already in the table")
            values = list(row)
            if len(values) < count:
                values += [None] * (count - len(values))
            cells[key] = values
            order.append(key)
            if keys is not order:
                if not self.matches(key):
                    continue
                keys.append(key)
            if self._where is not None:
                self._where[key] = len(keys) - 1

    def sort(self, *columns: str, key: Callable[[list[Any]], Any] | None = None,
             reverse: bool = False) -> None:
        """Order the rows by these columns' values, or by `key` of each row's cells (the
        screen's order: the operator's sort is dropped)."""
        at = [self.column_index(c) for c in columns]
        by = key or (lambda cells: tuple(cells[i] for i in at))
        cells = self.cells
        self.sort_column = None
        self.order.sort(key=lambda k: by(cells[k]), reverse=reverse)
        self._refilter()

    def _insert_sorted(self, rows: Mapping[str, Sequence[Any]], of: Callable[[str], Any],
                       reverse: bool = False) -> None:
        """New rows at their bisect positions (in the filtered rows too, when they match):
        only the ~14 rows a bisect probes are read, and no other row is re-indexed until an
        index by key is asked for."""
        order, keys, cells = self.order, self.keys, self.cells
        for key, row in rows.items():
            if key in cells:
                raise ValueError(f"the row key {key!r} is already in the table")
            cells[key] = list(row)
            value = of(key)
            order.insert(_bisect(order, value, of, reverse), key)
            if keys is not order and self.matches(key):
                keys.insert(_bisect(keys, value, of, reverse), key)
        self._where = None
