"""Live pod status as engine events: the wizard's pod tables during a run (screens/apprun.py).

The pod watch resumes from the last resourceVersion after a dropped connection and relists
after "410 Gone"; a per-pod record of the last resourceVersion seen means a resumed or
relisted stream neither loses a change nor reports one twice. Pods are read as plain JSON
(Kube.list_pages / watch_json): the typed client's models made listing 10,000 pods take tens
of seconds. The watch is blocking, so it runs in a thread and hands events to the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer.cluster.kube import ApiError, Kube
from installer.cluster.podread import read_pod
from installer.engine.events import PodStatus, WarningEvent

RETRY_SECONDS = (0.5, 1, 2, 5)


def pod_status(pod: dict[str, Any], path: str) -> PodStatus:
    """A Pod as the API serves it (JSON) -> its PodStatus event."""
    r = read_pod(pod)
    return PodStatus(path=path, namespace=r.namespace, pod=r.name, phase=r.phase, node=r.node,
                     ready=r.ready, restarts=r.restarts, reason=r.reason,
                     version=pod["metadata"].get("resourceVersion") or "", created=r.created,
                     containers=r.containers + r.init_containers)


@dataclass
class PodWatch:
    """Emits a PodStatus for every change of every pod in `namespaces`, exactly once each."""

    kube: Kube
    namespaces: list[str]
    emit: Callable[[Any], None]
    path: str = "watch/pods"
    watch_seconds: int = 30  # the server ends each watch after this; it resumes from the rv
    # pod uid -> (last resourceVersion, namespace, name)
    seen: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _gone(self, loop: asyncio.AbstractEventLoop, uid: str) -> None:
        with self._lock:
            entry = self.seen.pop(uid, None)
        if entry is not None:
            loop.call_soon_threadsafe(self.emit, PodStatus(
                path=self.path, namespace=entry[1], pod=entry[2], phase="Deleted"))

    def _deliver(self, loop: asyncio.AbstractEventLoop, kind: str, pod: dict[str, Any]
                 ) -> None:
        meta = pod["metadata"]
        uid, rv = meta["uid"], meta.get("resourceVersion", "")
        if kind == "DELETED":
            self._gone(loop, uid)
            return
        with self._lock:
            if self.seen.get(uid, ("",))[0] == rv:
                return
            self.seen[uid] = (rv, meta.get("namespace", ""), meta["name"])
        loop.call_soon_threadsafe(self.emit, pod_status(pod, self.path))

    def _relist(self, loop: asyncio.AbstractEventLoop, namespace: str) -> str:
        """List from scratch: report what changed while we were away, and what vanished."""
        present: set[str] = set()
        rv = ""
        for page in self.kube.list_pages(f"/api/v1/namespaces/{namespace}/pods"):
            rv = page["metadata"]["resourceVersion"]  # the same on every page
            for pod in page.get("items") or []:
                present.add(pod["metadata"]["uid"])
                self._deliver(loop, "MODIFIED", pod)
        with self._lock:
            vanished = [u for u, (_, ns, _) in self.seen.items()
                        if ns == namespace and u not in present]
        for uid in vanished:
            self._gone(loop, uid)
        return rv

    def _run(self, loop: asyncio.AbstractEventLoop, namespace: str) -> None:
        rv = None
        failures = 0
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._relist(loop, namespace)
                for item in self.kube.watch_json(
                        f"/api/v1/namespaces/{namespace}/pods", self.watch_seconds + 30,
                        resourceVersion=rv, timeoutSeconds=str(self.watch_seconds),
                        allowWatchBookmarks="true"):
                    if self._stop.is_set():
                        break
                    obj = item["object"]
                    if item["type"] == "ERROR":
                        rv = None  # 410 Gone arrives as an ERROR object: relist
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if item["type"] != "BOOKMARK":
                        self._deliver(loop, item["type"], obj)
                    failures = 0
            except ApiError as exc:
                if exc.status == 410:
                    rv = None
                    continue
                if exc.status in (401, 403):  # retrying cannot help: say so once, stop
                    loop.call_soon_threadsafe(self.emit, WarningEvent(
                        path=self.path, message=f"pods in {namespace} are not shown live: "
                        f"{exc.summary}" + "".join(f"; {p.fix}" for p in exc.problems[:1]
                                                   if p.fix)))
                    return
                failures += 1
            except Exception:  # connection dropped or refused: retry from the last rv
                failures += 1
            if failures:
                time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])

    async def run(self) -> None:
        """Watch until cancelled."""
        loop = asyncio.get_running_loop()
        threads = [threading.Thread(target=self._run, args=(loop, ns), daemon=True,
                                    name=f"pod-watch-{ns}") for ns in self.namespaces]
        for t in threads:
            t.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stop.set()
