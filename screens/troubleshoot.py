"""Troubleshooting: findings, a pod and event browser, any pod's log, node labels, host checks.

Reachable from every screen (ctrl+t) and as `gpu-kata-installer troubleshoot`. The data
comes from `installer.diagnosis.clusterinfo` through the app's Inspector; this screen only shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static, TabbedContent, TabPane

from installer.charts.verify import CC_READY_LABEL, DRIVER_LABEL
from installer.cluster.facts import GPU_PRESENT_LABEL, KATA_RUNTIME_LABEL, WORKLOAD_LABEL
from installer.diagnosis.clusterinfo import ClusterView, basic_findings
from installer.diagnosis.describe import human_age, parse_time
from installer.textsafe import display
from screens.base import WizardScreen
from screens.checks import MARKS
from screens.widgets.datatext import DataStatic
from screens.widgets.keyedtable import KeyedTable, RowObject
from screens.widgets.podlog import PodLogView
from screens.widgets.podtable import PodTable

NODE_LABELS = (("workload", WORKLOAD_LABEL), ("kata", KATA_RUNTIME_LABEL),
               ("gpu", GPU_PRESENT_LABEL), ("cc", CC_READY_LABEL), ("driver", DRIVER_LABEL))

FINDING_COLUMNS = (("sev", " "), ("where", "Where"), ("what", "What"),
                   ("remedy", "What to do"))
EVENT_COLUMNS = (("ns", "Namespace"), ("type", "Type"), ("object", "Object"),
                 ("reason", "Reason"), ("message", "Message"), ("count", "#"),
                 ("age", "Last seen"))
CHECK_COLUMNS = (("node", "Node"), ("status", "Status"), ("check", "Check"),
                 ("summary", "Summary"))
SEVERITY = {"error": ("✗", "bold red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}


@dataclass
class ViewLoaded(Message):
    view: ClusterView


class TroubleshootScreen(WizardScreen):
    STEP = "troubleshoot"
    TITLE = "Troubleshoot - findings, pods, events, logs, nodes, host checks"
    HELP = """
What is going on in the cluster, read-only: findings (what `troubleshoot --json` reports from
the last host checks, with the run's failed steps), the pods of the kata-deploy and GPU
Operator namespaces (Enter shows a pod's log, followed live), their events, the GPU-related
labels of every node, and the host checks. `r` reads the cluster again; `c` probes the hosts
and re-runs the host checks. Esc goes back to where you were.
"""

    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("c", "checks", "Re-run checks"),
    ]

    def __init__(self, standalone: bool = False) -> None:
        super().__init__()
        self.standalone = standalone
        self.view: ClusterView | None = None
        self.reading = False

    def body(self) -> ComposeResult:
        yield DataStatic("", id="ts-status")
        with TabbedContent(id="ts-tabs", initial="ts-findings"):
            with TabPane("Findings", id="ts-findings"):
                yield KeyedTable(id="findings", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="finding-box", classes="detail-box"):
                    yield DataStatic("", id="finding-detail")
            with TabPane("Pods", id="ts-pods"):
                yield PodTable(id="ts-pod-table")
                yield DataStatic("", id="ts-pod-detail", classes="row-detail")
                yield PodLogView("Enter (or l) on a pod shows its log", id="ts-log")
            with TabPane("Events", id="ts-events"):
                yield KeyedTable(id="events", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="event-box", classes="detail-box"):
                    yield DataStatic("", id="event-detail")
            with TabPane("Nodes", id="ts-nodes"):
                yield KeyedTable(id="node-labels", cursor_type="row", zebra_stripes=True)
            with TabPane("Host checks", id="ts-checks"):
                yield DataStatic("", id="ts-checks-status")
                yield KeyedTable(id="check-table", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="ts-check-box", classes="detail-box"):
                    yield DataStatic("", id="ts-check-detail")

    def on_mount(self) -> None:
        self.query_one(PodTable).clock = self.wizard.run_state.clock
        self.query_one(PodTable).detail = self.query_one("#ts-pod-detail", DataStatic)
        self.query_one("#events", KeyedTable).objects = self._event_object
        self.query_one("#node-labels", KeyedTable).objects = lambda key: RowObject("node", "",
                                                                                   key)
        self.refresh_from_state()
        self._reload()

    def _event_object(self, key: str) -> RowObject | None:
        """An event row stands for the object it is about (pods and nodes are described)."""
        events = self.view.events if self.view else ()
        at = len(events) - 1 - int(key)  # the rows are the events newest first
        if not 0 <= at < len(events):
            return None
        kind, _, name = events[at].object.partition("/")
        if kind not in ("pod", "node"):
            return None
        return RowObject(kind, events[at].namespace if kind == "pod" else "", name)

    def namespaces(self) -> tuple[str, ...]:
        a = self.wizard.state.answers
        return (a.kata_deploy.namespace, a.gpu_operator.namespace)

    _asked = False  # a reload the operator asked for: its end is reported

    def action_reload(self) -> None:
        self._asked = True
        self._reload()

    def _reload(self) -> None:
        if self.reading:
            return
        self.reading = True
        self._status()
        self.run_worker(self._load(), group="ts-load", exclusive=True)

    async def _load(self) -> None:
        # The host checks and probed hosts of the last check run (each run probes afresh),
        # the inputs headless `troubleshoot` gets from its own probe.
        state = self.wizard.state
        self._checks_read = state.checks
        view = await self.wizard.inspector().view(
            self.namespaces(), dict(state.checks),
            hosts=dict(state.facts.hosts) if state.facts else {})
        self.post_message(ViewLoaded(view))

    _checks_read: object = None

    def on_view_loaded(self, message: ViewLoaded) -> None:
        self.reading = False
        self.view = message.view
        self.refresh_from_state()
        if self._asked:  # the same cluster reads the same: say it was read again
            self._asked = False
            v = message.view
            self.notify(f"read again: {len(v.pods)} pods, {len(v.events)} events, "
                        f"{len(v.nodes)} nodes", timeout=3)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Back is hidden when this screen is the whole app (there is nothing to go back
        to); Re-run checks is greyed while the checks run."""
        if action == "leave":
            return not self.standalone
        if action == "checks" and self.wizard.checking:
            return None
        return True

    def action_checks(self) -> None:
        if self.wizard.run_checks():
            self.query_one(TabbedContent).active = "ts-checks"
            self._checks()

    def action_leave(self) -> None:
        if not self.standalone:
            self.dismiss()

    def _status(self) -> None:
        text = Text()
        ns = " and ".join(self.namespaces())
        if self.reading:
            text.append(f"reading {ns}…", style="yellow")
        elif self.view is not None:
            v = self.view
            text.append(f"{len(v.pods)} pods and {len(v.events)} events in {ns}, "
                        f"{len(v.nodes)} nodes")
            for err in v.errors:
                text.append(f"\n{err}", style="yellow")
        self.query_one("#ts-status", Static).update(text)

    def failed_steps(self) -> tuple[tuple[str, str, str], ...]:
        run = self.wizard.run_state
        return tuple((r.path, r.message, r.detail) for r in run.steps.values()
                     if r.status == "failed")

    def refresh_from_state(self) -> None:
        if (self.view is not None and not self.reading
                and self.wizard.state.checks is not self._checks_read):
            self._reload()  # new check results: the findings read them
        self._status()
        view = self.view or ClusterView()
        self.findings = basic_findings(view, self.failed_steps())
        self.query_one("#findings", KeyedTable).fill_rows(FINDING_COLUMNS, (
            (str(i), (Text(SEVERITY.get(f.severity, ("?", ""))[0],
                           style=SEVERITY.get(f.severity, ("?", ""))[1]),
                      f.where, f.message, Text(f.remedy, style="dim")))
            for i, f in enumerate(self.findings)))
        self.query_one(PodTable).replace_pods(view.pods)
        now = datetime.fromtimestamp(self.wizard.run_state.clock(), UTC)
        self.events = list(reversed(view.events))
        self.query_one("#events", KeyedTable).fill_rows(EVENT_COLUMNS, (
            (str(i), (e.namespace, Text(e.type, style="yellow" if e.type == "Warning" else ""),
                      e.object, e.reason, e.message, str(e.count),
                      human_age(parse_time(e.last_seen), now) if e.last_seen else ""))
            for i, e in enumerate(self.events)))
        if not self.events:
            self.query_one("#event-detail", Static).update(Text("No events.", style="dim"))
        node_facts = view.nodes or (self.wizard.state.facts.cluster.nodes
                                    if self.wizard.state.facts and
                                    self.wizard.state.facts.cluster else ())
        self.query_one("#node-labels", KeyedTable).fill_rows(
            [("node", "Node"), *((k, label.split("/")[-1]) for k, label in NODE_LABELS)],
            ((n.name, (n.name, *(n.labels.get(label, "-") for _, label in NODE_LABELS)))
             for n in node_facts))
        self._checks()

    def _checks(self) -> None:
        """The host checks as the other tabs show their rows: a table (node x check, which
        scrolls with the keys and the mouse) and the full result under the cursor."""
        state = self.wizard.state
        text = Text()
        if self.wizard.checking:
            text.append("running the host checks…\n", style="yellow")
        if state.checks_error:
            text.append(f"{state.checks_error}\n", style="red")
        if not state.checks and not self.wizard.checking:
            text.append("No host checks have run. c runs them on the Kata nodes.", style="dim")
        line = self.query_one("#ts-checks-status", Static)
        line.display = bool(text.plain)
        line.update(text.rstrip() or text)
        self.check_results = {f"{node}/{r.name}": (node, r)
                              for node, rows in sorted(state.checks.items()) for r in rows}
        self.query_one("#check-table", KeyedTable).fill_rows(CHECK_COLUMNS, (
            (key, (node, Text(*MARKS.get(r.status, ("?", ""))), r.name, display(r.summary)))
            for key, (node, r) in self.check_results.items()))
        if not self.check_results:
            self.query_one("#ts-check-detail", Static).update("")

    def _show_check(self, key: str) -> None:
        node, r = self.check_results[key]
        label, style = MARKS.get(r.status, ("?", ""))
        text = Text(f"{node} · {r.name} · ", style="bold")
        text.append(label + (" (ignored)" if r.ignored else ""), style=style)
        text.append(f"\n{display(r.summary)}\n")
        for line in r.evidence:  # what the host said, verbatim: shown as data
            text.append(f"  {display(line)}\n", style="dim")
        if r.remedy:
            text.append(f"What to do: {r.remedy}", style="dim")
        self.query_one("#ts-check-detail", Static).update(text.rstrip() or text)

    def _show_event(self, index: int) -> None:
        e = self.events[min(index, len(self.events) - 1)]
        text = Text(f"{e.namespace}/{e.object} · ", style="bold")
        text.append(e.type, style="yellow" if e.type == "Warning" else "")
        text.append(f" · {e.reason} · seen {e.count}x\n", style="bold")
        text.append(display(e.message))  # the cluster's words: shown as data
        self.query_one("#event-detail", Static).update(text)

    def on_pod_table_pod_chosen(self, event: PodTable.PodChosen) -> None:
        event.stop()
        key = (event.namespace, event.pod)
        view = self.query_one("#ts-log", PodLogView)
        self.log_key = key
        view.show(self.wizard.log_ring(key))
        self.query_one(TabbedContent).active = "ts-pods"
        view.pane.focus()
        self.wizard.follow_pod_log(event.namespace, event.pod,
                                   view.choose(event.namespace, event.pod, event.containers))

    log_key: tuple[str, str] | None = None
    findings: list = []
    events: list = []
    check_results: dict = {}

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        """The row under the cursor, whole, in the tab's detail box: what a narrow table cut."""
        # The detail's height changes the table's: its cursor row is kept in view after.
        self.call_after_refresh(event.table.move_cursor)
        if event.table.id == "check-table" and event.row_key in self.check_results:
            self._show_check(event.row_key)
            return
        if event.table.id == "events" and self.events:
            self._show_event(event.cursor_row)
            return
        if event.table.id != "findings" or not self.findings:
            return
        f = self.findings[min(event.cursor_row, len(self.findings) - 1)]
        mark, style = SEVERITY.get(f.severity, ("?", ""))
        text = Text(f"{mark} {f.where}\n", style=f"bold {style}")
        text.append(f"{display(f.message)}\n")
        for line in f.evidence:  # log lines and messages, verbatim: shown as data
            text.append(f"  {display(line)}\n", style="dim")
        if f.remedy:
            text.append(f"What to do: {f.remedy}", style="dim")
        self.query_one("#finding-detail", Static).update(text)

    def on_lines(self, batches: dict[tuple[str, str], list[str]]) -> None:
        if self.log_key and self.log_key in batches:
            self.query_one("#ts-log", PodLogView).pane.lines_added(batches[self.log_key])
