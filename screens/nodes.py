"""Nodes: per node (or in bulk) Kata, traditional containers, or leave alone; the default."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from installer.diagnosis.describe import human_age, parse_time
from installer.errors import UserError
from screens.base import WizardScreen, problems_text
from screens.state import gpu_count
from screens.widgets.datatext import DataStatic
from screens.widgets.keyedtable import KeyedTable

COLUMNS = (("sel", " "), ("node", "Node"), ("gpus", "GPUs"), ("label", "Workload label"),
           ("runtime", "Runtime"), ("kubelet", "Kubelet"), ("ready", "Ready"),
           ("choice", "Choice"), ("age", "Age"))

_CHOICE_STYLE = {"kata": "bold green", "traditional": "cyan", "leave": "dim"}


class NodesScreen(WizardScreen):
    STEP = "nodes"
    TITLE = "Nodes - Kata VMs, traditional containers, or leave alone"
    HELP = """
Decides, per GPU node, how GPU pods run there (answers nodes.items and nodes.default):

Kata (k): the node is labelled nvidia.com/gpu.workload.config=vm-passthrough; the GPU
Operator binds its GPUs to vfio-pci and it runs only Kata GPU pods; kata-deploy installs
there (its nodeSelector is that label); its host is probed and fixed (over SSH, or
through the cluster: see h).

Traditional (t): label nvidia.com/gpu.workload.config=container; GPUs stay with the
host driver for ordinary containers.

Leave (l): no label step; the node keeps what it has.

Default (x): the node follows the cluster default (d switches it); a default of kata
sets the GPU Operator's sandboxWorkloads.defaultWorkload=vm-passthrough, so every
unlabelled GPU node becomes a Kata node.

Host access (h): how the node's host is reached for checks and fixes - as the SSH screen
says (hostAccess.mode), or the other way for this node (over SSH, or through the cluster:
a privileged pod per node); h again goes back. Shown beside the choice ("kata · pod").

Before any label changes, the nodes' nvidia.com/ and katacontainers.io/ labels are recorded
(uninstall restores them). Select rows with space (a selects every GPU node, A clears),
then choose for all of them at once; with nothing selected a key acts on the row under the
cursor.
"""

    BINDINGS = [
        Binding("k", "choose('kata')", "Kata", tooltip="Kata: GPU pods run in Kata VMs"),
        Binding("t", "choose('traditional')", "Traditional",
                tooltip="Traditional: GPU pods run as containers"),
        Binding("l", "choose('leave')", "Leave", tooltip="Leave the node as it is"),
        Binding("x", "choose('default')", "Default", show=False,
                tooltip="Forget the choice: the node follows the cluster default"),
        Binding("space", "toggle_select", "Select", show=False,
                tooltip="Select or unselect the row (choices apply to every selected row)"),
        Binding("a", "select_gpu", "All GPU", show=False, tooltip="Select every GPU node"),
        Binding("A", "select_none", "None", show=False, tooltip="Clear the selection"),
        Binding("d", "toggle_default", "Cluster default", show=False,
                tooltip="Switch the cluster default between kata and traditional"),
        Binding("h", "toggle_access", "Host access", show=False,
                tooltip="Reach the host the other way (SSH or a pod), or as the SSH screen "
                        "says again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected: set[str] = set()
        self._shown: tuple[str, ...] | None = None
        self._drawn_from: tuple[object, object, frozenset[str], object] | None = None

    def body(self) -> ComposeResult:
        yield DataStatic("", id="default-line")
        yield KeyedTable(id="nodes", cursor_type="row", zebra_stripes=True)
        yield DataStatic("", id="node-detail")
        yield DataStatic("", id="node-summary")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def node_facts(self):
        facts = self.wizard.state.facts
        return facts.cluster.nodes if facts and facts.cluster else ()

    def shown_nodes(self):
        """The discovered nodes, or - while a first discovery reads a long list - the nodes
        read so far (shown, not chosen for: the choice keys wait for the whole list)."""
        return self.node_facts() or self.wizard.nodes_read

    def refresh_from_state(self) -> None:
        state = self.wizard.state
        # Everything shown derives from these (answers and facts are replaced, never edited,
        # when they change). Why: a screen shown for the first time is refreshed on mount and
        # again on resume, and at 1,000 nodes a refresh builds and compares every row (a
        # visible part of bench/scale.py's first render).
        drawn_from = (state.facts, state.answers, frozenset(self.selected),
                      self.wizard.nodes_read)
        last = self._drawn_from
        if last and last[0] is drawn_from[0] and last[1] is drawn_from[1] \
                and last[2] == drawn_from[2] and last[3] is drawn_from[3]:
            return
        self._drawn_from = drawn_from
        table = self.query_one(KeyedTable)
        nodes = self.shown_nodes()
        names = tuple(n.name for n in nodes)
        kata = set(state.kata_nodes())
        # One pass over the answers' choices, not one per row: with every GPU node of a
        # large cluster chosen, asking the answers for each row's choice is rows x choices.
        chosen = {item.name: item.choice + (f" · {item.host_access}" if item.host_access
                                            else "")
                  for item in state.answers.nodes.items}
        now = datetime.fromtimestamp(self.wizard.run_state.clock(), UTC)
        # A page of a long list being read extends the rows shown: only its rows are built
        # and put in (a refill per page built every row again: 27,000 rows for 5,000 nodes).
        shown = self._shown or ()
        reading = not self.node_facts() and names[:len(shown)] == shown
        rows = {n.name: self._cells(n, kata, chosen, now)
                for n in (nodes[len(shown):] if reading else nodes)}
        if (names != self._shown and not reading) or not table.update_rows(COLUMNS, rows):
            if reading and shown:
                rows = {n.name: self._cells(n, kata, chosen, now) for n in nodes}
            table.fill_rows(COLUMNS, rows.items())
        self._shown = names
        self.selected &= set(names)
        default = state.answers.nodes.default
        line = Text()
        line.append("Cluster default for nodes not chosen: ")
        line.append(default, style=_CHOICE_STYLE.get(default, "bold"))
        line.append("   (d switches kata/traditional)", style="dim")
        self.query_one("#default-line", Static).update(line)
        self.query_one("#node-summary", Static).update(self._summary())
        self._show_row()

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self._show_row()
        self.call_after_refresh(event.table.move_cursor)  # in view in the table's new height

    def _show_row(self) -> None:
        """The row under the cursor, every column named and whole: at 80 columns the table
        cuts its right-hand cells (the choice among them)."""
        table = self.query_one(KeyedTable)
        key = table.cursor_key
        text = table.row_summary(key, skip=1) if key is not None else Text()
        line = self.query_one("#node-detail", Static)
        line.display = key is not None
        line.update(text)

    def _cells(self, n, kata_nodes: set[str], chosen: dict[str, str],
               now: datetime) -> list:
        explicit = chosen.get(n.name)
        choice = explicit or f"default ({self.wizard.state.answers.nodes.default})"
        kata = n.name in kata_nodes
        style = _CHOICE_STYLE.get((explicit or "").split(" · ")[0] or
                                  ("kata" if kata else "traditional"), "")
        if not explicit:
            style += " italic"
        return [
            Text("●" if n.name in self.selected else " ", style="bold yellow"),
            n.name,
            Text(gpu_count(n), style="" if n.gpu_present else "dim"),
            n.workload or Text("-", style="dim"),
            (n.container_runtime or "?").replace("containerd://", "containerd "),
            n.kubelet_version or "?",
            Text("yes", style="green") if n.ready else Text("no", style="red"),
            Text(choice, style=style),
            human_age(parse_time(n.created), now) if n.created else Text("-", style="dim"),
        ]

    def _summary(self) -> Text:
        nodes = self.node_facts()
        facts = self.wizard.state.facts
        if (facts is None or facts.cluster is None) and self.wizard.nodes_read:
            return Text(f"Reading the cluster's nodes: {len(self.wizard.nodes_read):,} so far. "
                        "Choices open when the whole list is in.", style="yellow")
        if facts is None or facts.cluster is None:
            return Text("No cluster discovered yet: go back to Cluster (Esc) and discover it.",
                        style="yellow")
        if not nodes:
            return Text("The cluster has no nodes. Add GPU nodes, then discover again.",
                        style="bold red")
        state = self.wizard.state
        gpu = sum(1 for n in nodes if n.gpu_present)
        kata = state.kata_nodes()
        text = Text()
        text.append(f"{len(nodes)} nodes, {gpu} with GPUs · ")
        text.append(f"{len(kata)} Kata", style="bold green")
        trad = sum(1 for i in state.answers.nodes.items if i.choice == "traditional")
        leave = sum(1 for i in state.answers.nodes.items if i.choice == "leave")
        text.append(f" · {trad} traditional · {leave} left alone")
        if self.selected:
            text.append(f" · {len(self.selected)} selected", style="bold yellow")
        if not kata:
            text.append("\nNo node is chosen for Kata yet (k on a row).", style="yellow")
        return text

    def _targets(self) -> list[str]:
        if self.selected:
            names = [n.name for n in self.node_facts()]
            return [n for n in names if n in self.selected]
        key = self.query_one(KeyedTable).cursor_key
        return [] if key is None else [key]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The choice keys are greyed when there is no node to choose for."""
        if action in ("choose", "toggle_select", "toggle_access") and not self.node_facts():
            return None
        return True

    def action_choose(self, choice: str) -> None:
        targets = self._targets()
        if not targets:
            return
        try:
            self.wizard.state.set_choice(targets, choice)
        except UserError as exc:
            self.notify(str(problems_text(exc)), severity="error")
            return
        self.wizard.answers_changed("nodes")
        what = "the default" if choice == "default" else choice
        self.notify(f"{', '.join(targets[:3])}{' …' if len(targets) > 3 else ''}: {what}",
                    timeout=2)

    def action_toggle_access(self) -> None:
        targets = self._targets()
        if not targets:
            return
        try:
            way = self.wizard.state.toggle_access(targets, set(self.wizard.state.kata_nodes()))
        except UserError as exc:
            self.notify(str(problems_text(exc)), severity="error")
            return
        self.wizard.answers_changed("nodes")
        how = "over SSH" if way == "ssh" else "through the cluster (a pod)"
        self.notify(f"{', '.join(targets[:3])}{' …' if len(targets) > 3 else ''}: reached "
                    f"{how}", timeout=2)

    def action_toggle_select(self) -> None:
        table = self.query_one(KeyedTable)
        name = table.cursor_key
        if name is None:
            return
        self.selected ^= {name}
        self.refresh_from_state()
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_select_gpu(self) -> None:
        self.selected = {n.name for n in self.node_facts() if n.gpu_present}
        self.refresh_from_state()

    def action_select_none(self) -> None:
        self.selected = set()
        self.refresh_from_state()

    def action_toggle_default(self) -> None:
        state = self.wizard.state
        state.set_default("kata" if state.answers.nodes.default == "traditional"
                          else "traditional")
        self.wizard.answers_changed("nodes")
