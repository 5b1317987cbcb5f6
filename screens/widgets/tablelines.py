"""How a KeyedTable's lines are drawn and what of them is kept between frames.

Apart from the widget (screens/widgets/keyedtable.py) because drawing is its own cost centre:
at 10,000 rows an insert moves every row below it, and re-rendering those through rich is
the expense DataTable pays. Here a drawn line is kept per row until the row, its index or
the frame's look changes, and a cell's rendering is kept by its content, width and style
(columns like namespace, phase and ready repeat from row to row), so rows moved by an insert
above are re-joined from cached cells, not rendered through rich again.

What it draws is what DataTable draws for the same rows (text, styles and each cell's mouse
meta `{"row", "column"}`, which the cursor's mouse handlers read): tests/screens/
test_podtable.py compares the two line by line. Cells are data, never markup
(`datatext.cell_text`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.color import Color
from textual.coordinate import Coordinate
from textual.renderables.styled import Styled
from textual.strip import Strip

from screens.widgets.datatext import cell_text
from screens.widgets.tablemodel import CELL_PADDING, TableModel

CELL_CACHE = 4096  # cell renderings kept by content (a window shows a few hundred cells)
LINE_ROWS = 1_000  # rows whose drawn line is kept (a window is tens); past that all go

# The component classes whose styles a frame reads, in the order of `Frame.styles`.
STYLE_NAMES = ("keyed-table--header", "keyed-table--cursor", "keyed-table--hover",
               "keyed-table--header-cursor", "keyed-table--header-hover",
               "keyed-table--even-row", "keyed-table--odd-row")


@dataclass(frozen=True)
class Frame:
    """What every line of one frame shares, worked out once per frame: the widget's style
    (over every ancestor's) and the component styles cost a walk each. A kept line is
    reused only while its frame compares equal (the console is how to draw, not what)."""

    base: Style
    width: int
    scroll_x: int
    scroll_y: int
    header: int  # the header's height (0: no header)
    show_hover: bool
    styles: tuple[Style, ...]  # as STYLE_NAMES: header, cursor, hover, header-cursor, ...
    background: Color
    by_row: bool  # a row cursor (else a cell cursor)
    zebra: bool
    console: Console = field(compare=False)
    options: ConsoleOptions = field(compare=False)


def _identity(cell: Any) -> tuple[Any, ...] | None:
    """What a cell's rendering depends on, hashable; None for cells not cached this way."""
    if isinstance(cell, str):
        return ("s", cell)
    if isinstance(cell, Text):
        return ("t", cell.plain, str(cell.style), cell.justify, cell.overflow, cell.no_wrap,
                cell.end, tuple((sp.start, sp.end, str(sp.style)) for sp in cell.spans))
    return None


class TableLines:
    """The lines of one table's model, drawn and kept."""

    def __init__(self, model: TableModel) -> None:
        self.model = model
        self._lines: dict[str, tuple[tuple[Any, ...], Strip]] = {}
        self._cell_cache: LRUCache[tuple[Any, ...], list[Segment]] = LRUCache(CELL_CACHE)
        self._styles_for: dict[tuple[Any, ...], tuple[Style, Style]] = {}

    def forget(self, key: str | None = None) -> None:
        """Drop the kept line of this row (of every row: None)."""
        if key is None:
            self._lines.clear()
        else:
            self._lines.pop(key, None)

    def restyled(self) -> None:
        """The CSS changed (focus, a theme): every line and cell style may differ."""
        self._lines.clear()
        self._styles_for.clear()

    def line(self, frame: Frame, index: int, key: str | None, cursor: Coordinate,
             hover: Coordinate) -> Strip:
        """Row `index`'s line (-1 and no key: the header), kept per row until the row, its
        index, the cursor or hover on it, or the frame's look changes."""
        on_cursor = cursor if cursor.row == index else None
        on_hover = hover if hover.row == index and frame.show_hover else None
        if key is None:  # the header: one line, drawn each frame
            return self._draw(frame, index, key, on_cursor, on_hover)
        state = (index, on_cursor, on_hover, frame)
        kept = self._lines.get(key)
        if kept is not None and kept[0] == state:
            return kept[1]
        strip = self._draw(frame, index, key, on_cursor, on_hover)
        if len(self._lines) >= LINE_ROWS:
            self._lines.clear()
        self._lines[key] = (state, strip)
        return strip

    def _cell_styles(self, frame: Frame, header: bool, hover: bool, cursor: bool
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

    @staticmethod
    def _row_style(frame: Frame, index: int) -> Style:
        header, _, _, _, _, even, odd = frame.styles
        if index == -1:
            return header
        if frame.zebra:
            return odd if index % 2 else even
        return frame.base

    def _draw(self, frame: Frame, index: int, key: str | None, cursor: Coordinate | None,
              hover: Coordinate | None) -> Strip:
        header = index == -1
        row_style = self._row_style(frame, index)
        columns = list(self.model.columns.values())
        cells = [self.model.label_of(c) for c in columns] if key is None \
            else self.model.cells[key]
        by_row = frame.by_row
        segments: list[Segment] = []
        for i, (column, cell) in enumerate(zip(columns, cells, strict=False)):
            on_cursor = cursor is not None and (by_row or cursor.column == i)
            on_hover = hover is not None and (by_row or hover.column == i)
            component, post = self._cell_styles(frame, header, on_hover, on_cursor)
            meta = Style.from_meta({"row": index, "column": i})
            for seg in self._render_cell(frame, cell, column.render_width,
                                         row_style + component, post, header):
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

    def _render_cell(self, frame: Frame, cell: Any, width: int, style: Style, post: Style,
                     header: bool) -> list[Segment]:
        """One cell's segments, padded to its column: rich renders it as DataTable has it
        rendered, and the result is kept by content, width and styles."""
        identity = _identity(cell)
        key = (identity, width, style, post) if identity is not None else None
        if key is not None:
            found = self._cell_cache.get(key)
            if found is not None:
                return found
        shown = cell if header else cell_text(cell)
        options = frame.options.update_dimensions(width, 1).update(no_wrap=True)
        lines = frame.console.render_lines(
            Styled(Padding(shown, (0, CELL_PADDING)), pre_style=style, post_style=post),
            options)
        segments = lines[0] if lines else []
        if key is not None:
            self._cell_cache.set(key, segments)
        return segments
