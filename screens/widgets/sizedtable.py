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
rows go in by bisect, the order and offsets are cached until rows are added, removed or
moved, a row's index by key is worked out only when asked (`_RowLocations`), and a row moved
by an insert is drawn from its cached line with only its index and stripe changed
(`SizedTable.render_line`). This mirrors internals of the pinned textual; the snapshot and
pod-table tests cover what it draws.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import zip_longest
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widgets._data_table import DuplicateKey, Row, RowKey

from screens.widgets.datatext import PlainTable
from screens.widgets.tablefill import MAX_COLUMN_WIDTH, cell_width, fill_table

FILL_COLLECT_ROWS = 2_000
LINE_ROWS = 1_000  # rows whose lines are kept (a window is tens); past that all are dropped
MAX_INSERTS = 64  # inserts followed when asked a row's index, before re-indexing instead


def _identity(cell: Any) -> tuple[Any, ...] | None:
    """What a cell's rendering depends on, hashable; None for cells not cached this way."""
    if isinstance(cell, str):
        return ("s", cell)
    if isinstance(cell, Text):
        return ("t", cell.plain, str(cell.style), cell.justify, cell.overflow, cell.no_wrap,
                cell.end, tuple((sp.start, sp.end, str(sp.style)) for sp in cell.spans))
    return None


def _token(key: Any) -> Any:
    """What a row key is looked up by: its string (hashed in C, and cached), as RowKey
    hashes and compares; a key without one is equal only to itself."""
    value = getattr(key, "value", key)
    return key if value is None else value


def _tokens(keys: list[RowKey]) -> list[Any]:
    """`_token` of each key, without a Python call per key when all keys have a string."""
    values = [key.value for key in keys]
    return values if None not in values else [_token(key) for key in keys]


class _RowLocations:
    """DataTable's `_row_locations` (a TwoWayDict row key <-> index): the keys in display
    order, and each key's index when last re-indexed plus the inserts since.

    Why: a row inserted above moves every row below it, and re-indexing them all (RowKey's
    hash is Python code) was a sixth of a create's cost at 10,000 rows - yet drawing goes
    from index to key only. An index by key is asked for a few keys (a changed row's
    refresh, the cursor kept across a fill): its index then is the one it had, moved one on
    by each insert since at or above it. After MAX_INSERTS inserts the map is rebuilt, by
    the keys' strings (~1 ms for 10,000 rows). Only what DataTable calls is here."""

    def __init__(self, keys: list[RowKey]) -> None:
        self.keys = keys
        self._reindex()

    def _reindex(self) -> None:
        keys = self.keys
        self._index: dict[Any, int] = dict(zip(_tokens(keys), range(len(keys)), strict=True))
        self._inserts: list[int] = []  # where rows went in (not at the end) since
        self._since: dict[Any, int] = {}  # a key added since: how many inserts preceded it

    @classmethod
    def of(cls, locations: TwoWayDict[RowKey, int]) -> _RowLocations:
        """What DataTable assigns (on creation, clear, sort and remove_row), in this form."""
        return cls([locations.get_key(i) for i in range(len(locations))])

    def insert(self, index: int, key: RowKey) -> None:
        token = _token(key)
        if index < len(self.keys):  # rows moved (an append moves none)
            self._inserts.append(index)
        self.keys.insert(index, key)
        self._index[token] = index
        if self._inserts:
            self._since[token] = len(self._inserts)

    def __setitem__(self, key: RowKey, index: int) -> None:
        """DataTable.add_row's: a row appended."""
        if index != len(self.keys):
            raise ValueError(f"rows are appended here, not put at {index}")
        self.insert(index, key)

    def get(self, key: RowKey) -> int | None:
        if len(self._inserts) > MAX_INSERTS:
            self._reindex()
        token = _token(key)
        at = self._index.get(token)
        if at is not None:
            for index in self._inserts[self._since.get(token, 0):]:
                if index <= at:
                    at += 1
        return at

    def get_key(self, index: int) -> RowKey | None:
        return self.keys[index] if 0 <= index < len(self.keys) else None

    def contains_value(self, index: int) -> bool:
        return 0 <= index < len(self.keys)

    def __contains__(self, key: object) -> bool:
        return _token(key) in self._index

    def __iter__(self) -> Iterator[RowKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _without_meta(style: Style) -> Style:
    """The style with no meta (a link kept), to add to a row style and then a meta without
    merging two metas (rich decodes and encodes both)."""
    bare = style.clear_meta_and_links()
    return bare.update_link(style.link) if style.link else bare


class _Line:
    """A row's drawn line with no stripe under it and no mouse meta: drawn at any index and
    stripe by restyling its segments (see SizedTable._line)."""

    __slots__ = ("_drawn", "metas", "segments")

    def __init__(self, segments: list[tuple[str, Style | None, int]],
                 metas: list[dict[str, Any]]) -> None:
        self.segments = segments  # text, style but meta, its meta in `metas` (-1: none)
        self.metas = metas  # each cell's ({"row": ..., "column": ...}, in DataTable's order)
        self._drawn: tuple[int, Strip] | None = None  # the last index drawn at

    def at(self, index: int, row_style: Style, width: int) -> Strip:
        drawn = self._drawn
        if drawn is not None and drawn[0] == index:  # the stripe follows from the index
            return drawn[1]
        metas = [Style.from_meta({**meta, "row": index}) for meta in self.metas]
        segments = [Segment(text, row_style + style + metas[meta]) if meta >= 0
                    else Segment(text, style) for text, style, meta in self.segments]
        strip = Strip(Segment.simplify(segments), width)
        self._drawn = (index, strip)
        return strip


class SizedTable(PlainTable):
    """Rows are keyed; columns are (key, label) pairs given to `fill_rows`."""

    # Class defaults: DataTable.__init__ already reads ordered_rows (a cursor watcher).
    _moves = 0  # bumped when this class inserts rows
    _order_cache: tuple[Any, list[Row], list[tuple[RowKey, int]]] | None = None
    _content_cache: LRUCache[tuple[Any, ...], Any] | None = None
    _row_styles: dict[tuple[Any, ...], Style] | None = None
    _lines: dict[RowKey, dict[tuple[Any, ...], _Line]] | None = None
    _lines_update = -1  # the _update_count that _lines were drawn at
    _frame: tuple[Style, int, int, int, int] | None = None  # see _frame_of

    @property  # type: ignore[override]
    def _row_locations(self) -> _RowLocations:
        """DataTable's row order, as `_RowLocations`: DataTable assigns a TwoWayDict here
        (on creation, clear, sort, remove_row) and reads it through this interface."""
        return self._locations

    @_row_locations.setter
    def _row_locations(self, locations: TwoWayDict[RowKey, int] | _RowLocations) -> None:
        self._locations = (locations if isinstance(locations, _RowLocations)
                           else _RowLocations.of(locations))

    def fill_rows(self, columns: Sequence[tuple[str, str]],
                  rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        fill_table(self, columns, rows, add_rows=self.add_keyed_rows)
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

    def _insert_sorted(self, rows: Mapping[str, Sequence[Any]], sort_by: tuple[str, ...],
                       sort_key: Callable[[Sequence[Any]], tuple[Any, ...]]) -> None:
        """New rows at their bisect positions, the row order, locations and line offsets
        updated in place. DataTable.sort called a Python key function for every row and
        rebuilt all three; here only the ~14 rows a bisect probes are read."""
        _, ordered, offsets = self._order()
        one_line = len(offsets) == len(ordered)  # then offsets[i] is row i's only line
        locations, data, columns = self._row_locations, self._data, self.ordered_columns

        def value(row: Row) -> tuple[Any, ...]:
            cells = data[row.key]
            return tuple(cells[c] for c in sort_by)

        for key, cells in rows.items():
            row_key = RowKey(key)
            if row_key in locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            i = bisect_right(ordered, sort_key(cells), key=value)
            row = self.rows[row_key] = Row(row_key, 1, None, False)
            ordered.insert(i, row)
            locations.insert(i, row_key)
            if one_line:
                offsets.insert(i, (row_key, 0))
            data[row_key] = {c.key: cell for c, cell in zip_longest(columns, cells)}
            self._new_rows.add(row_key)
        self._moves += 1
        if one_line:
            self._order_cache = (self._shape(), ordered, offsets)
        self._forget(set())
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self.check_idle()
        self.refresh()

    def _shape(self) -> tuple[Any, ...]:
        """Changes whenever rows are added, removed or moved (DataTable replaces its row
        locations when it removes or sorts, and this class when it inserts)."""
        return (self._row_locations, len(self.rows), self._moves)

    def _forget(self, rows: set[RowKey]) -> None:
        """After rows were added or changed: DataTable's cached renderings go (it keys them
        by row index or draws the index into them, and a row added above moves every row
        below), and so do these rows' lines, whose content changed. The lines of rows that
        only moved stay: they hold neither index nor stripe (see `_line`)."""
        for cache in (self._row_render_cache, self._cell_render_cache,
                      self._row_renderable_cache, self._line_cache):
            cache.clear()  # not _clear_caches: it would redraw every line, not these rows'
        if self._lines:
            for key in rows:
                self._lines.pop(key, None)

    def _clear_caches(self) -> None:
        """DataTable calls this when any line may look different (the cursor shown or not,
        stripes, padding, the header, a column, the rows cleared)."""
        super()._clear_caches()
        self._lines = None
        self._row_styles = None

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
        """The CSS changed (a theme): the one input these caches do not key on."""
        super().notify_style_update()
        self._content_cache = None
        self._row_styles = None
        self._lines = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self._frame_of()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_of(self) -> tuple[Style, int, int, int, int] | None:
        """What a frame's lines share (the widget's style, width, scroll offset, header
        height), worked out once per frame - DataTable.render_line worked out the style
        (over every ancestor's styles) and the size for each line. None when the lines are
        DataTable's to draw: `_line` covers what this class's users show - one-line rows, a
        row cursor, no fixed rows or columns, no row labels."""
        if not (self.cursor_type == "row" and not self.fixed_rows and not self.fixed_columns
                and not (self._labelled_row_exists and self.show_row_labels)
                and len(self._y_offsets) == len(self.rows)):
            return None
        scroll_x, scroll_y = self.scroll_offset
        return (self.rich_style, self.size.width, scroll_x, scroll_y,
                self.header_height if self.show_header else 0)

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._frame_of()
        if frame is None:
            return super().render_line(y)
        base_style, width, scroll_x, scroll_y, header = frame
        if y < header:
            return self._line(-1, self._header_row_key, y, scroll_x, width, base_style)
        index = y + scroll_y - header
        keys = self._row_locations.keys
        if index >= len(keys):
            return Strip.blank(width, base_style)
        return self._line(index, keys[index], 0, scroll_x, width, base_style)

    def _line(self, index: int, key: RowKey, line_no: int, x: int, width: int,
              base_style: Style) -> Strip:
        """Row `index`'s line, kept per row with no stripe under it and its mouse meta (which
        holds the index) apart, so a row moved by an insert above is drawn by restyling its
        ~10 segments for its new index and stripe, not rendered through rich again. Why: a
        pod created above the window moved every visible row, and re-rendering them was most
        of a create's cost at 10,000 rows. Kept until the row changes (`_forget`) or every
        line may look different (`_clear_caches`, a new update count)."""
        if self._lines is None or self._lines_update != self._update_count:
            self._lines, self._lines_update = {}, self._update_count
        cursor = self.cursor_coordinate.row == index
        hover = self.hover_coordinate.row == index
        state = (line_no, cursor, hover, x, width, base_style, self.show_cursor,
                 self._show_hover_cursor, self._pseudo_class_state)
        lines = self._lines.get(key)
        if lines is None:
            if len(self._lines) >= LINE_ROWS:
                self._lines.clear()
            lines = self._lines[key] = {}
        line = lines.get(state)
        if line is None:
            line = lines[state] = self._unstriped(index, line_no, cursor, hover, x, width,
                                                  base_style)
        return line.at(index, self._get_row_style(index, base_style), width)

    def _unstriped(self, index: int, line_no: int, cursor: bool, hover: bool, x: int,
                   width: int, base_style: Style) -> _Line:
        """The line as DataTable._render_line_in_row and _render_line draw it (a row cursor,
        no fixed or label columns), but with no row style under it and the meta apart: each
        segment's style is then row style + style + meta, as rich's style addition is
        associative. Equal neighbours are joined now, as the final strip's `simplify`
        would join them."""
        nothing = Style.null()
        columns = self.ordered_columns
        line: list[Segment] = []
        for i, column in enumerate(columns):
            line += self._render_cell(index, i, nothing, column.get_render_width(self),
                                      cursor, hover)[line_no]
        extend, _ = self._get_styles_to_render_cell(
            index == -1, False, False, hover, cursor, self.show_cursor,
            self._show_hover_cursor, False, False)
        rest = width - sum(column.get_render_width(self) for column in columns)
        line.append(Segment(" " * max(0, rest), extend + Style.from_meta(
            {"row": index, "column": 0, "out_of_bounds": True})))
        strip = Strip(line_crop(line, x, x + width, width)).adjust_cell_length(width,
                                                                               base_style)
        metas: list[dict[str, Any]] = []
        segments: list[tuple[str, Style | None, int]] = []
        for text, style, _ in Segment.simplify(strip):
            meta = style.meta if style is not None else {}
            if not meta:  # the padding to the widget's width
                segments.append((text, style, -1))
                continue
            if not metas or metas[-1] != meta:
                metas.append(meta)
            segments.append((text, _without_meta(style), len(metas) - 1))
        return _Line(segments, metas)

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
            rows = self.rows
            ordered = [rows[key] for key in self._row_locations.keys]
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
