"""Sample workload: the CUDA vector-add pod in a Kata VM - its live log, then pass or fail."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from installer.answers.model import SAMPLE_POD
from installer.engine.events import Event, PodStatus
from installer.textsafe import display
from screens.base import WizardScreen
from screens.state import Ring
from screens.widgets.datatext import DataStatic
from screens.widgets.logpane import LogView

BANNER = {
    "passed": ("✓ Test PASSED - GPU workloads run in Kata VMs on this cluster",
               "bold black on green"),
    "failed": ("✗ The sample failed - its log and events say why (ctrl+t troubleshoots)",
               "bold white on red"),
    "running": ("● The sample is running (the first image pull into a VM can take minutes)",
                "bold black on yellow"),
    "not-run": ("The sample has not run yet", "dim"),
}


class SampleScreen(WizardScreen):
    STEP = "sample"
    TITLE = "Sample workload - CUDA vector-add in a Kata VM"
    HELP = """
The last step of an install runs NVIDIA's CUDA vector-add sample as a pod with
runtimeClassName kata-qemu-nvidia-gpu and one GPU: it succeeds when the pod completes and
its log says `Test PASSED`. Its log streams here live. Nothing here changes the plan; the
sample image comes from the answers (images). If it fails, the troubleshooting screen
(ctrl+t) shows its events and the operator's pods.
"""

    def __init__(self) -> None:
        super().__init__()
        self._ring: Ring | None = None

    def body(self) -> ComposeResult:
        yield DataStatic("", id="verdict")
        yield DataStatic("", id="sample-pod")
        yield LogView(f"default/{SAMPLE_POD}", id="sample-log")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        run = self.wizard.run_state
        verdict = run.sample_verdict()
        if verdict == "not-run" and run.status == "dry-run":
            banner = Text("Dry-run: the sample was not run (an install runs it)", style="dim")
        elif verdict == "not-run" and not self.wizard.state.answers.sample.run:
            banner = Text("The sample is switched off in the answers (sample.run: false)",
                          style="dim")
        else:
            label, style = BANNER[verdict]
            banner = Text(f" {label} ", style=style)
        self.query_one("#verdict", Static).update(banner)
        step = run.sample_step()
        pod = next((p for (ns, name), p in run.pods.items() if name == SAMPLE_POD), None)
        info = Text()
        if pod is not None:
            info.append(f"pod {pod.namespace}/{pod.pod}: {pod.phase}", style="bold")
            if pod.node:
                info.append(f" on {pod.node}")
            if pod.reason:
                info.append(f" ({pod.reason})", style="red")
        if step is not None and step.message and step.status not in ("pending", "running"):
            info.append("\n" + display(step.message + (f" - {step.detail}" if step.detail
                                                        else ""), multiline=True),
                        style="red" if step.status == "failed" else "")
        self.query_one("#sample-pod", Static).update(info)
        ring = run.sample_log()
        if ring is not None and ring is not self._ring:
            self._ring = ring
            self.query_one(LogView).show(ring)

    def on_run_event(self, event: Event) -> None:
        self.refresh_from_state()

    def on_pods(self, pods: list[PodStatus]) -> None:
        if any(getattr(p, "pod", None) == SAMPLE_POD or getattr(p, "name", None) == SAMPLE_POD
               for p in pods):
            self.refresh_from_state()

    def on_lines(self, batches: dict[tuple[str, str], list[str]]) -> None:
        for (_ns, pod), lines in batches.items():
            if pod == SAMPLE_POD:
                if self._ring is None:
                    self.refresh_from_state()
                else:
                    self.query_one(LogView).pane.lines_added(lines)
                if any("Test PASSED" in line for line in lines):
                    self.refresh_from_state()
