"""Live pod status as engine events.

The pod watch resumes from the last resourceVersion after a dropped connection and relists
after "410 Gone"; a per-pod record of the last resourceVersion seen means a resumed or
relisted stream neither loses a change nor reports one twice. Pods are read as plain JSON
(Kube.list_pages / watch_json): the typed client's models made listing 10,000 pods take tens
of seconds. The watch is blocking, so it runs in a thread and hands events to the loop.

`woken_by_changes` serves the waits that poll (verification, the sample): a watch per list
ends a poll's sleep as soon as something in it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from installer.events import PodStatus
from installer.kube import ApiError, Kube
from installer.podread import read_pod

RETRY_SECONDS = (0.5, 1, 2, 5)


def pod_status(pod: dict[str, Any], path: str) -> PodStatus:
    """A Pod as the API serves it (JSON) -> its PodStatus event."""
    r = read_pod(pod)
    return PodStatus(path=path, namespace=r.namespace, pod=r.name, phase=r.phase, node=r.node,
                     ready=r.ready, restarts=r.restarts, reason=r.reason,
                     version=pod["metadata"].get("resourceVersion") or "")


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


Pause = Callable[[float], Awaitable[None]]


@contextlib.asynccontextmanager
async def woken_by_changes(kube: Kube, paths: Sequence[str], *, floor: float = 0.05,
                           watch_seconds: int = 10, **query: str) -> AsyncIterator[Pause]:
    """Watch the list `paths` (with `query`, e.g. a fieldSelector) while the block runs, and
    yield `pause(seconds)`: a sleep that ends early, `floor` seconds at the soonest, when
    any of them changes.

    Why: a wait that polls every 0.2 s sees a change 0.1 s late on average, at each of a
    run's waits (verification's two, the sample's), where `kubectl wait`, watching, reacts
    at once; polling faster costs a read of everything the verdict needs each time. The
    poll stays the judge and keeps its pace: a watch only ends a sleep early, so one that
    is refused (RBAC may allow list but not watch), fails or misses a change costs nothing
    but its wake-up. Each watch starts from its list's current resourceVersion: no
    synthetic events for what is already there. The floor keeps a burst of changes from
    reading the cluster back to back; a watch left by the block ends with its next event or
    within `watch_seconds`."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    stop = threading.Event()

    def wake() -> None:
        if not stop.is_set():
            changed.set()

    def follow(path: str) -> None:
        with contextlib.suppress(Exception):  # the poll goes on at its own pace
            rv = kube.get_json(path, limit="1", **query)["metadata"]["resourceVersion"]
            while not stop.is_set():
                for item in kube.watch_json(path, watch_seconds + 30, resourceVersion=rv,
                                            timeoutSeconds=str(watch_seconds),
                                            allowWatchBookmarks="true", **query):
                    if stop.is_set() or item["type"] == "ERROR":
                        return  # an ERROR (410 Gone): leave the rest to the poll
                    rv = item["object"]["metadata"]["resourceVersion"]
                    if item["type"] != "BOOKMARK":
                        loop.call_soon_threadsafe(wake)

    for path in paths:
        threading.Thread(target=follow, args=(path,), daemon=True,
                         name=f"wake-on-{path}").start()

    async def pause(seconds: float) -> None:
        await asyncio.sleep(min(floor, seconds))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(0.0, seconds - floor))
        changed.clear()

    try:
        yield pause
    finally:
        stop.set()
