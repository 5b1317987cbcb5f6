"""Done: what the run did, and what to do next."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from installer.charts.values import gpu_resource_name
from installer.engine.events import Event
from screens.base import WizardScreen
from screens.widgets.datatext import DataStatic


def done_text(app) -> Text:
    run = app.run_state
    state = app.state
    text = Text()
    if run.status == "idle":
        text.append("Nothing has run yet.\n", style="bold")
        text.append("Review the plan and start a dry-run or the install there.\n\n")
    elif run.status == "running":
        text.append("The run is still going - see Install.\n\n", style="bold yellow")
    else:
        ok = run.exit_code == 0
        kind = "Dry-run" if run.dry_run else "Install"
        text.append(f"{kind} {'finished' if ok else run.status}: ",
                    style="bold green" if ok else "bold red")
        text.append(f"{run.message} (exit {run.exit_code})\n")
        counts = run.counts()
        text.append("Steps: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + "\n")
        applied = [c for c in run.changes if c.applied]
        described = [c for c in run.changes if not c.applied]
        if applied:
            text.append(f"Changed ({len(applied)}):\n", style="bold")
            for c in applied[:12]:
                text.append(f"  ✓ {c.message}\n")
            if len(applied) > 12:
                text.append(f"  … and {len(applied) - 12} more\n", style="dim")
        elif described:
            text.append(f"Would change ({len(described)}), nothing was changed.\n",
                        style="bold")
        verdict = run.sample_verdict()
        if verdict == "passed":
            text.append("Sample: Test PASSED in a Kata VM\n", style="bold green")
        elif verdict == "failed":
            text.append("Sample: FAILED (see Sample, or ctrl+t)\n", style="bold red")
        text.append("\n")
    kata = state.kata_nodes()
    resource = gpu_resource_name(state.answers) or "nvidia.com/<GPU model>"
    text.append("Kata GPU nodes: ", style="bold")
    text.append((", ".join(kata) if kata else "none") + "\n\n")
    text.append("Next steps\n", style="bold underline")
    text.append("Run a GPU pod in a Kata VM:\n")
    text.append(f"  spec:\n    runtimeClassName: kata-qemu-nvidia-gpu\n    containers:\n"
                f"    - resources:\n        limits:\n          {resource}: \"1\"\n",
                style="cyan")
    if state.saved_to:
        text.append(f"Replay headless: gpu-kata-installer --answers {state.saved_to} "
                    "--dry-run\n")
    else:
        text.append("Save these answers (ctrl+s) to replay the same plan headless.\n")
    text.append("Something wrong later: gpu-kata-installer troubleshoot (or ctrl+t here).\n")
    if app.log_path:
        text.append(f"Full log: {app.log_path.parent}/ (the newest wizard-*.log)\n",
                    style="dim")
    text.append("ctrl+q quits.", style="dim")
    return text


class DoneScreen(WizardScreen):
    STEP = "done"
    TITLE = "Done - summary and next steps"
    HELP = """
A summary of the run: what changed, whether the sample passed, and how to use the Kata GPU
nodes from here. Nothing is decided here; the plan lines below are the ones the run
followed. Save the answers (ctrl+s) to repeat the same install headless on another cluster
or after a rebuild.
"""

    def body(self) -> ComposeResult:
        with VerticalScroll(id="done-box"):
            yield DataStatic("", id="done")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        self.query_one("#done", Static).update(done_text(self.wizard))

    def on_run_event(self, event: Event) -> None:
        self.refresh_from_state()
