"""Honest waits: a step that polls reports what it awaits and what it last saw, as `Waiting`
events, once per change of what it observes rather than once per poll (a poll every fifth of a
second would flood the JSON lines and the screen with the same sentence)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from installer.engine.events import Event, Waiting


class WaitReporter:
    """The waits of one step: started now, ending at `timeout` seconds from now (if any)."""

    def __init__(self, emit: Callable[[Event], None], path: str, awaited: str,
                 timeout: float | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.emit = emit
        self.path = path
        self.awaited = awaited
        self.started_at = clock()
        self.deadline = None if timeout is None else self.started_at + timeout
        self._last: tuple[object, ...] | None = None

    def saw(self, observed: str, *, awaited: str | None = None,
            nodes: Mapping[str, str] | None = None, ready: tuple[str, ...] = ()) -> bool:
        """Report what was observed; emits only when it differs from the last report. Returns
        whether it emitted."""
        awaited = awaited or self.awaited
        nodes = dict(nodes or {})
        key = (awaited, observed, tuple(sorted(nodes.items())), tuple(ready))
        if key == self._last:
            return False
        self._last = key
        self.emit(Waiting(path=self.path, message=f"waiting for {awaited}: {observed}",
                          awaited=awaited, observed=observed, started_at=self.started_at,
                          deadline=self.deadline, nodes=nodes, ready=tuple(ready)))
        return True
