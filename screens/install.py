"""Install: the run's steps with progress, a live pod table, helm output, any pod's log."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent, TabPane

from installer.engine.events import (
    Event,
    PlanReady,
    PodStatus,
    RunFinished,
    StepFinished,
    StepStarted,
    Waiting,
)
from screens.base import WizardScreen
from screens.bridge import OUTPUT_KEY
from screens.progressview import MARK, grid, grid_table, wait_text
from screens.state import RunState, StepRow
from screens.widgets.datatext import DataStatic
from screens.widgets.keyedtable import KeyedTable
from screens.widgets.logpane import LogView
from screens.widgets.podlog import PodLogView
from screens.widgets.podtable import PodTable


def step_cells(row: StepRow) -> tuple[Text, str, Text]:
    mark, style = MARK.get(row.status, ("?", ""))
    running = "running…" if row.wait is None else f"waiting: {row.wait.observed}"
    message = row.message or (running if row.status == "running" else row.title)
    if row.detail:
        message += f" - {row.detail}"
    return Text(mark, style=style), row.path, Text(message, style="red" if row.status ==
                                                   "failed" else "")


def run_line(run: RunState) -> Text:
    text = Text()
    kind = "Dry-run" if run.dry_run else "Install"
    if run.status == "idle":
        return Text("Nothing has run yet. Start a dry-run or the install from Review.",
                    style="dim")
    counts = run.counts()
    finished = sum(v for k, v in counts.items() if k not in ("pending", "running"))
    if run.status == "running":  # the running step is the wait line's (screens.progressview)
        text.append(f"{kind} running ", style="bold yellow")
        text.append(f"{finished}/{len(run.steps)} steps")
    else:
        style = "bold green" if run.exit_code == 0 else "bold red"
        text.append(f"{kind} {run.status}: ", style=style)
        text.append(f"{run.message} (exit {run.exit_code})")
        if run.exit_code == 0:
            text.append(" · ctrl+n: next", style="dim")
        else:
            failed = next((r for r in run.ordered_steps() if r.status == "failed"), None)
            if failed is not None and failed.detail:
                text.append(f"\n{failed.detail}", style="yellow")
            text.append(" · ctrl+t: troubleshoot", style="dim")
    return text


class InstallScreen(WizardScreen):
    STEP = "install"
    TITLE = "Install - steps, pods, helm output, logs"
    HELP = """
The run goes through the plan's steps in order: gather, check, change, verify. Each step
shows its progress; the pod table follows the kata-deploy and GPU Operator namespaces live;
helm's output and any pod's log (Enter on a pod) are in the tabs below. The running step
says how long it has run, what it waits for, what it last saw and when it times out; the
Nodes tab is the install per node (checks, fixes, label, kata-deploy, operands, host verify,
sample), each cell a status and how long it took. The run keeps going while you look at
other screens - the bar at the top shows its progress everywhere.
`s` stops it (after asking); an interrupted install resumes where it stopped next time.
Nothing is decided here: the plan lines below are the steps this run follows, by the ids
the step table shows.
"""

    BINDINGS = [
        Binding("s", "app.stop_run", "Stop"),
        Binding("p", "tab('tab-pods')", "Pods", show=False),
        Binding("o", "tab('tab-output')", "Helm output", show=False),
        Binding("g", "tab('tab-log')", "Pod log", show=False),
        Binding("n", "tab('tab-nodes')", "Nodes", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.log_key: tuple[str, str] | None = None
        self._centred: str | None = None  # the step _centre_running put the cursor on

    def body(self) -> ComposeResult:
        run = self.wizard.run_state
        yield DataStatic("", id="run-line")
        yield DataStatic("", id="wait-line")
        yield KeyedTable(id="steps", cursor_type="row", show_header=False)
        yield DataStatic("", id="step-detail")
        with TabbedContent(id="run-tabs", initial="tab-pods"):
            with TabPane("Pods", id="tab-pods"):
                yield PodTable(id="pods")
                yield DataStatic("", id="pod-detail", classes="row-detail")
            with TabPane("Nodes", id="tab-nodes"):
                yield KeyedTable(id="node-grid", cursor_type="row")
            with TabPane("Helm output", id="tab-output"):
                yield LogView("helm and tool output", run.output, id="output")
            with TabPane("Pod log", id="tab-log"):
                yield PodLogView("Enter (or l) on a pod shows its log here", id="pod-log")

    def on_mount(self) -> None:
        self.query_one(PodTable).clock = self.wizard.run_state.clock
        self.query_one(PodTable).detail = self.query_one("#pod-detail", DataStatic)
        self.refresh_from_state()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        """Each second: the elapsed time, the countdown and the grid's running durations
        move on with the run state's clock."""
        run = self.wizard.run_state
        now = run.clock()
        line = self.query_one("#wait-line", Static)
        text = wait_text(run, now)
        line.display = bool(text.plain)
        line.update(text)
        columns, rows = grid_table(grid(run, now))
        self.query_one("#node-grid", KeyedTable).fill_rows(columns, rows)

    def refresh_from_state(self) -> None:
        run = self.wizard.run_state
        self._steps_table(run)
        pods = self.query_one(PodTable)
        pods.replace_pods(run.pods.values())
        output = self.query_one("#output", LogView)
        if output.pane.ring is not run.output:
            output.show(run.output)
        self.query_one("#run-line", Static).update(run_line(run))
        self.tick()
        self._follow_running()

    def _steps_table(self, run: RunState) -> None:
        """Rebuilt whole on every step event (a few dozen rows): column widths then follow
        the run's state, never the order in which updates happened to arrive."""
        self.query_one("#steps", KeyedTable).fill_rows(
            (("mark", ""), ("path", "Step"), ("message", "Status")),
            ((r.path, step_cells(r)) for r in run.ordered_steps()), max_width=200)

    def _follow_running(self) -> None:
        """Keep the running step in the middle of the list (once the layout is known)."""
        self.call_after_refresh(self._centre_running)

    def _centre_running(self) -> None:
        """The step that matters now: running, else failed, else the last one that finished
        (a function of the run's state alone, so the view never depends on timing)."""
        table = self.query_one("#steps", KeyedTable)
        rows = self.wizard.run_state.ordered_steps()
        current = next((i for i, r in enumerate(rows) if r.status == "running"), None)
        if current is None:
            current = next((i for i, r in enumerate(rows) if r.status == "failed"), None)
        if current is None:
            current = max((i for i, r in enumerate(rows) if r.status != "pending"),
                          default=None)
        if current is not None and table.row_count:
            self._centred = rows[current].path
            table.move_cursor(row=current, scroll=False)
            visible = max(1, table.scrollable_content_region.height)
            table.scroll_to(y=max(0, current - visible // 2), animate=False, immediate=True)

    def on_run_event(self, event: Event) -> None:
        run = self.wizard.run_state
        if isinstance(event, PlanReady | RunFinished):
            self.refresh_from_state()
            return
        if isinstance(event, StepStarted | StepFinished | Waiting):
            self._steps_table(run)
            self._follow_running()
            self.tick()
        self.query_one("#run-line", Static).update(run_line(run))
        self.refresh_stepbar()

    def on_pods(self, pods: list[PodStatus]) -> None:
        self.query_one(PodTable).update_pods(pods)

    def on_lines(self, batches: dict[tuple[str, str], list[str]]) -> None:
        if OUTPUT_KEY in batches:
            self.query_one("#output", LogView).pane.lines_added(batches[OUTPUT_KEY])
        if self.log_key and self.log_key in batches:
            self.query_one("#pod-log", LogView).pane.lines_added(batches[self.log_key])

    def on_pod_table_pod_chosen(self, event: PodTable.PodChosen) -> None:
        event.stop()
        self.show_log(event.namespace, event.pod, event.containers)

    def show_log(self, namespace: str, pod: str, containers: tuple[str, ...] = ()) -> None:
        key = (namespace, pod)
        self.log_key = key
        ring = self.wizard.log_ring(key)
        view = self.query_one("#pod-log", PodLogView)
        view.show(ring)
        self.query_one(TabbedContent).active = "tab-log"
        self.wizard.follow_pod_log(namespace, pod, view.choose(namespace, pod, containers))

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if event.table.id == "steps":
            self._show_step()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._show_step()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self._show_step()

    def _show_step(self) -> None:
        """A step the operator moved to in the list, whole: its status is cut at the table's
        right edge. The step the screen keeps the cursor on (running, failed) is the run and
        wait lines' already, so for it the line goes away."""
        table = self.query_one("#steps", KeyedTable)
        line = self.query_one("#step-detail", Static)
        key = table.cursor_key
        row = self.wizard.run_state.steps.get(key or "")
        # Before the screen first centred the list, its cursor is nobody's choice.
        show = (table.has_focus and row is not None and self._centred is not None
                and key != self._centred)
        if line.display != show:  # an unchanged display is not set again: no new layout
            line.display = show
            if show:  # the table is shorter now: its cursor row stays in view
                self.call_after_refresh(table.move_cursor)
        if row is not None and show:
            mark, path, message = step_cells(row)
            line.update(Text.assemble(mark, " ", (path, "bold"), " · ", message))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
