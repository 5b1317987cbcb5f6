"""`d` describe and `y` YAML of a table row's pod or node: a scrollable modal, read through
the app's Inspector (a live cluster's API server, or a sentence saying there is none).

Every screen gets the keys' message (`KeyedTable.Inspect`) through WizardScreen, so each
table whose rows are cluster objects has them without a handler of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen

from screens.widgets.datatext import DataStatic
from screens.widgets.podtable import PodTable

if TYPE_CHECKING:
    from screens.base import WizardScreen
    from screens.widgets.tablekeys import Inspect


class ObjectModal(ModalScreen[None]):
    """An object's text (read when shown), scrollable both ways."""

    DEFAULT_CSS = """
    ObjectModal #dialog.object-view { width: 120; height: 90%; max-height: 90%; }
    ObjectModal #object-text { height: 1fr; margin: 1 0 0 0; }
    ObjectModal #object-text > DataStatic { width: auto; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, title: str, read: Callable[[], Awaitable[str]]) -> None:
        super().__init__()
        self.title_text = title
        self.read = read
        self.text: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="object-view"):
            yield DataStatic(Text(self.title_text, style="bold"))
            with VerticalScroll(id="object-text"):
                yield DataStatic(Text("reading…", style="dim"), id="object-body")
            yield DataStatic("Esc closes · arrows and PgUp/PgDn scroll", classes="muted")

    def on_mount(self) -> None:
        self.query_one("#object-text").focus()
        self.run_worker(self._load(), exclusive=True)

    async def _load(self) -> None:
        self.text = await self.read()
        self.query_one("#object-body", DataStatic).update(self.text)

    def action_close(self) -> None:
        self.dismiss(None)


def inspect_row(screen: WizardScreen, event: Inspect) -> None:
    """Act on `d`, `y` or `l` on a row (a pod table turns `l` into its pod's log itself)."""
    event.stop()
    target = event.target
    where = f"{target.namespace}/{target.name}" if target.namespace else target.name
    inspector = screen.wizard.inspector()
    if event.action == "logs":
        screen.post_message(PodTable.PodChosen(target.namespace, target.name, ()))
    elif event.action == "describe":
        screen.app.push_screen(ObjectModal(
            f"describe {target.kind} {where}",
            lambda: inspector.describe(target.kind, target.namespace, target.name)))
    elif event.action == "yaml":
        screen.app.push_screen(ObjectModal(
            f"{target.kind} {where} (YAML)",
            lambda: inspector.yaml(target.kind, target.namespace, target.name)))
