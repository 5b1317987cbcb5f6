"""The engine's TUI sink and decider: engine events in, Textual messages out.

Low-rate events (steps, changes, the plan) become one `EngineEvent` message each, in order.
High-rate ones collapse (the toolong model): pod statuses keep only the latest per pod and
log or tool-output lines pile up in a `LineBatcher`; in both cases at most one message is in
flight, and its handler takes everything gathered so far. So a backlog never grows in the
message queue, and a flood of lines costs one message per frame, not one per line.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from textual.message import Message

from installer.engine.events import Event, Output, PodLog, PodStatus, Waiting
from installer.redact import Redactor
from screens.messages import EngineEvent, LinesReady, PodsChanged

OUTPUT_KEY = ("", "output")  # the key tool output (helm) is batched under

LineKey = tuple[str, str]


class LineBatcher:
    """Thread-safe line buffer: `push` from any thread, `drain` in the message handler."""

    def __init__(self, post: Callable[[Message], Any]) -> None:
        self._post = post
        self._lock = threading.Lock()
        self._pending: dict[LineKey, list[str]] = {}
        self._scheduled = False
        self.pushed = 0

    def push(self, key: LineKey, lines: list[str]) -> None:
        with self._lock:
            bucket = self._pending.get(key)
            if bucket is None:
                self._pending[key] = list(lines)
            else:
                bucket.extend(lines)
            self.pushed += len(lines)
            if self._scheduled:
                return
            self._scheduled = True
        self._post(LinesReady(self))

    def drain(self) -> dict[LineKey, list[str]]:
        with self._lock:
            out, self._pending = self._pending, {}
            self._scheduled = False
        return out


class TuiSink:
    """A Sink (installer.engine.events.Sink) that posts to the app; safe to call from any thread."""

    def __init__(self, post: Callable[[Message], Any], lines: LineBatcher,
                 redactor: Redactor | None = None) -> None:
        self._post = post
        self.lines = lines
        self.redactor = redactor or Redactor()
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], PodStatus] = {}
        self._pods_scheduled = False

    def emit(self, event: Event) -> None:
        if isinstance(event, PodLog):
            self.lines.push((event.namespace, event.pod), [self.redactor.text(event.line)])
        elif isinstance(event, Output):
            self.lines.push(OUTPUT_KEY, [f"{event.path}: {self.redactor.text(event.message)}"])
        elif isinstance(event, PodStatus):
            with self._lock:
                self._pods[(event.namespace, event.pod)] = event
                if self._pods_scheduled:
                    return
                self._pods_scheduled = True
            self._post(PodsChanged([]))
        else:
            if event.message:
                event = replace(event, message=self.redactor.text(event.message))
            if isinstance(event, Waiting):  # helm's lines and pods' states are quoted there
                event = replace(event, observed=self.redactor.text(event.observed),
                                nodes={n: self.redactor.text(v) for n, v in event.nodes.items()})
            self._post(EngineEvent(event))

    def drain_pods(self) -> list[PodStatus]:
        with self._lock:
            pods = list(self._pods.values())
            self._pods.clear()
            self._pods_scheduled = False
        return pods


class TuiDecider:
    """Consent mid-run as a modal. `apply` and `skip` policies decide without asking (the
    plan itself was consented to on the Review screen), except a change asked `again`."""

    def __init__(self, ask: Callable[[str, str], asyncio.Future[bool]]) -> None:
        self._ask = ask
        self.asked: list[str] = []

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        if policy == "skip":
            return False
        if policy == "apply" and not again:
            return True
        self.asked.append(question)
        return await self._ask(question, detail)
