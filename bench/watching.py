"""A benchmark's watcher of the lab: a thread that looks while the measured run goes on."""

from __future__ import annotations

import threading
from typing import Self


class Watching:
    """Runs `watch()` on a thread of its own between `with` and its end, which sets `stop`
    (the subclass's threading.Event) and waits for it. An exception ends the watch and is
    kept in `error`: the benchmark reports it and fails, instead of a figure from half a
    watch."""

    stop: threading.Event
    error: str

    def watch(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self.watch()
        except Exception as exc:  # reported by the run, which then fails
            self.error = f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> Self:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
