"""Review: the exact plan - the same text `--dry-run` prints - then save, dry-run or install."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer
from textual.widgets import Button, Static

from installer.engine.operations import OPERATIONS
from installer.engine.params import GpuPodsParams
from installer.engine.sinks import render_plan
from installer.textsafe import display
from screens.base import WizardScreen, problems_text
from screens.widgets.datatext import DataStatic


def plan_text(lines: list[str]) -> Text:
    """The dry-run's lines, with a little colour: changes, commands, warnings."""
    text = Text(no_wrap=True)
    for line in lines:
        stripped = line.lstrip()
        style = ""
        if stripped.startswith("will change:"):
            style = "yellow"
        elif stripped.startswith("warning:"):
            style = "bold yellow"
        elif stripped.endswith(":") and not stripped.startswith("["):
            style = "bold"
        elif stripped.startswith("["):
            style = "cyan" if " - " not in stripped else "dim"
        text.append(display(line) + "\n", style=style)  # previews quote host files
    return text


class ReviewScreen(WizardScreen):
    STEP = "review"
    TITLE = "Review - the exact plan"
    HELP = """
This is the plan the installer will run, exactly as `gpu-kata-installer --answers FILE
--dry-run` prints it: every label, every helm command with its full values, every host
change, each line headed by its step id. Each screen's help quotes the lines its choices
produce. Save the answers (ctrl+s) to replay the same plan headless. d runs a dry-run
(nothing changes; each step reports what it would do); i installs, after you confirm.
With Uninstall chosen on the Cluster screen, i uninstalls, and h decides the host files the
installer's fixes changed: left in place (listed in the plan) or restored from their backups,
with a reboot where that needs one (answers uninstall.revertHosts, `--revert-hosts`).
"""

    # `i` runs the operation chosen on the Cluster screen, under its own name: one binding
    # per operation, each shown only while its operation is the chosen one.
    BINDINGS = [
        Binding("d", "run(True)", "Dry-run"),
        *(Binding("i", f"run(False, '{op.name}')", op.verb) for op in OPERATIONS.values()),
        Binding("h", "revert_hosts", "Revert hosts"),
        Binding("ctrl+s", "app.save", "Save answers", priority=True),
    ]

    def body(self) -> ComposeResult:
        yield DataStatic("", id="plan-summary")
        with ScrollableContainer(id="plan-box"):
            yield DataStatic("", id="plan")
        with Horizontal(classes="buttons"):
            yield Button("Save answers (^s)", id="save", compact=True)
            yield Button("Dry-run (d)", id="dry-run", compact=True)
            yield Button("Install (i)", id="install", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.refresh_from_state()
        self.query_one("#plan-box").focus()

    lines: list[str] = []  # exactly what is shown: render_plan(), as --dry-run prints it
    plan_ok = False  # the answers fit the cluster: there is a plan to run

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dry-run and Install are greyed without a plan; Install on a recorded cluster."""
        if action == "revert_hosts":  # the uninstall's own question about the hosts
            return self.wizard.state.operation == "uninstall"
        if action == "run":
            dry_run = bool(parameters and parameters[0])
            if len(parameters) > 1 and parameters[1] != self.wizard.state.operation:
                return False
            can = self.plan_ok and (dry_run or not self.wizard.services.recorded)
            return True if can else None
        return True

    def action_revert_hosts(self) -> None:
        """Uninstall's consent to restore the host files the installer changed: the answers'
        uninstall.revertHosts, as `uninstall --revert-hosts` gives it headless."""
        state = self.wizard.state
        state.edit({"uninstall.revertHosts": not state.answers.uninstall.revert_hosts})
        self.refresh_from_state()

    def action_run(self, dry_run: bool, _operation: str = "") -> None:
        self.wizard.action_start_run(dry_run)

    def refresh_from_state(self) -> None:
        state = self.wizard.state
        plan, error = state.plan_or_error()
        summary = Text()
        if error is not None:
            verb = OPERATIONS[state.operation].verb
            summary.append(f"No {verb.lower()} plan: {error.summary}\n", style="bold red")
            summary.append_text(problems_text(error))
            summary.append("Fix the answers on the screen the problem names (Esc goes back), "
                           "or choose another operation on the Cluster screen.", style="dim")
            self.lines = []
            self.query_one("#plan", Static).update("")
        else:
            assert plan is not None
            kata = state.kata_nodes()
            op = OPERATIONS[state.operation]
            summary.append(f"{op.verb}: ", style="bold")
            summary.append(f"{len(plan.steps)} steps, {len(plan.changes)} changes · ")
            summary.append(f"{len(kata)} Kata node{'s' if len(kata) != 1 else ''}",
                           style="bold green" if kata else "bold yellow")
            if state.operation == "uninstall":
                revert = state.answers.uninstall.revert_hosts
                summary.append(" · host changes: ")
                summary.append("reverted" if revert else "left in place",
                               style="bold yellow" if revert else "bold")
                summary.append(f" (h {'keeps' if revert else 'reverts'} them)", style="dim")
            if self.wizard.services.recorded:
                summary.append(" · recorded cluster: dry-run only", style="yellow")
            if state.saved_to:
                summary.append(f" · saved to {state.saved_to}", style="dim")
            if any(isinstance(s.params, GpuPodsParams) for s in plan.phase("gather")):
                self.wizard.scan_for_plan()  # the relabel warning, as --dry-run shows it
            lines = render_plan(plan.to_dict())
            if lines != self.lines:
                # Another plan: where the old one was scrolled to points at other lines.
                self.query_one("#plan-box").scroll_to(0, 0, animate=False, immediate=True)
            self.lines = lines
            self.query_one("#plan", Static).update(plan_text(self.lines))
        self.query_one("#plan-summary", Static).update(summary)
        # Without a plan, its problems get the room the plan would have had.
        self.query_one("#plan-summary").set_class(error is not None, "failed")
        self.query_one("#plan-box").display = error is None
        self.plan_ok = error is None
        self.refresh_bindings()
        install = self.query_one("#install", Button)
        install.label = f"{OPERATIONS[state.operation].verb} (i)"
        install.disabled = error is not None or self.wizard.services.recorded
        self.query_one("#dry-run", Button).disabled = error is not None

    def on_screen_resume(self) -> None:
        """Back on Review: the same plan keeps the line the operator was at, but is shown from
        its left edge again (a line's start says what it is; a stale sideways scroll hid it)."""
        super().on_screen_resume()
        self.query_one("#plan-box").scroll_to(x=0, animate=False, immediate=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.wizard.action_save()
        elif event.button.id == "dry-run":
            self.wizard.action_start_run(True)
        elif event.button.id == "install":
            self.wizard.action_start_run(False)
