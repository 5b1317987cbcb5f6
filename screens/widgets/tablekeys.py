"""The k9s habits of every KeyedTable: `/` filter, a column sort, and `d` describe, `y` YAML,
`l` logs on the row under the cursor.

A mixin of KeyedTable (screens/widgets/keyedtable.py), beside the cursor's
(tablecursor.py), so each concern stays readable; the keys are bound in
KeyedTable.BINDINGS. What the rows are is the model's (tablemodel.py: the filter and the sort
are pure and unit-tested there); here are the keys, the filter line and when a key is
offered at all. The filter is typed into a line the table draws above its header
("/gpu-node-2▏  12 of 4,000"), not into an Input beside it: every screen lays its tables out
its own way, and a line of the table's own never needs room found for it. `check_action`
hides a key where it does nothing (`l` on a row that is not a pod, `d` on a table whose rows
are no cluster objects) and lets the key fall through to the screen, so the Nodes screen
keeps its own `d` and `l`.

The row keys do not read the cluster: they post `KeyedTable.Inspect` with the object the row
stands for, which the screen acts on (screens/objectview.py opens describe and YAML through
the app's Inspector; a pod table turns `l` into the pod's log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.message import Message
from textual.strip import Strip

from screens.widgets.tablemodel import TableModel

if TYPE_CHECKING:
    from textual.scroll_view import ScrollView

    from screens.widgets.keyedtable import KeyedTable

    _Base = ScrollView
else:
    _Base = object


class RowObject(NamedTuple):
    """The cluster object a row stands for."""

    kind: str  # "pod" | "node"
    namespace: str
    name: str


class Inspect(Message, namespace="keyed_table"):
    """`d`, `y` or `l` on a row: the screen shows the object's description, YAML or log."""

    def __init__(self, table: KeyedTable, action: str, target: RowObject) -> None:
        super().__init__()
        self.table = table
        self.action = action  # describe | yaml | logs
        self.target = target

    @property
    def control(self) -> KeyedTable:
        return self.table


class TableKeys(_Base):
    """The filter, sort and object keys of a KeyedTable (see the module docstring)."""

    _model: TableModel
    _cursor: Coordinate
    Inspect = Inspect
    # The object each row stands for, given by the screen; None: the rows are no objects.
    objects: Callable[[str], RowObject | None] | None = None
    _editing = False  # the filter line takes the keys

    @property
    def filter_text(self) -> str:
        return self._model.filter_text

    @property
    def filtering(self) -> bool:
        """Whether the filter line is shown (being typed, or a filter in force)."""
        return self._editing or bool(self._model.filter_text)

    @property
    def total_rows(self) -> int:
        return self._model.total

    @property
    def sort_column(self) -> str | None:
        return self._model.sort_column

    @property
    def sort_reverse(self) -> bool:
        return self._model.sort_reverse

    def row_summary(self, key: str, skip: int = 0) -> Text:
        """A row whole on one wrapping line, every cell named by its column ("gpu-node-1 ·
        GPUs: yes · ..."): what a narrow terminal cuts at the table's right edge. The first
        `skip` columns are left out; the next is the row's name, in bold."""
        columns = self.ordered_columns[skip:]  # type: ignore[attr-defined]
        cells = self.get_row(key)[skip:]  # type: ignore[attr-defined]
        text = Text()
        for i, (column, cell) in enumerate(zip(columns, cells, strict=True)):
            shown = cell if isinstance(cell, Text) else Text(str(cell))
            if i == 0:
                text.append(shown.plain or key, style="bold")
                continue
            text.append(f" · {column.label.plain}: ", style="dim")
            text.append_text(shown if shown.plain else Text("-", style="dim"))
        return text

    def row_object(self) -> RowObject | None:
        key = self.cursor_key  # type: ignore[attr-defined]
        return None if key is None or self.objects is None else self.objects(key)

    def filter_line(self, width: int, style: Style) -> Strip:
        """The line above the header: the filter and how many rows it leaves."""
        count = f"{len(self._model.keys):,} of {self._model.total:,} "
        text = Text(" /", style=style + Style(bold=True))
        text.append(self._model.filter_text, style=style)
        if self._editing:
            text.append("▏", style=style + Style(blink=True))
        text.append(" " * max(1, width - text.cell_len - len(count)), style=style)
        text.append(count, style=style + Style(dim=True))
        return Strip(text.render(self.app.console), text.cell_len).crop_extend(0, width, style)

    # ---- the keys ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return self.filtering
        if action in ("filter", "sort", "reverse_sort"):
            return bool(self._model.columns)
        if action == "inspect":
            target = self.row_object()
            if target is None:
                return False
            return parameters[:1] != ("logs",) or target.kind == "pod"
        return True

    def action_filter(self) -> None:
        self._editing = True
        self._filter_shown()

    def action_clear_filter(self) -> None:
        self._editing = False
        self.set_filter("")
        self._filter_shown()

    async def _on_key(self, event: events.Key) -> None:
        """While the filter is typed, keys edit it (no binding sees them): Enter keeps it,
        Esc clears it."""
        if not self._editing:
            return
        event.stop()
        event.prevent_default()
        text = self._model.filter_text
        if event.key == "enter":
            self._editing = False
            self._filter_shown()
        elif event.key == "escape":
            self.action_clear_filter()
        elif event.key == "backspace":
            self.set_filter(text[:-1])
        elif event.key == "ctrl+u":
            self.set_filter("")
        elif event.is_printable and event.character:
            self.set_filter(text + event.character)

    def _filter_shown(self) -> None:
        self._resized()  # type: ignore[attr-defined]  # the header grew or shrank
        self.refresh()  # type: ignore[attr-defined]
        self.refresh_bindings()  # type: ignore[attr-defined]

    def action_sort(self, step: int) -> None:
        """`>` sorts by the next column (the first when none), `<` by the one before."""
        columns = list(self._model.columns)
        if not columns:
            return
        now = self._model.sort_column
        if now in columns:
            at = (columns.index(now) + step) % len(columns)
        else:
            at = 0 if step > 0 else len(columns) - 1
        self.sort_by(columns[at], self._model.sort_reverse)

    def action_reverse_sort(self) -> None:
        columns = list(self._model.columns)
        if columns:
            self.sort_by(self._model.sort_column or columns[0], not self._model.sort_reverse)

    def action_inspect(self, action: str) -> None:
        target = self.row_object()
        if target is not None:
            self.post_message(Inspect(self, action, target))  # type: ignore[arg-type]

    # ---- what the keys change (KeyedTable redraws) ---------------------------------------

    def set_filter(self, text: str) -> None:
        keep = self.cursor_key  # type: ignore[attr-defined]
        self._model.set_filter(text)
        self._reordered(keep)  # type: ignore[attr-defined]

    def sort_by(self, column: str, reverse: bool = False) -> None:
        keep = self.cursor_key  # type: ignore[attr-defined]
        self._model.set_sort(column, reverse)
        self._reordered(keep)  # type: ignore[attr-defined]

    def counted(self) -> None:
        """The rows shown changed: the filter line counts them again."""
        if self.filtering:
            self.refresh_line(0)  # type: ignore[attr-defined]
