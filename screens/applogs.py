"""The wizard's reads of the live cluster for the screens: the Inspector (a live cluster's, or
none for recorded facts) and the one pod log followed at a time into its ring. A part of
InstallerApp (screens/app.py), kept apart so each file reads as one concern."""

from __future__ import annotations

import threading
from typing import Any

from screens.services import Inspector, NoInspector
from screens.state import Ring


class LogsMixin:
    """The Inspector and pod-log following, for InstallerApp."""

    _inspector: tuple[object, Inspector] | None
    _follow: tuple[tuple[Any, ...], threading.Event] | None

    def inspector(self) -> Inspector:
        if self.services.recorded:
            return NoInspector()
        cluster = self.state.answers.cluster
        if self._inspector is None or self._inspector[0] != cluster:
            self._inspector = (cluster, self.services.inspector(cluster))
        return self._inspector[1]

    def log_ring(self, key: tuple[str, str]) -> Ring:
        ring = self.run_state.logs.get(key)
        if ring is None:
            ring = self.run_state.logs[key] = Ring()
        return ring

    def follow_pod_log(self, namespace: str, pod: str, container: str | None,
                       previous: bool = False) -> None:
        """Follow one pod's log into its ring (one follower at a time). Another container of
        the pod, or `previous` (its last run's log, read once: it no longer grows), starts
        the ring afresh."""
        key = (namespace, pod)
        want = (key, container, previous)
        if self._follow is not None:
            if self._follow[0] == want:
                return
            self._follow[1].set()
            if self._follow[0][0] == key:
                self.log_ring(key).clear()
        if self.services.recorded:
            self._follow = None
            return
        stop = threading.Event()
        self._follow = (want, stop)
        inspector = self.inspector()
        if previous:
            self.run_worker(self._previous_log(inspector, key, container, stop),
                            group="previous-log", exclusive=True)
            return

        def follow() -> None:
            try:
                inspector.follow(namespace, pod, container,
                                 lambda lines: self.lines.push(key, lines), stop)
            except Exception as exc:  # the pod went away, the API dropped the stream...
                if not stop.is_set():
                    self.lines.push(key, [f"[log stream ended: {exc}]"])

        # A daemon thread, not a worker: a quiet pod's stream must never hold up quitting.
        threading.Thread(target=follow, name=f"follow {namespace}/{pod}", daemon=True).start()

    async def _previous_log(self, inspector: Inspector, key: tuple[str, str],
                            container: str | None, stop: threading.Event) -> None:
        try:
            lines = await inspector.logs(*key, container, previous=True) \
                or ["[the previous run left no log]"]
        except Exception as exc:  # no previous run (the API says so): shown in the pane
            lines = [f"[no previous log: {exc}]".splitlines()[0]]
        if not stop.is_set():
            self.lines.push(key, lines)

    def _stop_follow(self) -> None:
        if self._follow is not None:
            self._follow[1].set()
            self._follow = None
