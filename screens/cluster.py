"""Cluster: which kubeconfig and context, and what discovery found there."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from installer.cluster.facts import Facts
from installer.diagnosis.clusterinfo import Contexts
from installer.engine.operations import OPERATIONS
from installer.errors import UserError
from screens.base import WizardScreen, problems_text
from screens.widgets.datatext import DataStatic

CURRENT = "(current context)"


@dataclass
class ContextsRead(Message):
    contexts: Contexts
    chosen: str | None


def summary(facts: Facts, kata_deploy_ns: str, operator_ns: str) -> Text:
    c = facts.cluster
    text = Text()
    if c is None:
        return Text("Not discovered yet.", style="dim")

    def row(label: str, value: str, style: str = "") -> None:
        text.append(f"{label:<18}", style="bold")
        text.append(value + "\n", style=style)

    gpu = [n for n in c.nodes if n.gpu_present]
    ready = sum(1 for n in c.nodes if n.ready)
    row("Facts", facts.source)
    row("Context", c.context or "-")
    row("Kubernetes", c.server_version or "-")
    if not c.nodes:
        row("Nodes", "none - the cluster has no nodes", "bold red")
    else:
        row("Nodes", f"{len(c.nodes)} ({ready} ready), {len(gpu)} with NVIDIA GPUs",
            "" if gpu else "yellow")
    runtimes = sorted({(n.container_runtime or "?").split(":")[0] for n in c.nodes})
    if runtimes:
        row("Runtimes", ", ".join(runtimes),
            "" if runtimes == ["containerd"] else "yellow")
    kata = [n.name for n in c.nodes if n.workload == "vm-passthrough"]
    row("Kata-labelled", ", ".join(kata) if kata else "none yet")
    releases = [f"{r.namespace}/{r.name} {r.chart}-{r.version} ({r.status})" for r in c.releases]
    row("Releases", "; ".join(releases) if releases else
        f"none (kata-deploy goes to {kata_deploy_ns}, the operator to {operator_ns})")
    classes = [rc for rc in c.runtime_classes if rc.startswith("kata")]
    row("RuntimeClasses", ", ".join(classes) if classes else "no kata-* classes yet")
    row("ClusterPolicy", c.cluster_policy_state or "none (GPU Operator not installed)")
    if c.nfd_workers:
        row("NFD workers", ", ".join(c.nfd_workers))
    if facts.source.startswith("recorded"):
        text.append("\nA recorded cluster: the wizard can plan and dry-run, not change it.",
                    style="italic yellow")
    return text


class ClusterScreen(WizardScreen):
    STEP = "cluster"
    TITLE = "Cluster - kubeconfig, context and what is there"
    HELP = """
Decides which cluster everything is planned against: the kubeconfig file and its context
(answers cluster.kubeconfig and cluster.context). Discovery (Enter in the kubeconfig field,
the Discover button or ctrl+r) is read-only: nodes, labels, versions, existing Helm
releases, RuntimeClasses and the GPU Operator's ClusterPolicy.

What a choice changes: another context is another cluster, so every later screen and every
plan line is computed again from what it finds - the GPU nodes on the Nodes screen, a
release already installed turns an install into an upgrade, an existing
nvidia.com/gpu.workload.config label turns a label step into "already labelled".

Operation picks what Review plans and `i` runs: Install (or reconfigure), Upgrade node by
node (to the chart versions on the Charts screen, in waves of rollout.maxUnavailable Kata
nodes, each verified, rolled back on the first failure), or Uninstall - the same plans the
`gpu-kata-installer` command and its `upgrade` and `uninstall` subcommands give for the same
answers.
"""

    BINDINGS = [Binding("ctrl+r", "discover", "Discover", priority=True)]

    def body(self) -> ComposeResult:
        with Grid(id="cluster-form", classes="form"):
            yield Label("Kubeconfig")
            yield Input(id="kubeconfig", placeholder="$KUBECONFIG or ~/.kube/config",
                        compact=True)
            yield Label("Context")
            yield Select([], id="context", prompt=CURRENT, allow_blank=True, compact=True)
            yield Label("Operation")
            yield Select([(op.title, op.name) for op in OPERATIONS.values()],
                         id="operation", value="install", allow_blank=False, compact=True)
        yield DataStatic("", id="kubeconfig-note")
        with Horizontal(classes="buttons"):
            yield Button("Discover (^r)", id="discover", variant="primary", compact=True)
            yield DataStatic("", id="status")
        with VerticalScroll(id="summary-box"):
            yield DataStatic("", id="error", classes="error")
            yield DataStatic("", id="summary")

    def on_mount(self) -> None:
        self.refresh_from_state()
        # The first frame comes first: discovery (and its imports) starts once it is drawn.
        # Not before it: discovery reads in a thread, which waits for the GIL after each
        # socket read while the frame's Python runs (BENCHMARKS.md section 4).
        self.call_after_refresh(self._discover_first)

    def _discover_first(self) -> None:
        if self.wizard.state.facts is None and not self.wizard.discovering:
            self._discover()

    def refresh_from_state(self) -> None:
        state = self.wizard.state
        cl = state.answers.cluster
        inp = self.query_one("#kubeconfig", Input)
        with inp.prevent(Input.Changed):
            inp.value = cl.kubeconfig or ""
        operation = self.query_one("#operation", Select)
        with operation.prevent(Select.Changed):
            operation.value = state.operation
        self._load_contexts(cl.kubeconfig, cl.context)
        err = self.query_one("#error", Static)
        err.update(self.wizard.facts_error or "")  # a str: DataStatic shows it escaped
        err.display = bool(self.wizard.facts_error)
        facts = state.facts
        self.query_one("#summary", Static).update(
            summary(facts, state.answers.kata_deploy.namespace,
                    state.answers.gpu_operator.namespace) if facts else
            Text("Not discovered yet.", style="dim"))
        self.query_one("#status", Static).update(
            Text("discovering…", style="yellow") if self.wizard.discovering else "")
        if self._asked and not self.wizard.discovering:
            self._asked = False  # the operator asked: say it was done, same result or not
            if self.wizard.facts_error:
                self.notify("discovery failed: the error is shown below", severity="error")
            elif facts is not None and facts.cluster is not None:
                nodes = facts.cluster.nodes
                self.notify(f"discovered {len(nodes)} nodes, "
                            f"{sum(n.gpu_present for n in nodes)} with GPUs", timeout=3)

    _asked = False  # an operator's discovery is running: its end is reported

    def _load_contexts(self, kubeconfig: str | None, chosen: str | None) -> None:
        """Read the kubeconfig in a thread, after the screen is drawn: it must not hold up
        a frame (the first one above all)."""
        self.call_after_refresh(self.run_worker, partial(self._read_contexts, kubeconfig, chosen),
                                thread=True, group="contexts", exclusive=True)

    def _read_contexts(self, kubeconfig: str | None, chosen: str | None) -> None:
        self.post_message(ContextsRead(self.wizard.services.contexts(kubeconfig), chosen))

    def on_contexts_read(self, message: ContextsRead) -> None:
        ctxs, chosen = message.contexts, message.chosen
        select = self.query_one("#context", Select)
        note = self.query_one("#kubeconfig-note", Static)
        note.update(Text(ctxs.error or "", style="yellow"))
        note.display = bool(ctxs.error)
        names = list(ctxs.names)
        if chosen and chosen not in names:
            names.append(chosen)
        options = [(f"{n} (current)" if n == ctxs.current else n, n) for n in names]
        with select.prevent(Select.Changed):
            select.set_options(options)
            select.value = chosen if chosen else Select.NULL

    def _apply(self) -> bool:
        kubeconfig = self.query_one("#kubeconfig", Input).value.strip() or None
        context = self.query_one("#context", Select).value
        context = None if context is Select.NULL else str(context)
        try:
            self.wizard.state.edit({"cluster.kubeconfig": kubeconfig, "cluster.context": context})
        except UserError as exc:
            err = self.query_one("#error", Static)
            err.update(problems_text(exc))
            err.display = True
            return False
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._apply():
            self._load_contexts(self.wizard.state.answers.cluster.kubeconfig,
                                self.wizard.state.answers.cluster.context)
            self.action_discover()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "operation":
            self.wizard.state.operation = str(event.value)
            self.notify(f"Review now plans: {OPERATIONS[str(event.value)].verb.lower()}",
                        timeout=3)
            return
        if self._apply():
            self.action_discover()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "discover" and self._apply():
            self.action_discover()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Discover is greyed while a discovery runs (pressing it again would do nothing)."""
        if action == "discover" and self.wizard.discovering:
            return None
        return True

    def action_discover(self) -> None:
        self._asked = True
        self._discover()

    def _discover(self) -> None:
        self.wizard.discover()
        self.query_one("#status", Static).update(Text("discovering…", style="yellow"))
