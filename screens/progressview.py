"""What the install screen says about time: the running step's wait (elapsed, what it awaits,
what it last saw, the time left) and the steps x nodes grid (installer.diagnosis.progress).

Functions of the run's state and a `now`, so the screen ticks them from its clock and tests
freeze that clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from installer.diagnosis.progress import Cell, NodeGrid, StepProgress, duration, node_grid
from screens.state import RunState, StepRow

MARK = {"pending": ("·", "dim"), "running": ("●", "bold yellow"), "ok": ("✓", "green"),
        "failed": ("✗", "bold red"), "skipped": ("-", "dim"), "dry-run": ("○", "cyan"),
        "cancelled": ("!", "red"), "warn": ("!", "yellow")}


def wait_text(run: RunState, now: float) -> Text:
    """The running step (the first, if several run side by side): how long it has run, what
    it awaits and last saw, when it times out. Empty when nothing runs."""
    running = run.running() if run.active else []
    if not running:
        return Text()
    row = running[0]
    text = Text()
    text.append(row.path, style="bold")
    if row.started is not None:
        text.append(f" · {duration(max(0.0, now - row.started))} elapsed")
    wait = row.wait
    if wait is not None and wait.deadline is not None:
        left = wait.deadline - now
        text.append(f" · times out in {duration(left)}" if left > 0 else " · timed out",
                    style="yellow" if left < 60 else "")
    if len(running) > 1:
        text.append(f" (and {len(running) - 1} more running)", style="dim")
    if wait is None:
        return text
    text.append("\nawaits: ", style="dim")
    text.append(wait.awaited)
    text.append("\nlast seen: ", style="dim")
    text.append(wait.observed)
    return text


def step_progress(rows: Sequence[StepRow]) -> list[StepProgress]:
    return [StepProgress(r.path, r.status, r.started, r.finished,
                         dict(r.wait.nodes) if r.wait else {},
                         r.wait.ready if r.wait else ()) for r in rows]


def grid(run: RunState, now: float) -> NodeGrid:
    return node_grid(step_progress(run.ordered_steps()), now)


def cell_text(cell: Cell) -> Text:
    if not cell.status:
        return Text("")
    mark, style = MARK.get(cell.status, ("?", ""))
    text = Text(mark, style=style)
    if cell.seconds is not None:
        text.append(f" {duration(cell.seconds)}")
    return text


def grid_table(g: NodeGrid) -> tuple[list[tuple[str, str]], list[tuple[str, list[Text]]]]:
    """The grid as KeyedTable columns and keyed rows: a node per row."""
    columns = [("node", "Node"), *((c, c) for c in g.columns)]
    rows = [(r.node, [Text(r.node), *(cell_text(c) for c in r.cells)]) for r in g.rows]
    return columns, rows
