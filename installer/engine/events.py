"""Typed engine events. Every front end (console, JSON lines, log file, TUI) is a sink of these.

Each event has a `path` naming where in the run it happened (`install/gpu-operator`,
`probe/node-3`), so a UI can build a tree of contexts and tests can assert on it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # the wizard's first frame imports events, not the checks
    from installer.hosts.checks import CheckResult

Status = Literal["ok", "failed", "skipped", "dry-run", "cancelled", "warn"]


@dataclass(frozen=True, kw_only=True)
class Event:
    path: str
    message: str = ""
    at: float = field(default_factory=time.time)

    @property
    def kind(self) -> str:
        return _KINDS[type(self)]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    dry_run: bool


@dataclass(frozen=True, kw_only=True)
class PlanReady(Event):
    plan: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    title: str
    phase: str


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    status: Status
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class ChangeEvent(Event):
    """A change to a host or the cluster: applied, or (dry-run) only described."""

    target: str
    applied: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Output(Event):
    """A line of output from a tool the engine runs (helm, a host script)."""

    stream: str = "stdout"


@dataclass(frozen=True, kw_only=True)
class WarningEvent(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class CheckReported(Event):
    node: str
    results: tuple[CheckResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "results": [r.to_dict() for r in self.results]}


@dataclass(frozen=True, kw_only=True)
class PodStatus(Event):
    namespace: str
    pod: str
    phase: str
    node: str | None = None
    ready: str = ""
    restarts: int = 0
    reason: str = ""
    version: str = ""  # the pod's resourceVersion: each is reported once
    created: str = ""  # metadata.creationTimestamp (the pod tables' AGE)
    containers: tuple[str, ...] = ()  # the containers', then the init containers' names


@dataclass(frozen=True, kw_only=True)
class PodLog(Event):
    namespace: str
    pod: str
    container: str
    line: str


@dataclass(frozen=True, kw_only=True)
class Waiting(Event):
    """A step waits on the cluster or a host: what it awaits, in words, and what it last saw.

    Emitted when what the step observes changes, not on every poll, so a sink can show each
    change and a screen can tick the elapsed time and the countdown itself from `started_at`
    and `deadline` (wall-clock seconds; no deadline: the wait has none of its own).
    `nodes` holds what was last seen per node still awaited, `ready` the nodes whose part is
    done: the per-node progress view reads both.
    """

    awaited: str
    observed: str
    started_at: float
    deadline: float | None = None
    nodes: dict[str, str] = field(default_factory=dict)
    ready: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    status: Status
    exit_code: int


_KINDS: dict[type, str] = {
    Event: "event",
    RunStarted: "run-started",
    PlanReady: "plan",
    StepStarted: "step-started",
    StepFinished: "step-finished",
    ChangeEvent: "change",
    Output: "output",
    WarningEvent: "warning",
    CheckReported: "checks",
    PodStatus: "pod-status",
    PodLog: "pod-log",
    Waiting: "waiting",
    RunFinished: "run-finished",
}


class Sink(Protocol):
    def emit(self, event: Event) -> None: ...


class Recorder:
    """A sink that keeps every event; tests and the TUI bridge read it."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
