"""The install's progress per node: a grid of steps x nodes, each cell a status and a duration.

Pure, from what any reader of a run has - each step's status and times, and the last
`Waiting` event's per-node observations - so the install screen and a bundle's summary draw
the same grid. A node's cells come from the step ids, which carry node names
(`check/gpu-node-1`, `fix/gpu-node-2/vfio-bind`, `label/...`, `verify/host/...`); the steps
that act on the cluster as a whole (the helm installs and their verify steps) become one cell
per node through their waits' observations: which nodes are ready, what each other shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

# Worst first: a column of several steps on one node (its host fixes) shows the worst.
_ORDER = ("failed", "cancelled", "running", "warn", "pending", "dry-run", "ok", "skipped")


@dataclass(frozen=True)
class StepProgress:
    """One step as the grid reads it; times are wall-clock seconds."""

    id: str
    status: str = "pending"  # pending | running | ok | failed | skipped | dry-run | cancelled
    started: float | None = None
    finished: float | None = None
    nodes: Mapping[str, str] = field(default_factory=dict)  # its last wait: node -> seen
    ready: tuple[str, ...] = ()  # its last wait: the nodes whose part is done

    def seconds(self, now: float) -> float | None:
        if self.started is None:
            return None
        return max(0.0, (self.finished if self.finished is not None else now) - self.started)


@dataclass(frozen=True)
class Cell:
    status: str = ""  # "": the column does not apply to the node
    seconds: float | None = None
    note: str = ""  # what the running step last saw on this node


@dataclass(frozen=True)
class NodeRow:
    node: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class NodeGrid:
    columns: tuple[str, ...]
    rows: tuple[NodeRow, ...]


# Columns: (label, the per-node step id prefixes, or the cluster-wide (install, verify) ids).
# "drain" is a node out of service: its cordon, drain and uncordon around a reboot or a
# change of role; "label" holds a change of role's check in the new role too.
NODE_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("checks", ("check/",)), ("drain", ("cordon/", "drain/", "uncordon/")),
    ("fixes", ("fix/",)), ("label", ("label/", "verify-role/")))
SHARED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("kata", "install/kata-deploy", "verify/kata-deploy"),
    ("operands", "install/gpu-operator", "verify/gpu-operator"))
COLUMNS = (*(c for c, _ in NODE_COLUMNS), *(c for c, _, _ in SHARED_COLUMNS), "host", "sample")
HOST_PREFIX, SAMPLE_PREFIX = "verify/host/", "sample/"


def duration(seconds: float | None) -> str:
    """`42s`, `1m03s`, `2h05m`: short enough for a grid cell."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _node_of(step_id: str) -> str | None:
    if step_id.startswith(HOST_PREFIX):
        return step_id.removeprefix(HOST_PREFIX) or None
    for _, prefixes in NODE_COLUMNS:
        for prefix in prefixes:
            if step_id.startswith(prefix):
                node = step_id.removeprefix(prefix).split("/")[0]
                return None if prefix == "check/" and node == "cluster" else node or None
    return None


def _combine(steps: list[StepProgress], now: float) -> Cell:
    if not steps:
        return Cell()
    status = min((s.status for s in steps),
                 key=lambda st: _ORDER.index(st) if st in _ORDER else 0)
    if status == "pending" and any(s.status != "pending" for s in steps):
        status = "running"  # some of the node's fixes done, the next not yet started
    times = [t for s in steps if (t := s.seconds(now)) is not None]
    return Cell(status, sum(times) if times else None)


def _shared(install: StepProgress | None, verify: StepProgress | None, node: str,
            now: float) -> Cell:
    if verify is not None and verify.status == "running":
        if node in verify.ready:
            return Cell("ok")
        return Cell("running", verify.seconds(now), verify.nodes.get(node, ""))
    if verify is not None and verify.status != "pending":
        return Cell(verify.status, verify.seconds(now))
    if install is not None and install.status not in ("pending", "ok"):
        return Cell(install.status, install.seconds(now), install.nodes.get(node, ""))
    return Cell("pending")


def node_grid(steps: Sequence[StepProgress], now: float,
              nodes: Sequence[str] | None = None) -> NodeGrid:
    """The grid of `steps` (in plan order) at time `now` (for the running steps' durations).
    Rows are `nodes`, else every node a step id or a wait names, in order of appearance."""
    by_id = {s.id: s for s in steps}
    order: list[str] = list(nodes or ())
    if nodes is None:
        for s in steps:
            for n in (_node_of(s.id), *s.ready, *s.nodes):
                if n and n not in order:
                    order.append(n)
    targets = {n for s in steps if s.id.startswith(HOST_PREFIX) and (n := _node_of(s.id))}
    for _, _, verify_id in SHARED_COLUMNS:
        v = by_id.get(verify_id)
        if v is not None:
            targets |= {*v.ready, *v.nodes}
    rows = []
    for node in order:
        cells = [_combine([s for s in steps if s.id.startswith(prefixes)
                           and _node_of(s.id) == node], now) for _, prefixes in NODE_COLUMNS]
        for _, install_id, verify_id in SHARED_COLUMNS:
            cells.append(_shared(by_id.get(install_id), by_id.get(verify_id), node, now)
                         if node in targets or not targets else Cell())
        cells.append(_combine([s for s in steps if s.id == HOST_PREFIX + node], now))
        sample = next((s for s in steps if s.id.startswith(SAMPLE_PREFIX)), None)
        on_node = sample is not None and (node in sample.nodes or node in sample.ready)
        cells.append(Cell(sample.status, sample.seconds(now), sample.nodes.get(node, ""))
                     if on_node and sample is not None else Cell())
        rows.append(NodeRow(node, tuple(cells)))
    return NodeGrid(COLUMNS, tuple(rows))


def steps_from_log(lines: Iterable[str]) -> tuple[list[StepProgress], float] | None:
    """The steps of a run as its log file recorded them (installer.engine.sinks.LogFileSink:
    a time, a level, then the event's JSON), and the time of its last event - the `now` of
    the grid of a run that is over, or was cut short. None when the log holds no plan (a
    troubleshoot session's log, a run refused before planning)."""
    order: list[str] = []
    known: dict[str, StepProgress] = {}
    last = 0.0
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind, path = event.get("kind"), str(event.get("path") or "")
        at = event.get("at") if isinstance(event.get("at"), int | float) else None
        last = max(last, at or 0.0)
        step = known.get(path, StepProgress(path))
        if kind == "plan":
            steps = (event.get("plan") or {}).get("steps") or []
            order = [str(s.get("id")) for s in steps if isinstance(s, dict) and s.get("id")]
        elif kind == "step-started":
            known[path] = replace(step, status="running", started=at, finished=None)
        elif kind == "step-finished":
            known[path] = replace(step, status=str(event.get("status") or "ok"), finished=at)
        elif kind == "waiting" and isinstance(event.get("nodes"), dict):
            known[path] = replace(step, nodes={str(k): str(v) for k, v in event["nodes"].items()},
                                  ready=tuple(str(n) for n in event.get("ready") or ()))
    if not order:
        return None
    return [known.get(i, StepProgress(i)) for i in order], last
