"""Checks: a node-by-check grid of the read-only prerequisite checks; evidence and remedy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from installer.engine.params import HostChecksParams, HostFixParams
from installer.textsafe import display
from screens.base import WizardScreen
from screens.widgets.datatext import DataStatic
from screens.widgets.keyedtable import KeyedTable

if TYPE_CHECKING:
    from installer.hosts.checks import CheckResult

MARKS = {"pass": ("✓ pass", "green"), "warn": ("! warn", "yellow"), "fail": ("✗ FAIL", "bold red"),
         "skip": ("- skip", "dim")}


def check_names(results: Mapping[str, Sequence[CheckResult]]) -> list[str]:
    names: list[str] = []
    for rows in results.values():
        for r in rows:
            if r.name not in names:
                names.append(r.name)
    return names


def _evidence(lines: Sequence[str]) -> str:
    # What the host said, verbatim: shown as data (a CR or BEL escaped, not dropped by rich).
    return "\n".join(f"  {display(line)}" for line in lines)


class ChecksScreen(WizardScreen):
    STEP = "checks"
    TITLE = "Checks - host and cluster prerequisites"
    HELP = """
Decides which prerequisite failures you accept (answers checks.ignore). Each Kata node is
probed over SSH (read-only) and checked against NVIDIA's prerequisites: virtualization and
IOMMU, no host NVIDIA driver, vfio, the kubelet feature gate, and more.

Move over the grid; the cell under the cursor shows what was seen (evidence) and what to do
(remedy). r probes the hosts and runs the checks again after you fixed something. i ignores
a check by name on every node: the install's check steps then let it pass, so use it only
for a failure you accept on purpose. A failure a host fix covers becomes a fix step (see
Fixes).
"""

    BINDINGS = [
        Binding("r", "rerun", "Re-run"),
        Binding("i", "ignore", "Ignore check"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def body(self) -> ComposeResult:
        yield DataStatic("", id="checks-status")
        yield KeyedTable(id="grid", cursor_type="cell", zebra_stripes=False)
        with VerticalScroll(id="evidence-box"):
            yield DataStatic("", id="evidence")

    def on_mount(self) -> None:
        self.refresh_from_state()
        state = self.wizard.state
        if not state.checks and not self.wizard.checking and state.facts is not None \
                and state.kata_nodes():
            self._run()

    def _results(self) -> dict[str, Sequence[CheckResult]]:
        return self.wizard.state.checks

    _covered_now: dict[str, dict[str, str]] = {}

    def refresh_from_state(self) -> None:
        self._covered_now = self._covered()
        results = self._results()
        ignored = set(self.wizard.state.answers.checks.ignore)
        table = self.query_one(KeyedTable)
        nodes = tuple(sorted(results))
        names = tuple(check_names(results))
        columns = [("node", "Node"), *((name, name) for name in names)]
        rows = {node: (node, *(self._cell(node, n, ignored) for n in names)) for node in nodes}
        if (nodes, names) != self._shape or not table.update_rows(columns, rows):
            # Fixed widths: the grid must not depend on when rows arrive.
            table.fill_rows(columns, rows.items(), widths={
                "node": max([4, *map(len, nodes)]),
                **{name: max(len(name), 12) for name in names}})
            self._shape = (nodes, names)
        self._status(ignored)
        self._show_cell()
        self._report()

    def _covered(self) -> dict[str, dict[str, str]]:
        """node -> {check name: the planned fix step that covers its failure}."""
        plan, _ = self.wizard.state.plan_or_error()
        out: dict[str, dict[str, str]] = {}
        if plan is None:
            return out
        fixes = {s.params.node: s.id for s in plan.steps if isinstance(s.params, HostFixParams)}
        for step in plan.steps:
            if isinstance(step.params, HostChecksParams):
                node = step.params.node
                out[node] = {name: fixes.get(node, "a planned host fix")
                             for name in step.params.covered or ()}
        return out

    def _result(self, node: str, name: str) -> CheckResult | None:
        return next((r for r in self._results().get(node, ()) if r.name == name), None)

    def _cell(self, node: str, name: str, ignored: set[str]) -> Text:
        r = self._result(node, name)
        if r is None:
            return Text("")
        label, style = MARKS.get(r.status, (r.status, ""))
        if name in ignored and r.status in ("fail", "warn"):
            return Text(label.replace("FAIL", "fail") + " (ign)", style="dim strike")
        if r.status == "fail" and name in self._covered_now.get(node, {}):
            return Text("✗ → fix", style="bold yellow")
        return Text(label, style=style)

    def _status(self, ignored: set[str]) -> None:
        state = self.wizard.state
        text = Text()
        if self.wizard.checking:
            text.append("running the checks…", style="yellow")
        elif not state.checks:
            if state.checks_error:
                text.append(f"The checks could not run: {state.checks_error}\n", style="red")
                text.append("r tries again.", style="dim")
            elif not state.kata_nodes():
                text.append("No node is chosen for Kata, so there is no host to check. "
                            "Choose nodes first (Nodes screen).", style="yellow")
            else:
                text.append("Not run yet: r runs them.", style="dim")
        else:
            counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
            for rows in state.checks.values():
                for r in rows:
                    if r.name in ignored and r.status in ("fail", "warn"):
                        continue
                    counts[r.status] = counts.get(r.status, 0) + 1
            text.append(f"{len(state.checks)} nodes: ")
            text.append(f"{counts['pass']} pass ", style="green")
            text.append(f"{counts['warn']} warn ", style="yellow")
            text.append(f"{counts['fail']} fail", style="bold red" if counts["fail"] else "")
            if ignored:
                text.append(f" · ignored: {', '.join(sorted(ignored))}", style="dim")
            if state.checks_error:
                text.append(f"\n{state.checks_error}", style="red")
        self.query_one("#checks-status", Static).update(text)

    def _cursor(self) -> tuple[str, str] | None:
        table = self.query_one(KeyedTable)
        row, column = table.cursor_key, table.cursor_column_key
        return None if row is None or column is None else (row, column)

    def _show_cell(self) -> None:
        box = self.query_one("#evidence", Static)
        where = self._cursor()
        if where is None:
            box.update("")
            return
        node, name = where
        if name == "node":
            rows = self._results().get(node, ())
            bad = [r for r in rows if r.status in ("fail", "warn")]
            text = Text(f"{node}: {len(rows)} checks, {len(bad)} need attention\n", style="bold")
            for r in bad:
                text.append(f"  {r.name}: {r.summary}\n")
            box.update(text)
            return
        r = self._result(node, name)
        if r is None:
            box.update(Text(f"{node} · {name}: not checked on this node", style="dim"))
            return
        label, style = MARKS.get(r.status, (r.status, ""))
        text = Text()
        text.append(f"{node} · {name} · ", style="bold")
        text.append(label, style=style)
        if r.severity and r.status in ("fail", "warn"):
            text.append(" (blocks the install)" if r.severity == "fail" else
                        " (a warning only)", style="dim")
        text.append(f"\n{display(r.summary)}\n")
        if r.evidence:
            text.append("Evidence\n", style="bold")
            text.append(_evidence(r.evidence) + "\n")
        if r.remedy:
            text.append("Remedy\n", style="bold")
            text.append(f"  {r.remedy}\n")
        if r.status == "fail" and name in self._covered_now.get(node, {}):
            text.append("A planned host fix covers this (see Fixes).\n", style="yellow")
        if name in self.wizard.state.answers.checks.ignore:
            text.append("Ignored on every node (i stops ignoring it).", style="italic yellow")
        box.update(text)

    def on_keyed_table_cell_highlighted(self, event: KeyedTable.CellHighlighted) -> None:
        self._show_cell()
        self.refresh_bindings()  # Ignore applies on a check's column only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Re-run is greyed while the checks run, Ignore unless the cursor is on a check."""
        if action == "rerun" and self.wizard.checking:
            return None
        if action == "ignore":
            where = self._cursor()
            return None if where is None or where[1] == "node" else True
        return True

    _asked = False  # a re-run the operator asked for: its end is reported

    def action_rerun(self) -> None:
        self._asked = self._run() or self._asked

    def _run(self) -> bool:
        started = self.wizard.run_checks()
        if started:
            self._status(set(self.wizard.state.answers.checks.ignore))
        return started

    def _report(self) -> None:
        """A re-run that finds what the last one found changes nothing on screen: say it ran."""
        if not self._asked or self.wizard.checking:
            return
        self._asked = False
        state = self.wizard.state
        if state.checks_error:
            self.notify("the checks could not run (see above)", severity="error")
            return
        failed = sum(r.status == "fail" for rs in state.checks.values() for r in rs)
        self.notify(f"checked {len(state.checks)} hosts again: {failed} checks fail",
                    timeout=3)

    def action_ignore(self) -> None:
        where = self._cursor()
        if where is None or where[1] == "node":
            self.notify("move to a check's column to ignore it", severity="warning")
            return
        now = self.wizard.state.toggle_ignore(where[1])
        self.wizard.answers_changed("checks")
        self.refresh_from_state()
        self.notify(f"{where[1]}: {'ignored on every node' if now else 'no longer ignored'}",
                    timeout=2)
