"""Outside text in the TUI: always data, never markup or terminal codes.

Why: pod logs, event messages, label values and host strings reach statics, table cells and
notifications. A str given to a Static, a table cell or `notify` is read as markup
(`[bold red]`, `[link=...]` would style or link it), and neither Rich nor Textual removes
ESC, so an escape sequence in a log reached the terminal and acted on it. Here every such
widget takes its text through `installer.textsafe.display` (controls shown escaped) and
shows it as a Text, so the screens need not clean each value they show.

Rich itself deletes BEL, backspace, VT, FF and CR from a str appended to a Text, before
`data_text` sees it; the panes that quote a host or the cluster verbatim (check evidence,
finding evidence, fix previews, the plan) pass such text through `display` first, so those
show escaped too.
"""

from __future__ import annotations

from typing import Any

from rich.protocol import is_renderable
from rich.text import Span, Text
from textual.widgets import Static

from installer.textsafe import TAB_SIZE, display, escapes

_EMPTY = Text("", end="")


def data_text(content: str | Text, *, multiline: bool = True) -> Text:
    """`content` as a Text that shows it as data: a str is never markup, and controls in
    either are escaped (`installer.textsafe`) with a Text's styles kept where they were."""
    if isinstance(content, str):
        return Text(display(content, multiline=multiline))
    plain = content.plain
    if plain.isprintable():  # the common case, in C
        return content
    found = escapes(plain, multiline=multiline)
    if not found:
        return content
    # divide() gives the gaps and the matches alternately: gap, match, gap, ..., gap.
    pieces = content.divide(offset for start, end, _ in found for offset in (start, end))
    shown = content.blank_copy()
    for i, piece in enumerate(pieces):
        if i % 2:
            replacement = found[i // 2][2]
            piece = Text(replacement, spans=[Span(0, len(replacement), span.style)
                                             for span in piece.spans])
        shown.append_text(piece)
    if "\t" in shown.plain:
        shown.expand_tabs(TAB_SIZE)
    return shown


def cell_text(cell: Any, wrap: bool = False) -> Any:
    """A table cell as it is drawn: DataTable's default formatting (a float with two
    decimals, None blank), but a str is data, not markup, and controls are escaped (one
    line: a newline shows as `\\n`)."""
    if cell is None:
        return _EMPTY
    if isinstance(cell, Text):
        return data_text(cell, multiline=False) or _EMPTY  # an empty Text: no style drawn
    if isinstance(cell, str) or not is_renderable(cell):
        text = f"{cell:.2f}" if isinstance(cell, float) else str(cell)
        return Text(display(text), no_wrap=not wrap, end="") if text else _EMPTY
    return cell


class DataStatic(Static):
    """A Static for text that may hold outside data (see the module docstring)."""

    def __init__(self, content: Any = "", **kwargs: Any) -> None:
        super().__init__(_shown(content), markup=False, **kwargs)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        super().update(_shown(content), layout=layout)


def _shown(content: Any) -> Any:
    return data_text(content) if isinstance(content, str | Text) else content
