"""What the wizard holds: the answers being edited, the facts, check results and the run.

Plain Python (no textual), so the rules of editing are testable on their own. Answers stay a
frozen, validated `installer.answers.model.Answers`: every edit rebuilds it through
`validate_answers`, so the wizard can never hold answers the headless mode would refuse.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.answers.model import SAMPLE_POD, Answers, validate_answers
from installer.answers.save import save_answers
from installer.cluster.facts import Facts, NodeFacts
from installer.engine.events import (
    ChangeEvent,
    CheckReported,
    Event,
    PlanReady,
    PodStatus,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    Waiting,
    WarningEvent,
)
from installer.errors import UserError
from installer.textsafe import display_lines

if TYPE_CHECKING:  # the planner (checks, host plans, values) loads when a plan is first asked for
    from installer.engine.plan import Plan
    from installer.hosts.checks import CheckResult

WIZARD_STEPS: tuple[tuple[str, str], ...] = (
    ("cluster", "Cluster"),
    ("nodes", "Nodes"),
    ("ssh", "SSH"),
    ("checks", "Checks"),
    ("fixes", "Fixes"),
    ("charts", "Charts"),
    ("review", "Review"),
    ("install", "Install"),
    ("sample", "Sample"),
    ("done", "Done"),
)

# Choices the nodes screen offers; "default" removes the node's entry so it follows
# nodes.default (that is what a hand-written answers file means by leaving a node out).
NODE_CHOICES = ("kata", "traditional", "leave", "default")


def new_answers() -> Answers:
    """A fresh session: the documented defaults and the chart versions NVIDIA's guide uses."""
    return validate_answers({
        "apiVersion": "gpu-kata-installer.io/v1alpha1",
        "kind": "Answers",
        "kataDeploy": {"version": "3.29.0"},
        "gpuOperator": {"version": "v26.3.1"},
    }, source="wizard")


def answers_data(answers: Answers) -> dict[str, Any]:
    """The answers as the YAML document would hold them (camelCase keys). Explicit nulls are
    kept: `ssh.configFile: null` means "no ssh_config", and an edit must not lose it."""
    return answers.to_data()


def set_in(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts; a value of None removes the key (back to its default)."""
    keys = dotted.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    if value is None:
        data.pop(keys[-1], None)
    else:
        data[keys[-1]] = value


def gpu_count(node: NodeFacts) -> str:
    """What the nodes table shows in its GPU column."""
    for key in ("nvidia.com/gpu.count",):
        if key in node.labels:
            return node.labels[key]
    for key in ("nvidia.com/gpu", "nvidia.com/pgpu"):
        if node.allocatable.get(key, "0") not in ("0", ""):
            return node.allocatable[key]
    return "yes" if node.gpu_present else "-"


@dataclass
class WizardState:
    """The session: answers (always valid), facts, and what the screens learned."""

    answers: Answers = field(default_factory=new_answers)
    facts: Facts | None = None
    answers_path: Path | None = None
    dry_run_only: bool = False
    checks: dict[str, Sequence[CheckResult]] = field(default_factory=dict)
    checks_error: str | None = None
    saved_to: Path | None = None
    operation: str = "install"  # a key of installer.engine.operations.OPERATIONS

    # --- editing -----------------------------------------------------------------
    def edit(self, changes: dict[str, Any]) -> Answers:
        """Apply `{dotted.key: value}`; raises UserError (nothing changed) if invalid."""
        data = copy.deepcopy(answers_data(self.answers))
        for key, value in changes.items():
            set_in(data, key, value)
        self.answers = validate_answers(data, source="wizard")
        return self.answers

    def set_default(self, default: str) -> Answers:
        return self.edit({"nodes.default": default})

    def set_choice(self, names: list[str], choice: str) -> Answers:
        """Set one choice for several nodes at once, keeping their SSH overrides."""
        if choice not in NODE_CHOICES:
            raise ValueError(f"unknown choice {choice!r}")
        items = [dict(i) for i in answers_data(self.answers)["nodes"].get("items", [])]
        by_name = {i["name"]: i for i in items}
        for name in names:
            if choice == "default":
                by_name.pop(name, None)
            elif name in by_name:
                by_name[name]["choice"] = choice
            else:
                by_name[name] = {"name": name, "choice": choice}
        order = [i["name"] for i in items] + [n for n in names if n not in
                                                {i["name"] for i in items}]
        new_items = [by_name[n] for n in order if n in by_name]
        return self.edit({"nodes.items": new_items})

    def toggle_access(self, names: list[str], kata: set[str]) -> str:
        """Reach these nodes the other way than hostAccess.mode says, or - when each already
        is - as it says again (nodes.items[].hostAccess); returns the way they are reached
        now. A node without an entry gets one with its current choice (kata if in `kata`,
        else the cluster default): an override needs an entry to live in."""
        top = self.answers.host_access.mode
        other = "pod" if top == "ssh" else "ssh"
        items = [dict(i) for i in answers_data(self.answers)["nodes"].get("items", [])]
        by_name = {i["name"]: i for i in items}
        back = all(by_name.get(n, {}).get("hostAccess") == other for n in names)
        for name in names:
            item = by_name.get(name)
            if item is None:
                choice = "kata" if name in kata else self.answers.nodes.default
                item = by_name[name] = {"name": name, "choice": choice}
                items.append(item)
            item["hostAccess"] = None if back else other
        self.edit({"nodes.items": items})
        return top if back else other

    def toggle_ignore(self, check: str) -> bool:
        """Ignore a check by name (or stop ignoring it); returns whether it is now ignored."""
        ignore = list(self.answers.checks.ignore)
        now = check not in ignore
        ignore = [*ignore, check] if now else [c for c in ignore if c != check]
        self.edit({"checks.ignore": sorted(ignore)})
        return now

    # --- reading -----------------------------------------------------------------
    def choice_label(self, name: str) -> str:
        choice = self.answers.nodes.choice_for(name)
        return choice if choice else f"default ({self.answers.nodes.default})"

    def kata_nodes(self) -> list[str]:
        return self.answers.nodes.kata_nodes(self.facts.cluster if self.facts else None)

    def planner(self) -> Callable[[Answers, Facts], Plan]:
        from installer.engine.operations import planner_for

        return planner_for(self.operation)

    def plan(self) -> Plan:
        """The same value the headless --dry-run of the chosen operation prints (raises
        UserError on a mismatch)."""
        return self.planner()(self.answers, self.facts or Facts(cluster=None))

    def plan_or_error(self) -> tuple[Plan | None, UserError | None]:
        try:
            return self.plan(), None
        except UserError as exc:
            return None, exc

    def save(self, path: Path) -> Path:
        """Write the answers file, private (0600): it names hosts, users and key paths. An
        existing file is edited, its comments, order and unchanged values kept
        (installer.answers.save)."""
        self.saved_to = save_answers(self.answers, path)
        return self.saved_to


class Ring:
    """A bounded list of lines: appending is O(1) amortised, indexing O(1), memory capped.

    Every line a log pane shows comes in through `extend`, so lines are made safe to show
    there (installer.textsafe: escape sequences and controls escaped, tabs expanded): a pod
    log is someone else's text. Cheap when nothing needs it, as on a flood of plain lines.
    """

    __slots__ = ("_lines", "_start", "dropped", "limit")

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._lines: list[str] = []
        self._start = 0
        self.dropped = 0

    def extend(self, lines: list[str]) -> None:
        self._lines.extend(display_lines(lines))
        size = len(self._lines) - self._start
        if size > self.limit:
            self._start += size - self.limit
            self.dropped += size - self.limit
            if self._start > self.limit:  # compact now and then, not on every write
                del self._lines[:self._start]
                self._start = 0

    def __len__(self) -> int:
        return len(self._lines) - self._start

    def __getitem__(self, i: int) -> str:
        return self._lines[self._start + i]

    def tail(self, n: int) -> list[str]:
        return self._lines[max(self._start, len(self._lines) - n):]

    def text(self) -> str:
        return "\n".join(self._lines[self._start:])

    def clear(self) -> None:
        self._lines.clear()
        self._start = 0


@dataclass
class StepRow:
    path: str
    title: str
    phase: str = ""
    status: str = "pending"  # pending | running | ok | failed | skipped | dry-run | cancelled
    message: str = ""
    detail: str = ""
    started: float | None = None  # the run state's clock when it started, and finished
    finished: float | None = None
    wait: Waiting | None = None  # what it last said it waits for, while it runs


@dataclass
class RunState:
    """One engine run as the install, sample, fixes and done screens see it."""

    dry_run: bool = False
    status: str = "idle"  # idle | running | ok | dry-run | failed | cancelled
    exit_code: int | None = None
    message: str = ""
    steps: dict[str, StepRow] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    changes: list[ChangeEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pods: dict[tuple[str, str], PodStatus] = field(default_factory=dict)
    output: Ring = field(default_factory=lambda: Ring(5_000))
    logs: dict[tuple[str, str], Ring] = field(default_factory=dict)
    checks: dict[str, Sequence[CheckResult]] = field(default_factory=dict)
    # Stamps the steps' times and ticks the waits; tests pass a frozen one.
    clock: Callable[[], float] = time.time

    @property
    def active(self) -> bool:
        return self.status == "running"

    def reset(self, dry_run: bool) -> None:
        self.__init__(dry_run=dry_run, status="running", clock=self.clock)  # type: ignore[misc]

    def apply(self, event: Event) -> None:
        """Fold one engine event into the run's state (low-rate events; see bridge)."""
        if isinstance(event, RunStarted):
            self.dry_run = event.dry_run
            self.status = "running"
        elif isinstance(event, PlanReady):
            self.plan = event.plan
            for s in event.plan["steps"]:
                row = self.steps.get(s["id"])
                if row is None:
                    self.steps[s["id"]] = StepRow(s["id"], s["title"], s["phase"])
        elif isinstance(event, StepStarted):
            row = self.steps.setdefault(event.path, StepRow(event.path, event.title))
            row.status, row.message = "running", ""
            row.started, row.finished, row.wait = self.clock(), None, None
        elif isinstance(event, StepFinished):
            row = self.steps.setdefault(event.path, StepRow(event.path, event.path))
            row.status, row.message, row.detail = event.status, event.message, event.detail
            row.finished = self.clock() if row.started is not None else None
        elif isinstance(event, Waiting):
            row = self.steps.get(event.path)
            if row is not None:
                row.wait = event
        elif isinstance(event, ChangeEvent):
            self.changes.append(event)
        elif isinstance(event, WarningEvent):
            if event.message not in self.warnings:
                self.warnings.append(event.message)
        elif isinstance(event, CheckReported):
            self.checks[event.node] = event.results
        elif isinstance(event, PodStatus):
            self.pods[(event.namespace, event.pod)] = event
        elif isinstance(event, RunFinished):
            self.status = "ok" if event.status == "ok" else event.status
            self.exit_code = event.exit_code
            self.message = event.message

    def ordered_steps(self) -> list[StepRow]:
        """Steps in plan order: gather steps first (a replan drops them), then the last plan."""
        latest = [s["id"] for s in (self.plan or {}).get("steps", [])]
        seen = set(latest)
        earlier = [p for p in self.steps if p not in seen]
        return [self.steps[p] for p in earlier + latest if p in self.steps]

    def running(self) -> list[StepRow]:
        return [r for r in self.ordered_steps() if r.status == "running"]

    def add_lines(self, key: tuple[str, str], lines: list[str]) -> None:
        ring = self.logs.get(key)
        if ring is None:
            ring = self.logs[key] = Ring()
        ring.extend(lines)

    # --- what the sample and done screens ask ------------------------------------
    def sample_step(self) -> StepRow | None:
        return next((r for p, r in self.steps.items() if p.startswith("sample/")), None)

    def sample_log(self) -> Ring | None:
        return next((r for (ns, pod), r in self.logs.items() if pod == SAMPLE_POD), None)

    def sample_verdict(self) -> str:
        """passed | failed | running | not-run"""
        step = self.sample_step()
        if step is None or step.status in ("pending", "dry-run", "skipped"):
            return "not-run"
        if step.status == "running":
            return "running"
        log = self.sample_log()
        passed_log = log is not None and any("Test PASSED" in line for line in log.tail(200))
        return "passed" if step.status == "ok" and (passed_log or log is None) else "failed"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.steps.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out
