"""What every wizard screen shares: the step bar, the footer key map, form plumbing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, Select, Static

from installer.engine.events import Event
from installer.errors import UserError
from screens.state import WIZARD_STEPS

if TYPE_CHECKING:
    from screens.app import InstallerApp


class StepBar(Static):
    """Where you are in the wizard, and - on every screen - how a running install is doing."""

    DEFAULT_CSS = "StepBar { height: 1; background: $panel; }"

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def render(self) -> Text:
        app: InstallerApp = self.app  # type: ignore[assignment]
        text = Text(no_wrap=True, overflow="ellipsis")
        names = [k for k, _ in WIZARD_STEPS]
        here = names.index(self.current) if self.current in names else -1
        compact = bool(self.size.width) and self.size.width < 100
        self._spans: list[tuple[int, int, str]] = []
        for i, (key, label) in enumerate(WIZARD_STEPS):
            style = "reverse bold" if key == self.current else ("" if i < here else "dim")
            shown = f" {label} " if not compact or key == self.current else f"{label} "
            self._spans.append((len(text), len(text) + len(shown), key))
            text.append(shown, style=style)
        run = getattr(app, "run_state", None)
        if run is not None and run.status != "idle":
            done = sum(1 for r in run.steps.values() if r.status not in ("pending", "running"))
            kind = "dry-run" if run.dry_run else "install"
            mark, colour = {"running": ("●", "yellow"), "ok": ("✓", "green"),
                            "dry-run": ("✓", "green"), "failed": ("✗", "red"),
                            "cancelled": ("!", "red")}.get(run.status, ("?", ""))
            status = f"{mark}{done}/{len(run.steps)}" if compact else \
                f" {mark} {kind} {done}/{len(run.steps)}"
            text.append(status, style=f"bold {colour}")
        return text

    def on_click(self, event) -> None:
        """The mouse works too: click a step's name to go there."""
        for start, end, key in getattr(self, "_spans", []):
            if start <= event.x < end:
                self.app.navigate(key)  # type: ignore[attr-defined]
                return


class KeysFooter(Footer):
    """Textual's Footer, recomposed only when the keys it would show change.

    Why: a screen's bindings are published again for each focus change and resume, and
    Footer rebuilt its keys each time - three times when a screen is first shown, twice
    showing the same keys, each a mount, a restyle and a frame of their own on the way to
    the Nodes screen (bench/nodes_render.py)."""

    _composed: tuple[Any, ...] | None = None

    def _shown(self) -> tuple[Any, ...]:
        """What compose() reads, as it reads it."""
        keys = tuple((b.key, self.app.get_key_display(b), b.description, b.action, b.group,
                      enabled, tooltip)
                     for _, b, enabled, tooltip in self.screen.active_bindings.values() if b.show)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        return (self._bindings_ready, self.show_command_palette, keys,
                palette and (palette[1].key, palette[2], palette[3]))

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        shown = self._shown()
        if shown == self._composed:
            return
        self._composed = shown
        await super().recompose()


class WizardScreen(Screen):
    """A wizard step. Subclasses give STEP, TITLE, HELP and `body()`."""

    STEP = ""
    TITLE = ""
    HELP = ""

    BINDINGS = [Binding("escape", "app.back", "Back", show=False)]

    @property
    def wizard(self) -> InstallerApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP)
        yield Static(Text(self.TITLE, style="bold"), classes="screen-title")
        yield from self.body()
        yield KeysFooter(compact=True, show_command_palette=False)

    def body(self) -> Iterable[Widget]:
        return ()

    # --- hooks the app calls --------------------------------------------------------
    def refresh_from_state(self) -> None:
        """Show the current answers/facts/run; called on resume and when answers change."""

    def on_run_event(self, event: Event) -> None:
        """A low-rate engine event, already folded into app.run_state."""

    def on_pods(self, pods: list[Any]) -> None:
        """Pod statuses changed: PodStatus events (collapsed) or podread.PodReading reads."""

    def on_lines(self, batches: dict[tuple[str, str], list[str]]) -> None:
        """Log or tool-output lines arrived (batched), already in app.run_state."""

    def can_leave(self) -> str | None:
        """A reason not to leave this screen (unfixed input), or None."""
        return None

    def on_keyed_table_inspect(self, event: Any) -> None:
        """`d`, `y` or `l` on a table row that is a pod or a node (screens/objectview.py)."""
        from screens.objectview import inspect_row

        inspect_row(self, event)

    def on_pod_log_view_chosen(self, event: Any) -> None:
        """Another container of the pod, or its previous run's log (`c`, `p` in its pane)."""
        event.stop()
        self.wizard.follow_pod_log(event.namespace, event.pod, event.container,
                                   event.previous)

    def on_screen_resume(self) -> None:
        self.refresh_stepbar()
        self.refresh_from_state()

    def refresh_stepbar(self) -> None:
        for bar in self.query(StepBar):
            bar.refresh()


@dataclass(frozen=True)
class Field:
    """One form field bound to a dotted answers key."""

    id: str
    label: str
    key: str
    kind: str = "text"  # text | int | optional | select | bool
    options: tuple[tuple[str, Any], ...] = ()
    placeholder: str = ""


def _display(value: Any, field: Field) -> Any:
    if field.kind == "bool":
        return "yes" if value else "no"
    if field.kind in ("select",):
        return value
    return "" if value is None else str(value)


def get_dotted(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)  # type: ignore[assignment]
    return data


class Form(Grid):
    """Label | control rows bound to answers keys; edits go through WizardState.edit."""

    DEFAULT_CSS = """
    Form { grid-size: 2; grid-columns: 22 1fr; grid-rows: 1; grid-gutter: 0 1; height: auto;
           padding: 0 1; }
    Form Label { color: $text-muted; }
    """

    def __init__(self, fields: list[Field], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fields = fields

    def compose(self) -> ComposeResult:
        for f in self.fields:
            yield Label(f.label, id=f"label-{f.id}")
            if f.kind in ("select", "bool"):
                options = f.options or (("yes", "yes"), ("no", "no"))
                yield Select(options, id=f.id, allow_blank=False, compact=True)
            else:
                yield Input(id=f.id, placeholder=f.placeholder, compact=True)

    def load(self, data: dict[str, Any]) -> None:
        for f in self.fields:
            value = _display(get_dotted(data, f.key), f)
            widget = self.query_one(f"#{f.id}")
            with widget.prevent(Input.Changed, Select.Changed):
                if isinstance(widget, Select) or widget.value != value:
                    widget.value = value

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            widget = self.query_one(f"#{f.id}")
            raw = widget.value
            if f.kind == "bool":
                out[f.key] = raw == "yes"
            elif f.kind == "select":
                out[f.key] = raw
            elif f.kind == "int":
                text = str(raw).strip()
                out[f.key] = int(text) if text.isascii() and text.isdigit() else (text or None)
            elif f.kind == "optional":
                out[f.key] = str(raw).strip() or None
            else:
                out[f.key] = str(raw).strip()
        return out

    def label_for(self, where: str) -> str:
        for f in self.fields:
            if where == f.key or where.startswith(f.key + ".") or f.key.endswith(where):
                return f.label
        return where

    def mark(self, problems: list[str]) -> None:
        bad = {self._field_for(p) for p in problems}
        for f in self.fields:
            self.query_one(f"#{f.id}").set_class(f.key in bad, "-invalid")

    def _field_for(self, where: str) -> str:
        best = ""
        for f in self.fields:
            if (where == f.key or where.startswith(f.key + ".")) and len(f.key) > len(best):
                best = f.key
        return best


def problems_text(exc: UserError, form: Form | None = None) -> Text:
    text = Text()
    for p in exc.problems:
        where = form.label_for(p.where) if form else p.where
        text.append(f"✗ {where}: ", style="bold red")
        text.append(p.message)
        if p.fix:
            text.append(f"\n    fix: {p.fix}", style="dim")
        text.append("\n")
    return text
