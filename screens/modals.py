"""Modal screens: confirm (consent mid-run, quitting during an install), host keys, save, help."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from installer.textsafe import display
from screens.widgets.datatext import DataStatic


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question with its detail. `y` / `n`; Esc means no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, detail: str = "", *, yes: str = "Yes", no: str = "No",
                 danger: bool = False) -> None:
        super().__init__(classes="danger" if danger else "")
        self.question = question
        self.detail = detail
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield DataStatic(Text(self.question, style="bold"), id="question")
            if self.detail:
                with VerticalScroll(id="detail"):
                    yield DataStatic(self.detail)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes",
                             variant="error" if self.has_class("danger") else "primary",
                             compact=True)
                yield Button(f"{self.no_label} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HostKeyModal(ConfirmModal):
    """An unknown host key: the fingerprint is shown, trusting it is an explicit choice."""

    def __init__(self, node: str, address: str | None, fingerprint: str) -> None:
        super().__init__(
            f"Trust the host key of {node}?",
            f"{node} ({address or 'no address'}) offered a host key that is not in your "
            f"known_hosts file:\n\n    {fingerprint}\n\nCompare it with the fingerprint the "
            "host shows (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console). "
            "Trusting records it in known_hosts; a changed key is always refused.",
            yes="Trust", no="Don't trust")


class SecretModal(ModalScreen[str | None]):
    """A secret the answers say to ask for (never stored: kept in memory for this session)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, why: str) -> None:
        super().__init__()
        self.what = what
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield DataStatic(Text(f"The {self.what}", style="bold"), id="question")
            yield DataStatic(self.why, classes="muted")
            yield Input(password=True, id="secret", compact=True,
                        placeholder=f"{self.what} (not shown, never saved)")
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.query_one(Input).value if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveModal(ModalScreen[str | None]):
    """Where to save the answers file."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield DataStatic(Text("Save the answers file", style="bold"))
            yield DataStatic("It replays headless to the same plan: gpu-kata-installer --answers "
                         "FILE --dry-run. Saved private (mode 0600); no secrets are written.",
                         classes="muted")
            yield Label("File")
            yield Input(self.path, id="path", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.query_one(Input).value.strip() or None if event.button.id == "save"
                     else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


GENERAL_HELP = """\
The wizard walks through the same plan the headless mode runs: choose the cluster and its
nodes, check the hosts, pick the charts, review the exact plan, then install and run the
CUDA sample in a Kata VM. Nothing changes until you start an install and confirm it.
Everything works with the keyboard; the mouse works too.
"""


def reflow(text: str) -> str:
    """Paragraphs written with hard line breaks, joined so the terminal can wrap them."""
    return "\n\n".join(" ".join(p.split()) for p in text.strip().split("\n\n")) + "\n"


class HelpModal(ModalScreen[None]):
    """What this screen decides, every key that works on it right now, and the plan lines
    its choices produce. Scrolls: at 80x24 it is taller than the terminal."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f1", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, title: str, text: str, keys: list[tuple[str, str]],
                 plan_heading: str = "", plan_lines: list[str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.keys = keys
        self.plan_heading = plan_heading
        self.plan_lines = plan_lines or []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield DataStatic(Text(f"Help: {self.title_text}", style="bold"))
            with VerticalScroll(id="detail"):
                yield DataStatic(Text(reflow(self.text)))
                table = Text()
                for key, what in self.keys:
                    table.append(f"{key:>10}  ", style="bold")
                    table.append(f"{what}\n")
                yield DataStatic(table)
                if self.plan_heading:
                    plan = Text(f"{self.plan_heading}:\n", style="bold")
                    for line in self.plan_lines:
                        plan.append(display(line) + "\n",
                                    style="yellow" if line.lstrip().startswith("will change")
                                    else "cyan")
                    yield DataStatic(plan, id="help-plan")
                yield DataStatic(Text("\n" + reflow(GENERAL_HELP), style="dim"))
            yield DataStatic("Esc closes · arrows and PgUp/PgDn scroll", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
