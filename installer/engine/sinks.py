"""Sinks that render engine events: rich console, plain lines, JSON lines, the log file.

The log file always gets debug detail; every sink passes text through the redactor, so
a secret that reached an event by mistake still never reaches an output. The text sink also
shows event text as data (installer.textsafe): a pod log line or a host's string is never
markup and never reaches the terminal as a control sequence.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from installer.diagnosis.progress import duration
from installer.engine.events import (
    ChangeEvent,
    CheckReported,
    Event,
    Output,
    PlanReady,
    PodLog,
    PodStatus,
    RunFinished,
    StepFinished,
    StepStarted,
    Waiting,
    WarningEvent,
)
from installer.engine.plan import PHASES
from installer.errors import os_problem
from installer.redact import Redactor
from installer.statedir import state_error, writable_dir
from installer.textsafe import display

_MARK = {"ok": "✓", "failed": "✗", "skipped": "-", "dry-run": "·", "cancelled": "!", "warn": "!"}


def render_plan(plan: dict[str, Any]) -> list[str]:
    """The plan as text: what the dry-run prints and the review screen shows."""
    lines = [f"Plan (facts: {plan['factsSource']})"]
    for phase in PHASES:
        steps = [s for s in plan["steps"] if s["phase"] == phase]
        if not steps:
            continue
        lines.append(f"  {phase}:")
        for s in steps:
            lines.append(f"    [{s['id']}] {s['title']}" + (f" - {s['note']}" if s["note"] else ""))
            for c in s["changes"]:
                lines.append(f"      will change: {c['description']}")
                if c["kind"] == "helm":
                    lines.append("        command: " + " ".join(c["detail"]["command"]))
                    lines += ["        on the hosts: " + e for e in c["detail"]["hostEffects"]]
                if "values" in c["detail"]:
                    values = json.dumps(c["detail"]["values"], indent=2, sort_keys=True)
                    lines += ["        values: " + values.splitlines()[0]]
                    lines += ["                " + v for v in values.splitlines()[1:]]
                elif c["kind"] == "host" and c["detail"].get("preview"):
                    lines += ["        | " + p for p in c["detail"]["preview"].splitlines()]
    lines += [f"  warning: {w}" for w in plan["warnings"]]
    return lines


def wait_line(event: Waiting, now: float) -> str:
    """A wait as one line: elapsed, what it awaits, what it last saw, the time left."""
    left = "" if event.deadline is None else \
        f", times out in {duration(max(0.0, event.deadline - now))}"
    return (f"{duration(max(0.0, now - event.started_at))} waiting for {event.awaited}: "
            f"{event.observed}{left}")


class TextSink:
    """Plain lines for pipes and CI logs; with rich, styled lines for a terminal."""

    def __init__(self, stream: IO[str], redactor: Redactor, *, rich: bool = False,
                 verbose: bool = False) -> None:
        self.redactor = redactor
        self.verbose = verbose
        self.stream = stream
        self.console = None
        if rich:
            from rich.console import Console

            self.console = Console(file=stream, highlight=False)

    def _line(self, text: str, style: str = "") -> None:
        text = display(self.redactor.text(text), multiline=True)
        if self.console is not None:
            from rich.text import Text

            # A Text, not a str: a str is read for :emoji: codes even with markup off.
            self.console.print(Text(text, style=style))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def emit(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            # Plans made while facts are still being gathered are drafts: show the full one.
            draft = any(s["phase"] == "gather" for s in event.plan["steps"])
            if self.verbose or not draft:
                for line in render_plan(event.plan):
                    self._line(line)
        elif isinstance(event, StepStarted):
            self._line(f"→ {event.path}: {event.title}", "bold")
        elif isinstance(event, StepFinished):
            mark = _MARK.get(event.status, "?")
            style = {"failed": "red", "ok": "green"}.get(event.status, "dim")
            self._line(f"{mark} {event.path}: {event.message}", style)
            if event.detail:
                self._line(f"    {event.detail}", style)
        elif isinstance(event, ChangeEvent):
            verb = "changed" if event.applied else "would change"
            self._line(f"  {verb}: {event.message}", "yellow")
        elif isinstance(event, WarningEvent):
            self._line(f"! {event.message}", "yellow")
        elif isinstance(event, Waiting):
            self._line(f"  … {event.path}: {wait_line(event, event.at)}", "cyan")
        elif isinstance(event, CheckReported):
            for r in event.results:
                mark = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}.get(r.status, "?")
                self._line(f"    {mark} {event.node} {r.name}: {r.summary}")
        elif isinstance(event, Output | PodLog) and self.verbose:
            self._line(f"    {event.path}: {event.message or getattr(event, 'line', '')}", "dim")
        elif isinstance(event, PodStatus) and self.verbose:
            self._line(f"    {event.namespace}/{event.pod} {event.phase} {event.reason}", "dim")
        elif isinstance(event, RunFinished):
            self._line(f"{event.message} (exit {event.exit_code})",
                       "bold green" if event.exit_code == 0 else "bold red")


class JsonSink:
    """One JSON object per event, for automation (`--json`)."""

    def __init__(self, stream: IO[str], redactor: Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(self.redactor.data(event.to_json()), default=str) + "\n")
        self.stream.flush()


class LogFileSink:
    """Everything at debug level, redacted, to a file in the XDG state directory."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        writable_dir(path.parent)
        try:  # before the run starts: a log that cannot be written is said, not a traceback
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise state_error(path, os_problem(exc, path), "remove what is in the way") from None
        self.path = path
        self.redactor = redactor
        self.logger = logging.getLogger(f"gpu-kata-installer.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.handler = handler
        self.logger.addHandler(handler)

    def emit(self, event: Event) -> None:
        level = logging.WARNING if isinstance(event, WarningEvent) else logging.DEBUG
        payload = json.dumps(self.redactor.data(event.to_json()), default=str)
        self.logger.log(level, "%s", payload)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
